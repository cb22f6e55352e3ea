"""`refdesk` commands: running refdesk: store and LLM status, the vLLM server, the web app, model preparation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.cli.common import print_json

if TYPE_CHECKING:
    from ingest.manifest import ListedChunks


def cmd_status(services, args) -> int:
    from assistant.backends.vllm_launcher import VLLMLauncher

    settings = services.settings
    counts = services.store.counts()
    launcher = VLLMLauncher(settings)
    llm_url = settings.llm.base_url
    reachable = _llm_reachable(llm_url) if settings.llm.backend == "openai" else True
    manifest = services.manifest()
    try:
        runs = manifest.last_runs(1)
    finally:
        manifest.close()
    status = {
        "data_dir": str(settings.data_dir),
        "config_file": settings.config_file,
        "store": {
            "mode": settings.store.mode,
            "location": services.store.location,
            "collection": settings.collection,
        },
        "embedding": services.embedder_name,
        "chunks": counts["chunks"],
        "records": counts["records"],
        "by_type": counts["by_type"],
        "llm": {
            "backend": settings.llm.backend,
            "url": llm_url,
            "model": settings.llm.model,
            "reachable": reachable,
            "launcher_pid": launcher.status().pid,
        },
        "last_ingest": runs[0] if runs else None,
    }
    if args.json:
        print_json(status)
    else:
        print(f"data dir: {status['data_dir']}")
        print(f"store:    {settings.store.mode} {services.store.location} (collection {settings.collection})")
        print(f"chunks:   {counts['chunks']} in {counts['records']} records")
        for t, c in counts["by_type"].items():
            print(f"  {t:6} {c['records']} records, {c['chunks']} chunks")
        print(
            f"LLM:      {settings.llm.model} at {llm_url} — {'reachable' if reachable else 'NOT reachable (refdesk llm start)'}"
        )
    return 0


def _llm_reachable(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(base_url.rstrip("/") + "/models", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def cmd_llm(services, args) -> int:
    from assistant.backends.vllm_launcher import VLLMLauncher

    launcher = VLLMLauncher(services.settings)
    if args.action == "start":
        status = launcher.start(wait=not args.no_wait)
    elif args.action == "stop":
        launcher.stop()
        status = launcher.status()
    else:
        status = launcher.status()
        if not args.json:
            print(
                f"{status.url}: {'healthy' if status.healthy else 'not serving'}; pid {status.pid or '-'}"
                f"{' (alive)' if status.pid_alive else ''}; log {status.log}"
            )
    if args.json:
        print_json(status.as_dict())
    return 0 if (status.healthy or args.action == "stop" or args.no_wait) else 1


def cmd_serve(services, args) -> int:
    from assistant.web.app import serve

    serve(services, host=args.host, port=args.port)
    return 0


def cmd_models(services, args) -> int:
    from assistant.backends.embeddings import resolve_model_path
    from assistant.backends.models import prepare_chat_model, prepare_static_refined

    path = prepare_chat_model(services.settings, force=args.force)
    emb = services.settings.embedder
    if emb.backend == "static-refined":
        prepare_static_refined(services.settings, force=args.force, log=print)
    elif emb.backend == "huggingface":
        print(f"embedding model ready: {resolve_model_path(emb.model)}")
    elif emb.backend == "static":
        model = services.embedder  # distils it under the data dir the first time
        print(f"static embedding model ready: {emb.static_dir} ({type(model).__name__})")
    elif emb.backend == "onnx":
        model = services.embedder  # exports and quantises it under the data dir the first time
        print(f"int8 ONNX embedding model ready: {emb.onnx_dir} ({type(model).__name__})")
    print(f"chat model dir: {path}")
    return 0


def cmd_store(services, args) -> int:
    """repair: a collection whose vector index Chroma cannot load is dropped and made again from the lexical
    index's copy of its chunks (text and metadata), embedded again: no source file is read, and the next ingest
    finds its files unchanged. Goes on with a repair that was stopped. Not through services.store, which
    refuses to open such a collection."""
    import sys

    from chromadb.errors import NotFoundError

    from assistant.backends.lexical import LexicalIndex
    from assistant.backends.store import REBUILDING, damaged_index_errors, is_damaged_index, make_client
    from ingest.lock import IngestLock

    settings = services.settings
    client = make_client(settings)
    name = settings.collection
    try:
        collection = client.get_collection(name)
    except NotFoundError:
        print(f"no collection {name!r}: nothing to repair")
        return 0
    damage, chunks = "", 0
    try:
        chunks = collection.count()
    except damaged_index_errors() as exc:
        if not is_damaged_index(exc):
            raise
        damage = str(exc)
    # A stopped repair goes on where it was, unless its own index was cut short too (then it starts over).
    stopped_repair = not damage and bool((collection.metadata or {}).get(REBUILDING))
    if not damage and not stopped_repair:
        print(f"collection {name!r} loads ({chunks} chunks): nothing to repair")
        return 0
    made_by = (collection.metadata or {}).get("embedder")
    if made_by and made_by != services.embedder_name:
        print(
            f"refdesk: collection {name!r} holds vectors of {made_by}, the settings name {services.embedder_name}: "
            "repair it with the settings it was made with",
            file=sys.stderr,
        )
        return 2
    manifest = services.manifest()
    lexical = LexicalIndex(settings.lexical_path)
    found = Unloadable(collection, chunks, damage, manifest.listed_chunks(), manifest.file_count())
    # The ingest lock: no ingest (nor a second repair) writes to the store while it is made again.
    try:
        with IngestLock(settings.manifest_path.parent / "ingest.lock"):
            return _repair(services, client, found, lexical, args.yes)
    finally:
        lexical.close()
        manifest.close()


@dataclass
class Unloadable:
    """What `store repair` found: a collection Chroma cannot load, or one a stopped repair left part-filled."""

    collection: Any
    chunks: int  # stored, when it loads (a stopped repair)
    damage: str  # why it cannot be loaded; "" for a stopped repair
    listed: ListedChunks  # what the manifest says the store should hold
    files: int


def _repair(services, client, found: Unloadable, lexical, yes: bool) -> int:
    """Drops a damaged collection (with --yes) or goes on with a stopped repair, and fills it from the copies."""
    from assistant.backends.store import ChunkStore, store_location
    from assistant.core.progress import progress_for

    settings = services.settings
    name = found.collection.name
    copies = lexical.count()
    if not found.damage:
        print(f"collection {name!r}: going on with the repair stopped at {found.chunks} of {copies} chunks")
    else:
        print(f"collection {name!r} cannot be loaded: {found.damage}")
        if not yes:
            print(
                f"run again with --yes to drop it and make its vectors again from the lexical index's copy of "
                f"its chunks ({copies}; the manifest lists {len(found.listed)} in {found.files} files)"
            )
            return 1
        client.delete_collection(name)
    store = ChunkStore(
        client, name, services.embedder_name, store_location(settings), lexical, settings.store, rebuilding=True
    )
    progress = progress_for(True, copies, desc="repair", unit="chunk")
    try:
        rebuilt = store.rebuild_from_lexical(services.embedder.get_text_embedding_batch, found.listed, progress)
    finally:
        progress.close()
    print(
        f"made collection {name!r} again from the lexical index in {rebuilt.seconds:.0f} s: {rebuilt.chunks} "
        f"chunks embedded and stored"
        + (f" ({rebuilt.already} stored before the repair was stopped)" if rebuilt.already else "")
        + (f", {rebuilt.dropped} copies the manifest does not list dropped" if rebuilt.dropped else "")
        + f"; the manifest lists {len(found.listed)} chunks in {found.files} files: run `refdesk ingest` on the same paths to "
        "store any the copy lacked (files whose chunks are all stored are not read)"
    )
    return 0


def register(sub) -> None:
    s = sub.add_parser("store", help="repair a store whose vector index cannot be loaded")
    s.add_argument("action", choices=["repair"])
    s.add_argument(
        "--yes",
        action="store_true",
        help="really drop the damaged collection (and make it again from the lexical index's copies)",
    )
    s.set_defaults(func=cmd_store)

    s = sub.add_parser("status", help="store counts and LLM reachability")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("llm", help="start/stop/status of the vLLM server")
    s.add_argument("action", choices=["start", "stop", "status"])
    s.add_argument("--no-wait", action="store_true", help="start: do not wait for health")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_llm)

    s = sub.add_parser("serve", help="run the Gradio app")
    s.add_argument("--port", type=int)
    s.add_argument("--host")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("models", help="prepare the bundled models")
    s.add_argument("action", choices=["prepare"])
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=cmd_models)

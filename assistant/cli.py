"""`refdesk` command line: a thin adapter over the services."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from assistant.settings import Settings, SettingsError


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def cmd_ingest(services, args) -> int:
    from ingest.pipeline import IngestSummary

    manifest = services.manifest()
    try:
        summary: IngestSummary = services.ingestor(manifest, progress=not args.json and sys.stderr.isatty()).ingest(
            args.paths, sync=args.sync
        )
    finally:
        manifest.close()
    if args.json:
        _print_json(summary.as_dict())
    else:
        print(summary.text())
    return 1 if summary.files_failed else 0


def render_answer_text(answer) -> str:
    lines = []
    if answer.error and answer.error != answer.answer:
        lines.append(f"! {answer.error}")
    if answer.answer:
        lines.append(answer.answer)
    if answer.invalid_markers:
        lines.append(f"({answer.invalid_markers} citation marker(s) removed: they did not point to a stored source)")
    if answer.sources:
        lines.append("")
        lines.append("Sources:")
        for s in answer.sources:
            where = "; ".join(x for x in (s.locator, s.date) if x)
            lines.append(f"[{s.n}] {s.title or s.record_id} — {s.source_type} {s.record_id}" + (f" ({where})" if where else ""))
            if s.link:
                lines.append(f"    {s.link}")
    return "\n".join(lines)


def cmd_ask(services, args) -> int:
    from assistant.filters import Filter

    filters = [Filter.parse(f) for f in args.filter or []]
    answer = services.answers.ask(args.question, k=args.k, retrieve_only=args.retrieve_only, filters=filters)
    handoff = services.handoffs.create(answer, contact=args.contact or "") if args.handoff else None
    if args.json:
        out = answer.public_dict()
        if handoff:
            out["handoff_id"] = handoff.id
        _print_json(out)
    else:
        print(render_answer_text(answer))
        if handoff:
            print(f"\nHanded off to a librarian as #{handoff.id}.")
    return 0


def cmd_verify(services, args) -> int:
    """Checks an answer written elsewhere (another chatbot, a colleague) against the store."""
    from pathlib import Path

    from assistant.types import Answer

    if args.answer_file:
        draft = sys.stdin.read() if args.answer_file == "-" else Path(args.answer_file).read_text(encoding="utf-8")
    else:
        draft = args.answer
    answer = Answer(question=args.question)
    if args.sources:
        answer.sources = services.retriever.sources_by_id([c.strip() for c in args.sources.split(",") if c.strip()])
    else:
        answer.sources = services.retriever.retrieve(args.question, args.k or services.settings.retrieval.top_k,
                                                     answer.timings)
    services.answers.finish(answer, draft)
    if args.json:
        _print_json(answer.public_dict())
    else:
        for s in answer.sentences:
            mark = "OK " if s.status == "supported" else "NO "
            print(f"{mark} {s.text}")
            for reason in s.reasons:
                print(f"      - {reason}")
        supported = sum(s.status == "supported" for s in answer.sentences)
        print(f"\n{supported} of {len(answer.sentences)} sentences supported by the cited sources.")
        print(render_answer_text(answer.model_copy(update={"answer": "", "error": ""})))
    return 0


def cmd_handoff(services, args) -> int:
    from datetime import datetime

    queue = services.handoffs
    if args.action == "list":
        items = queue.list(None if args.all else "open")
        if args.json:
            _print_json([h.as_dict() for h in items])
        else:
            for h in items:
                when = datetime.fromtimestamp(h.created_at).strftime("%Y-%m-%d %H:%M")
                print(f"#{h.id} [{h.status}] {when} {h.question}" + (f" (contact: {h.contact})" if h.contact else ""))
            if not items:
                print("no open hand-offs")
        return 0
    if args.id is None:
        raise SettingsError(f"refdesk handoff {args.action} needs an id")
    h = queue.get(args.id) if args.action == "show" else queue.close(args.id, note=args.note or "")
    if args.action == "close":
        services.accounts.audit("cli", "hand-off closed", f"#{h.id}")
    if args.json:
        _print_json(h.as_dict())
    else:
        print(f"#{h.id} [{h.status}] {h.question}")
        print(f"draft: {h.draft}")
        for s in h.sources:
            print(f"  [{s['n']}] {s['title'] or s['record_id']} — {s['locator']} {s['link']}")
        if h.contact:
            print(f"contact: {h.contact}")
        if h.note:
            print(f"note: {h.note}")
    return 0


def cmd_status(services, args) -> int:
    from assistant.vllm_launcher import VLLMLauncher

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
        "store": {"mode": settings.store.mode, "location": services.store.location, "collection": settings.store.collection},
        "embedding": services.embedder_name,
        "chunks": counts["chunks"],
        "records": counts["records"],
        "by_type": counts["by_type"],
        "llm": {"backend": settings.llm.backend, "url": llm_url, "model": settings.llm.model, "reachable": reachable,
                "launcher_pid": launcher.status().pid},
        "last_ingest": runs[0] if runs else None,
    }
    if args.json:
        _print_json(status)
    else:
        print(f"data dir: {status['data_dir']}")
        print(f"store:    {settings.store.mode} {services.store.location} (collection {settings.store.collection})")
        print(f"chunks:   {counts['chunks']} in {counts['records']} records")
        for t, c in counts["by_type"].items():
            print(f"  {t:6} {c['records']} records, {c['chunks']} chunks")
        print(f"LLM:      {settings.llm.model} at {llm_url} — {'reachable' if reachable else 'NOT reachable (refdesk llm start)'}")
    return 0


def _llm_reachable(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(base_url.rstrip("/") + "/models", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def cmd_llm(services, args) -> int:
    from assistant.vllm_launcher import VLLMLauncher

    launcher = VLLMLauncher(services.settings)
    if args.action == "start":
        status = launcher.start(wait=not args.no_wait)
    elif args.action == "stop":
        launcher.stop()
        status = launcher.status()
    else:
        status = launcher.status()
        if not args.json:
            print(f"{status.url}: {'healthy' if status.healthy else 'not serving'}; pid {status.pid or '-'}"
                  f"{' (alive)' if status.pid_alive else ''}; log {status.log}")
    if args.json:
        _print_json(status.as_dict())
    return 0 if (status.healthy or args.action == "stop" or args.no_wait) else 1


def cmd_serve(services, args) -> int:
    from assistant.app import serve

    serve(services, host=args.host, port=args.port)
    return 0


def cmd_models(services, args) -> int:
    from assistant.embeddings import resolve_model_path
    from assistant.models import prepare_chat_model

    path = prepare_chat_model(services.settings, force=args.force)
    emb = services.settings.embedding
    if emb.backend == "huggingface":
        print(f"embedding model ready: {resolve_model_path(emb.model)}")
    print(f"chat model dir: {path}")
    return 0


def cmd_bench(services, args) -> int:
    from eval.bench import bench_answer, bench_ingest, format_ingest_bench

    if args.what == "warc-memory":
        from eval.bench import bench_warc_memory

        sources = args.paths or ["../shared/data/warc/aut/example.warc.gz"]
        _print_json(bench_warc_memory(services.settings, sources, size_mb=args.size_mb))
        return 0
    if args.what == "widget":
        from eval.bench import bench_widget

        url = args.url or f"http://{services.settings.serve.host}:{services.settings.serve.port}"
        _print_json(bench_widget(url, sessions=args.sessions, per_session=args.per_session,
                                 questions_file=args.questions, duration_s=args.duration))
        return 0
    if args.what == "refcheck":
        from eval.refcheck_bench import bench_refcheck, format_refcheck_bench

        result = bench_refcheck(services.settings, args.paths or ["../shared/data/marc"], seed=args.seed)
        _print_json(result) if args.json else print(format_refcheck_bench(result))
        return 0
    if args.what == "ingest":
        if not args.paths:
            raise SettingsError("refdesk bench ingest needs one or more PATHs")
        result = bench_ingest(services.settings, args.paths)
        _print_json(result) if args.json else print(format_ingest_bench(result))
        return 0

    result = bench_answer(services, n=args.n, k=args.k, questions_file=args.questions)
    if args.json:
        _print_json(result)
    else:
        from eval.bench import format_answer_bench

        print(format_answer_bench(result))
    return 0


def cmd_eval(services, args) -> int:
    from pathlib import Path

    if args.action == "compare":
        from eval.compare import compare, format_compare

        if len(args.paths) != 2:
            raise SettingsError("refdesk eval compare needs two run folders: RUN_A RUN_B")
        result = compare(Path(args.paths[0]), Path(args.paths[1]))
        _print_json(result) if args.json else print(format_compare(result))
        return 0
    if args.action == "convert-halueval":
        from eval.halueval import convert

        if len(args.paths) != 2:
            raise SettingsError("refdesk eval convert-halueval needs IN (HaluEval qa_data.json) and OUT (.jsonl)")
        result = convert(Path(args.paths[0]), Path(args.paths[1]), limit=args.limit, mismatched=args.mismatched)
        for error in result["errors"]:
            print(error, file=sys.stderr)
        print(f"{result['written']} questions written to {result['out']} ({result['read']} read, "
              f"{result['mismatched']} with a mismatched context, {len(result['errors'])} bad lines)")
        return 0

    from eval.runner import EvalRunner, RunMismatch

    if len(args.paths) != 1:
        raise SettingsError("refdesk eval run needs one SET.jsonl")
    set_path = Path(args.paths[0])
    if not set_path.is_file():
        raise SettingsError(f"{set_path}: no such test set")
    k = args.k or services.settings.retrieval.top_k
    default = f"{set_path.stem}-{'retrieve' if args.retrieve_only else args.mode}-k{k}"
    out = Path(args.out) if args.out else services.settings.data_dir / "eval" / default
    if args.fresh and out.exists():
        import shutil

        shutil.rmtree(out)
    runner = EvalRunner(services, out, k=k, retrieve_only=args.retrieve_only, mode=args.mode,
                        progress=not args.json and sys.stderr.isatty())
    try:
        summary = runner.run(set_path)
    except RunMismatch as exc:
        raise SettingsError(str(exc)) from None
    for error in summary["set_errors"]:
        print(error, file=sys.stderr)
    if args.json:
        _print_json(summary)
    else:
        print(f"{summary['questions']} questions ({summary['resumed_from']} from an earlier, interrupted run) "
              f"in {summary['seconds_this_invocation']} s; outcomes: "
              + ", ".join(f"{k_}={v}" for k_, v in sorted(summary["outcomes"].items())))
        for name, v in summary["metrics"].items():
            print(f"  {name:28} {v['value']:.3f}  [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]  n={v['n']:g}")
        total = summary["latency_s"].get("total")
        if total:
            print(f"  latency total p50 {total['p50']:.2f} s, p95 {total['p95']:.2f} s, p99 {total['p99']:.2f} s")
        print(f"report: {out / 'report.html'}")
    return 0


def cmd_refcheck(services, args) -> int:
    from pathlib import Path

    from assistant.refcheck.parse import decode

    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise SettingsError(f"{path}: no such file")
        data = path.read_bytes()
    text, _encoding = decode(data)
    report = services.refcheck.check_text(text)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.text(), end="")
    return 0


def _read_password(args) -> str:
    import getpass

    if getattr(args, "generate", False):
        import secrets

        return secrets.token_urlsafe(12)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SettingsError("the two passwords differ")
    return first


def cmd_user(services, args) -> int:
    accounts = services.accounts
    if args.action == "list":
        users = accounts.users()
        if args.json:
            _print_json(users)
        else:
            print("\n".join(u["username"] for u in users) or "no librarian accounts")
        return 0
    if not args.name:
        raise SettingsError(f"refdesk user {args.action} needs a NAME")
    if args.action == "remove":
        accounts.remove_user(args.name)
        print(f"removed {args.name}")
        return 0
    password = _read_password(args)
    if args.action == "add":
        accounts.add_user(args.name, password)
    else:
        accounts.set_password(args.name, password)
    print(f"{'added' if args.action == 'add' else 'new password for'} {args.name}"
          + (f"; password: {password}" if args.generate else ""))
    return 0


def cmd_apikey(services, args) -> int:
    accounts = services.accounts
    if args.action == "create":
        key, secret = accounts.create_key(args.name or "")
        if args.json:
            _print_json({**key.as_dict(), "secret": secret})
        else:
            print(f"API key #{key.id} ({key.name}): {secret}\nKeep it now: refdesk stores only its hash.")
        return 0
    if args.action == "revoke":
        if args.id is None:
            raise SettingsError("refdesk apikey revoke needs the key's ID (refdesk apikey list)")
        accounts.revoke_key(args.id)
        print(f"revoked API key #{args.id}")
        return 0
    keys = [k.as_dict() for k in accounts.keys()]
    if args.json:
        _print_json(keys)
    else:
        for k in keys:
            state = "revoked" if k["revoked_at"] else "active"
            print(f"#{k['id']} {k['name']} {k['prefix']}… {state}")
    return 0


def cmd_audit(services, args) -> int:
    import datetime as dt

    entries = services.accounts.audit_log(args.n)
    if args.json:
        _print_json(entries)
    else:
        for e in entries:
            when = dt.datetime.fromtimestamp(e["at"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            print(f"{when}  {e['actor']}  {e['action']}  {e['detail']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refdesk", description="Library reference assistant with checked citations.")
    p.add_argument("--data-dir", help="data directory (env REFDESK_DATA_DIR; default ./data)")
    p.add_argument("--config", help="settings file (default ./refdesk.toml, then DATA_DIR/refdesk.toml)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="ingest files or folders into the store")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    s.add_argument("--sync", action="store_true",
                   help="also remove records no longer in their file, and files gone from the given folders")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("ask", help="ask a question")
    s.add_argument("question")
    s.add_argument("--json", action="store_true")
    s.add_argument("--retrieve-only", action="store_true", help="skip the LLM, show the sources")
    s.add_argument("--k", type=int, help="number of sources to retrieve")
    s.add_argument("--filter", action="append", metavar="KEY<OP>VALUE",
                   help="only sources whose metadata match, e.g. year<1900, format=book, language=English, "
                        "source_type=marc (repeatable: all must hold)")
    s.add_argument("--handoff", action="store_true", help="also put the question in the librarians' hand-off queue")
    s.add_argument("--contact", help="with --handoff: how the librarian can reach the asker (optional)")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("verify", help="check an answer with [n] markers against the store")
    s.add_argument("--question", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--answer", help="the answer text")
    g.add_argument("--answer-file", help="file with the answer text, - for stdin")
    s.add_argument("--sources", help="comma-separated chunk ids to number [1].. instead of retrieving")
    s.add_argument("--k", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("handoff", help="the librarians' hand-off queue")
    s.add_argument("action", choices=["list", "show", "close"])
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--note", help="close: what was done")
    s.add_argument("--all", action="store_true", help="list: closed ones too")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_handoff)

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

    s = sub.add_parser("refcheck", help="which references of a list does the library hold?")
    s.add_argument("file", help="text (one reference per line or paragraph), BibTeX or RIS; - for stdin")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_refcheck)

    s = sub.add_parser("user", help="librarian accounts (console sign-in)")
    s.add_argument("action", choices=["add", "remove", "list", "passwd"])
    s.add_argument("name", nargs="?")
    s.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    s.add_argument("--generate", action="store_true", help="add/passwd: make a random password and print it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_user)

    s = sub.add_parser("apikey", help="API keys for /v1/chat/completions")
    s.add_argument("action", choices=["create", "list", "revoke"])
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--name", help="create: who or what uses the key")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_apikey)

    s = sub.add_parser("audit", help="the log of librarian actions (no patron content)")
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("eval", help="run a test set, compare runs, convert HaluEval")
    s.add_argument("action", choices=["run", "compare", "convert-halueval"])
    s.add_argument("paths", nargs="+", help="run: SET.jsonl; compare: RUN_A RUN_B; convert-halueval: IN OUT")
    s.add_argument("--out", help="run: output folder (default DATA_DIR/eval/<set>-<mode>-k<k>; resumes if present)")
    s.add_argument("--fresh", action="store_true", help="run: discard earlier results in the output folder")
    s.add_argument("--retrieve-only", action="store_true", help="run: retrieval metrics only, no LLM")
    s.add_argument("--k", type=int, help="run: sources retrieved per question")
    s.add_argument("--mode", choices=["evidence", "plain"], default="evidence",
                   help="run: evidence-first answers (default) or the LLM's own answer, checked")
    s.add_argument("--limit", type=int, help="convert-halueval: first N records only")
    s.add_argument("--mismatched", type=float, default=0.25,
                   help="convert-halueval: share of questions repeated with another question's context (unanswerable)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("bench", help="benchmarks")
    s.add_argument("what", choices=["answer", "ingest", "warc-memory", "refcheck", "widget"])
    s.add_argument("--url", help="widget: a running refdesk serve (default: serve.host:serve.port)")
    s.add_argument("--sessions", type=int, default=20, help="widget: patrons at once")
    s.add_argument("--per-session", type=int, default=2, help="widget: questions each")
    s.add_argument("--duration", type=float, default=0.0,
                   help="widget: ask for this many seconds instead (patrons told 'busy' wait as told, up to 60 s)")
    s.add_argument("--size-mb", type=int, default=1024, help="warc-memory: size of the WARC to build and stream")
    s.add_argument("paths", nargs="*", help="ingest: files or folders to ingest into a temporary store")
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--seed", type=int, default=7, help="refcheck: seed of the case builder")
    s.add_argument("--k", type=int)
    s.add_argument("--questions", help="file with one question per line")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)
    return p


READS_STORE = {"ask", "status", "serve", "verify", "refcheck"}  # and eval run, unless its set brings contexts


def main(argv: Sequence[str] | None = None, services=None) -> int:
    from assistant.llm import LLMUnavailable
    from assistant.models import ModelError
    from assistant.prompts import PromptError
    from assistant.filters import FilterError
    from assistant.handoff import HandoffError
    from assistant.store import StoreError
    from assistant.vllm_launcher import LauncherError
    from assistant.auth.accounts import AccountError
    from ingest.lock import IngestLocked

    args = build_parser().parse_args(argv)
    try:
        if services is None:
            from assistant.services import Services

            services = Services(Settings.load(args.config, data_dir=args.data_dir))
        data_dir = services.settings.data_dir
        if args.command in READS_STORE and services.settings.store.mode == "embedded" and not data_dir.is_dir():
            raise SettingsError(f"data dir {data_dir} does not exist: ingest something first "
                                f"(refdesk --data-dir {data_dir} ingest PATH)")
        return args.func(services, args)
    except (SettingsError, StoreError, LauncherError, ModelError, PromptError, LLMUnavailable, HandoffError,
            OSError, FilterError, AccountError, IngestLocked) as exc:
        print(f"refdesk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

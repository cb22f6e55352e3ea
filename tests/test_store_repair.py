"""A store whose vector index Chroma cannot load (its index_metadata.pickle cut short, as a process killed
while Chroma saves the index leaves it; seen here after SIGTERM ended a 1 M-record ingest) is named as damaged,
with the way out, instead of a traceback; `refdesk store repair --yes` makes it again from the lexical index's
copies, with the same ids and vectors, and the next ingest of the same paths finds nothing to do. Each command
runs in its own process, as a person would run them (one process keeps Chroma's index in memory and would not
see the damage). A repair stopped part-way goes on, and copies the manifest does not list are not brought back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def refdesk(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFDESK_")}
    env.update(REFDESK_EMBEDDING__BACKEND="fake", REFDESK_EMBEDDING__MODEL="hash", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def stored(data_dir: Path) -> dict[str, tuple[list[float], str, dict]]:
    """id -> (vector, text, metadata) of every chunk in Chroma, after `refdesk status` opened the store."""
    out = refdesk(data_dir, "status", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    import chromadb

    client = chromadb.PersistentClient(path=str(data_dir / "chroma"))
    (collection,) = client.list_collections()
    got = client.get_collection(collection.name).get(include=["embeddings", "documents", "metadatas"])
    return {
        cid: ([round(float(x), 6) for x in vector], text, own_metadata(meta))
        for cid, vector, text, meta in zip(
            got["ids"], got["embeddings"], got["documents"], got["metadatas"], strict=True
        )
    }


def own_metadata(meta: dict) -> dict:
    """Without llama-index's node keys (a JSON copy of the node, whose key order may differ). A chunk with no
    title of its own was searched by its record's title: the index's copy gives that as its search title."""
    from assistant.backends.lexical import NODE_KEYS

    own = {k: v for k, v in meta.items() if k not in NODE_KEYS}
    own.setdefault("search_title", own.get("title"))
    return own


@pytest.mark.reliability
def test_a_cut_off_vector_index_is_named_and_made_again_from_the_lexical_copies(shared_data, tmp_path):
    paths = [str(shared_data / "marc" / "marc4j"), str(shared_data / "ead" / "umn")]
    data_dir = tmp_path / "data"
    first = refdesk(data_dir, "ingest", "--json", *paths)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    chunks = json.loads(first.stdout)["chunks_added"]
    pickles = list((data_dir / "chroma").glob("*/index_metadata.pickle"))
    assert chunks > 1000 and len(pickles) == 1  # enough chunks that Chroma saved its index to files
    before = stored(data_dir)
    assert len(before) == chunks

    index = pickles[0]
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    status = refdesk(data_dir, "status")
    assert status.returncode == 2
    assert "cannot be loaded" in status.stderr and "refdesk store repair --yes" in status.stderr
    assert "Traceback" not in status.stderr

    asked = refdesk(data_dir, "store", "repair")
    assert asked.returncode == 1 and "--yes" in asked.stdout
    assert refdesk(data_dir, "status").returncode == 2  # nothing dropped without --yes
    repaired = refdesk(data_dir, "store", "repair", "--yes")
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert f"{chunks} chunks embedded and stored" in repaired.stdout
    after = stored(data_dir)
    assert after.keys() == before.keys()
    assert after == before  # the same vectors, texts and metadata, without reading a source file

    again = refdesk(data_dir, "ingest", "--json", *paths)
    assert again.returncode == first.returncode, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["chunks_added"] == 0 and summary["chunks_removed"] == 0
    assert summary["files_unchanged"] == json.loads(first.stdout)["files"] - summary["files_failed"]
    assert "loads" in refdesk(data_dir, "store", "repair").stdout  # nothing left to repair


def test_a_stopped_repair_goes_on_and_copies_the_manifest_does_not_list_stay_out(shared_data, fake_settings, capsys):
    from assistant.backends.store import ChunkStore, StoreDamaged, make_client, store_location
    from assistant.core.progress import NoProgress
    from assistant.services import Services

    services = Services(fake_settings)
    chabon = str((shared_data / "marc" / "marc4j" / "chabon.mrc").resolve())  # as the manifest names it
    paths = [chabon, str(shared_data / "ead" / "umn" / "CLRC-2155.xml")]
    manifest = services.manifest()
    services.ingestor(manifest, progress=False).ingest(paths)
    store = services.store
    every = {c.id: c for c in store.iter_chunks()}
    gone = manifest.chunk_ids(chabon)
    assert gone and len(every) - len(gone) > 6  # enough for three batches of 3
    manifest.forget_file(chabon)  # as a delete stopped between the store and its lexical index leaves copies
    listed = manifest.listed_chunks()  # asks the manifest's database, open to the end
    expected = set(every) - gone
    assert len(listed) == len(expected) and all(cid in listed for cid in expected)
    assert not any(cid in listed for cid in gone)
    _ids, vectors = store.vectors(sorted(every))
    before = dict(zip(_ids, vectors.tolist(), strict=True))

    def rebuilding_store():
        settings = services.settings
        return ChunkStore(
            make_client(settings),
            settings.collection,
            services.embedder_name,
            store_location(settings),
            store.lexical,
            settings.store,
            rebuilding=True,
        )

    store.client.delete_collection(fake_settings.collection)  # what repair does to a damaged one
    embed = services.embedder.get_text_embedding_batch
    calls = []

    def embed_then_stop(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return embed(texts)

    with pytest.raises(KeyboardInterrupt):
        rebuilding_store().rebuild_from_lexical(embed_then_stop, listed, NoProgress(), batch_size=3)
    with pytest.raises(StoreDamaged, match="is being made again"):
        ChunkStore.from_settings(fake_settings, services.embedder_name)  # never taken for a finished store

    from assistant.cli import main

    assert main(["store", "repair"], services=Services(fake_settings)) == 0  # no --yes: nothing is dropped now
    said = capsys.readouterr().out
    assert f"going on with the repair stopped at 3 of {len(every)} chunks" in said
    assert f"{len(expected) - 3} chunks embedded and stored (3 stored before the repair was stopped)" in said
    assert f"{len(gone)} copies the manifest does not list dropped" in said
    reopened = ChunkStore.from_settings(fake_settings, services.embedder_name)
    assert not reopened.rebuilding
    assert set(reopened.ids()) == expected
    assert reopened.lexical.count() == len(expected)
    _ids, vectors = reopened.vectors(sorted(expected))
    assert all(np.allclose(before[cid], row) for cid, row in zip(_ids, vectors.tolist(), strict=True))
    for chunk in reopened.iter_chunks():
        assert chunk.text == every[chunk.id].text
        assert chunk.metadata == every[chunk.id].metadata
    manifest.close()

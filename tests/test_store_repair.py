"""A store whose vector index Chroma cannot load (its index_metadata.pickle cut short, as a process killed
while Chroma saves the index leaves it; seen here after SIGTERM ended a 1 M-record ingest) is named as damaged,
with the way out, instead of a traceback; `refdesk store repair --yes` drops it and the lexical index, and
the next ingest of the same paths stores exactly what was there. Each command runs in its own process, as a
person would run them (one process keeps Chroma's index in memory and would not see the damage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability


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


def stored_ids(data_dir: Path) -> set[str]:
    out = refdesk(data_dir, "status", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    import chromadb

    client = chromadb.PersistentClient(path=str(data_dir / "chroma"))
    (collection,) = client.list_collections()
    return set(client.get_collection(collection.name).get(include=[])["ids"])


def test_a_cut_off_vector_index_is_named_repaired_and_ingested_again(shared_data, tmp_path):
    paths = [str(shared_data / "marc" / "marc4j"), str(shared_data / "ead" / "umn")]
    data_dir = tmp_path / "data"
    first = refdesk(data_dir, "ingest", "--json", *paths)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    chunks = json.loads(first.stdout)["chunks_added"]
    pickles = list((data_dir / "chroma").glob("*/index_metadata.pickle"))
    assert chunks > 1000 and len(pickles) == 1  # enough chunks that Chroma saved its index to files
    before = stored_ids(data_dir)
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
    assert "run `refdesk ingest` on the same paths" in repaired.stdout

    again = refdesk(data_dir, "ingest", "--json", *paths)
    assert again.returncode in (0, 1), again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["chunks_added"] == chunks and summary["files_unchanged"] == 0
    assert stored_ids(data_dir) == before
    assert "loads" in refdesk(data_dir, "store", "repair").stdout  # nothing left to repair

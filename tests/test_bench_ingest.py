"""`refdesk bench ingest` runs with whichever embedding back-end is configured (it assumed torch's
SentenceTransformer until the twenty-sixth session, and failed with an AttributeError on the ONNX and test
back-ends), and reports the peak memory of the processes the run started, which RUSAGE_SELF leaves out.
Each run is a process of its own, as a person runs it, so its children are the run's alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def bench_ingest(data_dir: Path, path: Path, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFDESK_")}
    env.update(REFDESK_EMBEDDING__BACKEND="fake", REFDESK_EMBEDDING__MODEL="hash", HF_HUB_OFFLINE="1", **env_extra)
    out = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--data-dir", str(data_dir), "bench", "ingest", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_bench_ingest_measures_the_test_back_end_and_the_read_process_memory(shared_data, tmp_path):
    catalogue = shared_data / "marc" / "marc4j" / "065001035.mrc"  # 177 kB, under the 2 MB read-process bound

    in_thread = bench_ingest(tmp_path / "a", catalogue)
    in_process = bench_ingest(tmp_path / "b", catalogue, REFDESK_INGEST__READ_WORKER_MIN_BYTES="0")

    for got in (in_thread, in_process):
        assert got["model"] == "fake:hash"
        assert got["bare_encode_with"] == "HashEmbedding.get_text_embedding_batch"
        assert got["files_failed"] == 0 and got["chunks"] > 0 and got["ratio_ingest_to_bare_encode"] > 0
    assert (in_thread["records"], in_thread["chunks"]) == (in_process["records"], in_process["chunks"])
    # MARC starts no extraction worker: without the read process the run has no child at all.
    assert in_thread["peak_child_rss_mb"] == 0
    assert in_process["peak_child_rss_mb"] > 20  # a Python process that imported the MARC reader

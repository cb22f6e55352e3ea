"""kill -9 a real `refdesk ingest` at 10 random points; every re-run must end with exactly the clean run's
chunks, and Chroma and the manifest must agree (no orphans on either side). SIGTERM and Ctrl-C's SIGINT stop
it cleanly: their exit status, every chunk the manifest names stored, and the same rerun. The Ray engine,
stopped (SIGTERM, kill -9) after it has recorded some files, resumes to the same chunks too."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent


def corpus(shared: Path) -> list[str]:
    """Several formats, enough records that a kill lands mid-run: real MARC, EAD and a WARC."""
    return [str(shared / "marc" / "marc4j"), str(shared / "ead" / "umn"), str(shared / "warc" / "warcio")]


def sigint_as_in_a_terminal() -> None:
    """A foreground command's SIGINT is the default one; a background job of a script inherits it ignored
    (and Python then installs no KeyboardInterrupt handler), which may be how these tests were started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_ingest(data_dir: Path, paths: list[str], *options: str, **env_extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFDESK_")}
    env.update(
        REFDESK_DATA_DIR=str(data_dir),
        REFDESK_EMBEDDING__BACKEND="fake",
        REFDESK_EMBEDDING__MODEL="hash",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **env_extra,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "ingest", "--json", *options, *paths],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=sigint_as_in_a_terminal,
    )


def files_recorded(data_dir: Path) -> int:
    """Files the running ingest has recorded so far (0 before its manifest exists)."""
    from assistant.core.settings import Settings

    path = Settings.load(data_dir=str(data_dir), embedding={"backend": "fake", "model": "hash"}).manifest_path
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.OperationalError:  # its tables are not created yet
        return 0
    finally:
        db.close()


def state(data_dir: Path) -> tuple[set[str], set[str], set[str]]:
    """(chunk ids in Chroma, chunk ids in the manifest, files in the manifest)."""
    from assistant.backends.store import ChunkStore
    from assistant.core.settings import Settings

    settings = Settings.load(data_dir=str(data_dir), embedding={"backend": "fake", "model": "hash"})
    store = ChunkStore.from_settings(settings, "fake:hash")
    stored = {c.id for c in store.iter_chunks()}
    db = sqlite3.connect(settings.manifest_path)
    try:
        manifest = {r[0] for r in db.execute("SELECT chunk_id FROM chunks")}
        files = {r[0] for r in db.execute("SELECT path FROM files")}
    finally:
        db.close()
    return stored, manifest, files


@pytest.fixture(scope="module")
def clean_run(shared_data, tmp_path_factory) -> tuple[list[str], float, set[str], set[str]]:
    """One uninterrupted ingest of the corpus, shared by the tests: (paths, seconds, chunk ids, files)."""
    paths = corpus(shared_data)
    clean_dir = tmp_path_factory.mktemp("clean")
    t0 = time.monotonic()
    proc = run_ingest(clean_dir, paths)
    _out, err = proc.communicate(timeout=600)
    clean_s = time.monotonic() - t0
    assert proc.returncode in (0, 1), err.decode()[-2000:]
    clean_chunks, clean_manifest, clean_files = state(clean_dir)
    assert clean_chunks and clean_chunks == clean_manifest
    return paths, clean_s, clean_chunks, clean_files


def test_kill_9_at_ten_points_then_rerun_gives_the_clean_counts(clean_run, tmp_path):
    paths, clean_s, clean_chunks, clean_files = clean_run

    rng = random.Random(20261129)
    points = sorted(rng.uniform(0.2, 0.95) * clean_s for _ in range(10))
    killed_mid_run = 0
    for i, after_s in enumerate(points):
        data_dir = tmp_path / f"run{i}"
        proc = run_ingest(data_dir, paths)
        time.sleep(after_s)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_mid_run += 1
        proc.wait(60)
        rerun = run_ingest(data_dir, paths)
        _out, err = rerun.communicate(timeout=600)
        assert rerun.returncode in (0, 1), err.decode()[-2000:]
        chunks, manifest, files = state(data_dir)
        assert chunks == clean_chunks, f"kill at {after_s:.1f} s: {len(chunks)} chunks, clean {len(clean_chunks)}"
        assert manifest == chunks, f"kill at {after_s:.1f} s: manifest and Chroma disagree"
        assert files == clean_files
    assert killed_mid_run >= 8  # the points really fell inside the runs


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_cleanly_and_the_rerun_gives_the_clean_counts(clean_run, tmp_path, signum, status):
    paths, clean_s, clean_chunks, clean_files = clean_run

    data_dir = tmp_path / "stopped"
    proc = run_ingest(data_dir, paths)
    time.sleep(clean_s / 2)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err.decode()[-2000:]
    assert "ingest stopped" in err.decode() and "run the same command again" in err.decode()
    chunks, manifest, files = state(data_dir)
    assert manifest <= chunks  # every chunk of a finished file is stored (unfinished files' may be, too)
    assert files < clean_files  # stopped part-way

    rerun = run_ingest(data_dir, paths)  # the lock was released
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode in (0, 1), err.decode()[-2000:]
    chunks, manifest, files = state(data_dir)
    assert chunks == manifest == clean_chunks
    assert files == clean_files


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_the_ray_engine_stopped_after_recording_files_resumes_to_the_clean_chunks(
    clean_run, ray_cluster, tmp_path, signum
):
    """The local engine's clean run is the reference (both engines give the same ids: test_ray_engine)."""
    paths, _clean_s, clean_chunks, clean_files = clean_run
    on_ray = ("--ray-address", ray_cluster)
    small_writes = {"REFDESK_INGEST__RAY__BATCH_SIZE": "16"}  # many writes, so a stop lands between two

    data_dir = tmp_path / "stopped"
    proc = run_ingest(data_dir, paths, *on_ray, **small_writes)
    deadline = time.monotonic() + 300
    while files_recorded(data_dir) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    os.killpg(proc.pid, signum) if signum == signal.SIGKILL else proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, err.decode()[-2000:]
        assert "ingest stopped (SIGTERM)" in err.decode()
    chunks, manifest, files = state(data_dir)
    assert manifest <= chunks  # every chunk of a recorded file is stored
    assert 0 < len(files) < len(clean_files)  # stopped part-way

    rerun = run_ingest(data_dir, paths, *on_ray, **small_writes)  # the lock was released, even by kill -9
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode in (0, 1), err.decode()[-2000:]
    chunks, manifest, files = state(data_dir)
    assert chunks == manifest == clean_chunks
    assert files == clean_files


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_the_read_process_ends_with_the_ingest_that_started_it(shared_data, tmp_path, signum):
    """SIGTERM: the clean stop ends it. kill -9 of the ingest alone (not its group): it notices it has no
    parent and exits, rather than wait for ever on a queue nobody reads."""
    import psutil

    # EAD and MARC only: the web archives' extraction worker is a process of another kind
    paths = [str(shared_data / "ead"), str(shared_data / "marc" / "marc4j")]
    data_dir = tmp_path / "data"
    proc = run_ingest(data_dir, paths, REFDESK_INGEST__READ_WORKER_MIN_BYTES="0")
    deadline = time.monotonic() + 300
    while files_recorded(data_dir) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    started = psutil.Process(proc.pid).children(recursive=True)
    assert started, "no read process was started"
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, err.decode()[-2000:]
    _gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    chunks, manifest, files = state(data_dir)
    assert manifest <= chunks and files  # what was recorded is stored

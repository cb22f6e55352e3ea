"""The ingest stages as units: how the Ray engine groups files for its read tasks, what a FileRead counts,
how its driver holds a stop until the write in flight is done, and the synthetic catalogue of `refdesk bench
scale` (read back with pymarc)."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assistant.core.types import AlsoCaptured, Ignored, SkippedRecord
from ingest.registry import ReaderError
from ingest.stages import FileJob, FileRead, IngestSummary


def _job(name: str, fmt: str) -> FileJob:
    return FileJob(Path(f"/data/{name}"), fmt, "sha", 1)


def test_every_file_is_a_read_task_of_its_own_and_a_web_archive_carries_its_planned_holders():
    """Web archives too: the first pass gave each the payload holders it meets (tests/test_payload_plan.py)."""
    from ingest.ray_engine import read_jobs

    jobs = [
        _job("a.mrc", "marc"),
        _job("b.warc.gz", "warc"),
        _job("c.xml", "ead"),
        _job("d.wacz", "wacz"),
    ]
    known = {"/data/b.warc.gz": {"x"}, "/data/c.xml": {"y"}}
    views = {"/data/b.warc.gz": {"k": "holder"}, "/data/d.wacz": {}}
    tasks = read_jobs(jobs, known, views)
    assert [t.job.path.name for t in tasks] == ["a.mrc", "b.warc.gz", "c.xml", "d.wacz"]
    assert [t.known for t in tasks] == [set(), {"x"}, {"y"}, set()]
    assert [t.payloads for t in tasks] == [{}, {"k": "holder"}, {}, {}]


def test_web_archives_are_planned_in_batches_of_consecutive_files_up_to_a_size():
    """Small archives together (each first-pass task may start a worker), a large one alone, order kept."""
    from ingest.ray_engine import plan_batches

    sizes = {"a": 40, "b": 50, "c": 20, "d": 150, "e": 10}
    jobs = [FileJob(Path(f"/data/{name}.warc.gz"), "warc", "sha", size) for name, size in sizes.items()]
    batches = plan_batches(jobs, max_bytes=100)
    assert [[j.path.name[0] for j in batch] for batch in batches] == [["a", "b"], ["c"], ["d"], ["e"]]
    assert plan_batches([], max_bytes=100) == []


class Stopped(KeyboardInterrupt):
    pass


def _stop(signum, frame):
    raise Stopped(signum)


def test_a_stop_during_the_ray_drivers_write_is_acted_on_after_it():
    from ingest.ray_engine import stops_held

    written = []
    previous = signal.signal(signal.SIGTERM, _stop)
    # Python's own Ctrl-C handler, set here: a run started in the background (nohup, `cmd &` in a script)
    # begins with SIGINT ignored, and an ignored signal stays ignored after the block too.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Stopped):
            with stops_held():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)  # twice: acted on once
                written.append("the whole batch")
        assert written == ["the whole batch"]
        assert signal.getsignal(signal.SIGTERM) is _stop  # put back
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C: Python's own handler, also after the block
            with stops_held():
                os.kill(os.getpid(), signal.SIGINT)
                written.append("the next batch")
        assert written[-1] == "the next batch"
        with stops_held():  # nothing sent, nothing raised
            written.append("the last batch")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with stops_held():  # ignored before the block: ignored after it
            os.kill(os.getpid(), signal.SIGINT)
            written.append("a batch")
        assert written[-1] == "a batch" and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def test_off_the_main_thread_stops_are_not_held():
    from ingest.ray_engine import stops_held

    entered = []

    def write():
        with stops_held():  # signal.signal would raise ValueError here
            entered.append(True)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert entered == [True]


def test_a_default_sigterm_held_during_the_write_still_ends_the_process_after_it():
    code = (
        "import os, signal\n"
        "from ingest.ray_engine import stops_held\n"
        "with stops_held():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('written', flush=True)\n"
        "print('went on')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout == "written\n"


def test_file_read_counts_what_the_reader_yields():
    read = FileRead(_job("x.warc.gz", "warc"))
    read.take(SkippedRecord(path="/data/x.warc.gz", record="r1", reason="bad"), None)
    read.take(Ignored(reason="robots.txt"), None)
    read.take(AlsoCaptured(record_id="r2", date="2008"), None)
    read.take(AlsoCaptured(record_id="r3", date="2009", source_file="/data/other.warc.gz", record_here="r4"), None)
    assert read.captures == {"r2": ["2008"]}
    assert read.elsewhere == {("/data/other.warc.gz", "r3"): ["2009"]} and read.pointing == {"r4"}
    read.fail(ReaderError("/data/x.warc.gz", "archive breaks at byte 10", record="after byte 10"))
    read.fail(RuntimeError("later"))  # the first error is the one reported
    summary = IngestSummary()
    read.report(summary)
    assert summary.files_failed == 1 and summary.stored_elsewhere == 1
    assert [s.reason for s in summary.skipped] == ["bad", "archive breaks at byte 10"]
    assert summary.left_out == {"robots.txt": 1} and not read.complete


def test_synthetic_catalogue_renumbers_real_records(shared_data, tmp_path):
    from pymarc import MARCReader

    from eval.scale import make_catalogue

    sources = [shared_data / "marc/marc4j/chabon.mrc", shared_data / "marc/marc4j/summerland.mrc"]
    made = make_catalogue(sources, tmp_path / "cat", records=7, per_file=3)
    assert made == {"records": 7, "files": 3, "templates": 3}
    read = []
    for path in sorted((tmp_path / "cat").iterdir()):
        with path.open("rb") as fh:
            read += [r for r in MARCReader(fh, to_unicode=True)]
    assert [r["001"].data for r in read] == [f"refdesk-syn-{n:08d}" for n in range(7)]
    originals = []
    for source in sources:
        with source.open("rb") as fh:
            originals += [r.title for r in MARCReader(fh, to_unicode=True)]
    assert [r.title for r in read] == [originals[n % 3] for n in range(7)]


def test_bench_scale_ingests_the_catalogue_and_measures_it(shared_data, clean_env, tmp_path):
    """The local engine in a process of its own (the fake embedder through the environment it inherits):
    every record counted, its memory and store measured."""
    from eval.scale import bench_scale

    clean_env.setenv("REFDESK_EMBEDDING__BACKEND", "fake")
    clean_env.setenv("REFDESK_EMBEDDING__MODEL", "hash")
    result = bench_scale([str(shared_data / "marc/marc4j")], records=40, per_file=15, engines=["local"])
    got = result["engines"]["local"]
    assert result["catalogue"]["files"] == 3
    assert (got["records"], got["files_failed"]) == (40, 0) and got["chunks"] >= 40
    assert got["peak_rss_mb"] > 100 and got["store_mb"] > 0 and got["records_per_s"] > 0
    assert "ray_over_local_records_per_s" not in result


def test_bench_scale_runs_each_engine_with_the_derived_model_this_data_dir_prepared(clean_env, tmp_path):
    """Each engine ingests into a fresh store; a derived model (a refined one cannot be made in an empty
    store) is the one the configured data dir holds, passed to the ingest process through its environment."""
    from assistant.core.settings import Settings
    from eval.scale import model_env

    settings = Settings.load(data_dir=str(tmp_path / "library"), embedding={"backend": "static-refined"})
    env = model_env(settings)
    for key, value in env.items():
        clean_env.setenv(key, value)
    clean_env.setenv("REFDESK_EMBEDDING__BACKEND", "static-refined")
    fresh = Settings.load(data_dir=str(tmp_path / "scale" / "local")).embedder
    assert fresh.static_refined_dir == str(
        tmp_path.resolve() / "library" / "models" / "static-refined-all-MiniLM-L6-v2"
    )
    assert fresh.static_dir == settings.embedder.static_dir
    assert Settings.load(data_dir=str(tmp_path / "scale" / "local")).manifest_path.name == (
        "manifest-refdesk_chunks_static-refined.sqlite"
    )

"""The local engine's read process (ingest/read_worker.py): real spawned processes over the demo corpus."""

import os
import shutil
import sqlite3
from functools import partial
from pathlib import Path

from assistant.core.settings import Settings
from assistant.services import Services, read_stage_for

# The read stages below are built in the spawned process, from these module-level factories.


def logging_read_stage(settings: Settings, log: Path):
    """The real read stage, noting each file it reads with the process that reads it."""
    stage = read_stage_for(settings)
    read_file = stage.file

    def file(job, payloads, extractor=None):
        with log.open("a") as fh:
            fh.write(f"{os.getpid()} {job.path.name}\n")
        return read_file(job, payloads, extractor)

    stage.file = file
    return stage


def dying_read_stage(settings: Settings, dies_on: str):
    """The real read stage, whose process ends with exit code 3 when it comes to dies_on."""
    stage = read_stage_for(settings)
    read_file = stage.file

    def file(job, payloads, extractor=None):
        if job.path.name == dies_on:
            os._exit(3)
        return read_file(job, payloads, extractor)

    stage.file = file
    return stage


def never_starting_read_stage(settings: Settings):
    os._exit(1)


def services_for(fake_settings, data_dir: Path, min_bytes: int) -> Services:
    settings = fake_settings.model_copy(
        update={
            "data_dir": data_dir,
            "ingest": fake_settings.ingest.model_copy(update={"read_worker_min_bytes": min_bytes}),
        }
    )
    return Services(settings)


def run(services: Services, paths, make_read_stage=None):
    manifest = services.manifest()
    try:
        ingestor = services.ingestor(manifest, progress=False)
        if make_read_stage is not None:
            ingestor.make_read_stage = make_read_stage
        return ingestor.ingest([str(p) for p in paths])
    finally:
        manifest.close()


def stored(services: Services) -> tuple[set, set]:
    """(chunk id, file name, record id) and (file name, records, chunks) of the files recorded complete, as
    the manifest has them."""
    db = sqlite3.connect(str(services.settings.manifest_path))
    try:
        chunks = {(c, Path(p).name, r) for c, p, r in db.execute("SELECT chunk_id, path, record_id FROM chunks")}
        files = {
            (Path(p).name, n, c) for p, n, c in db.execute("SELECT path, records, chunks FROM files WHERE sha256 != ''")
        }
    finally:
        db.close()
    return chunks, files


def bytes_read_apart(corpus: Path) -> int:
    return sum(p.stat().st_size for p in corpus.iterdir() if not p.name.endswith(".warc.gz"))


def test_files_read_in_the_read_process_give_what_the_reader_thread_gives(fake_settings, demo_copy, tmp_path):
    in_thread = services_for(fake_settings, tmp_path / "thread", min_bytes=10**12)
    # the run's files, not any one of them, are worth a process: these come to exactly the bound
    apart = services_for(fake_settings, tmp_path / "apart", min_bytes=bytes_read_apart(demo_copy))
    log = tmp_path / "read.log"

    expected = run(in_thread, [demo_copy])
    summary = run(apart, [demo_copy], partial(logging_read_stage, apart.settings, log))

    read_apart = [line.split() for line in log.read_text().splitlines()]
    assert {pid for pid, _ in read_apart} - {str(os.getpid())} == {pid for pid, _ in read_apart}
    # every file but the web archive, whose reader shares payloads across the run's files
    assert sorted(name for _, name in read_apart) == sorted(
        p.name for p in demo_copy.iterdir() if not p.name.endswith(".warc.gz")
    )
    assert (summary.files, summary.records, summary.chunks_added, summary.files_failed) == (
        expected.files,
        expected.records,
        expected.chunks_added,
        0,
    )
    assert stored(apart) == stored(in_thread)
    assert apart.store.count() == in_thread.store.count() == expected.chunks_added


def test_a_read_process_that_dies_fails_its_file_and_the_run_goes_on(fake_settings, demo_copy, tmp_path):
    clean = services_for(fake_settings, tmp_path / "clean", min_bytes=10**12)
    expected = run(clean, [demo_copy])
    services = services_for(fake_settings, tmp_path / "dies", min_bytes=0)

    summary = run(services, [demo_copy], partial(dying_read_stage, services.settings, "nature.marc"))

    assert summary.files_failed == 1
    [failure] = [s for s in summary.skipped if s.path.endswith("nature.marc")]
    assert "exit code 3" in failure.reason
    chunks, files = stored(services)
    assert "nature.marc" not in {name for name, _, _ in files}
    # the files after it were read by a new process
    assert {"pc0170.xml", "pride-and-prejudice-first8.mrc"} <= {name for name, _, _ in files}

    again = run(services, [demo_copy])  # the next run reads the failed file, and only it
    assert (again.files_failed, again.files_unchanged) == (0, expected.files - 1)
    assert stored(services) == stored(clean)


def test_a_read_process_that_cannot_start_leaves_reading_to_the_run(fake_settings, demo_copy, tmp_path):
    clean = services_for(fake_settings, tmp_path / "clean", min_bytes=10**12)
    expected = run(clean, [demo_copy])
    services = services_for(fake_settings, tmp_path / "broken", min_bytes=0)

    summary = run(services, [demo_copy], partial(never_starting_read_stage, services.settings))

    assert (summary.files, summary.files_failed, summary.chunks_added) == (expected.files, 0, expected.chunks_added)
    assert stored(services) == stored(clean)


def test_a_run_with_less_to_read_than_the_bound_reads_in_its_own_thread(fake_settings, demo_copy, tmp_path):
    services = services_for(fake_settings, tmp_path / "small", min_bytes=bytes_read_apart(demo_copy) + 1)
    log = tmp_path / "read.log"

    summary = run(services, [demo_copy], partial(logging_read_stage, services.settings, log))

    assert summary.files_failed == 0 and summary.chunks_added > 0
    assert not log.exists()  # no read process was started


def test_real_shared_files_broken_ones_too_read_in_the_read_process_as_in_the_thread(
    fake_settings, shared_data, tmp_path
):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ["marc/pymarc/multi_isbn.dat", "marc/marc4j/chabon.mrc", "ead/umn/CLRC-2155.xml"]:
        shutil.copy(shared_data / name, corpus / name.replace("/", "__"))
    shutil.copy(shared_data / "pdf" / "findingaid_mc00062.pdf", corpus)
    shutil.copytree(shared_data / "broken", corpus / "broken")  # truncated, empty, mislabelled, damaged files
    in_thread = services_for(fake_settings, tmp_path / "thread", min_bytes=10**12)
    apart = services_for(fake_settings, tmp_path / "apart", min_bytes=0)
    log = tmp_path / "read.log"

    expected = run(in_thread, [corpus])
    summary = run(apart, [corpus], partial(logging_read_stage, apart.settings, log))

    read_apart = {line.split()[1] for line in log.read_text().splitlines()}
    assert {"findingaid_mc00062.pdf", "marc__marc4j__chabon.mrc"} <= read_apart
    assert any(name.endswith(".mrc") for name in read_apart & {p.name for p in (corpus / "broken").iterdir()})
    assert expected.files_failed > 0  # the broken files fail, and fail the same way in the process
    for field in ("files", "files_failed", "records", "chunks_added"):
        assert getattr(summary, field) == getattr(expected, field), field
    assert sorted((Path(s.path).name, s.record, s.reason) for s in summary.skipped) == sorted(
        (Path(s.path).name, s.record, s.reason) for s in expected.skipped
    )
    assert stored(apart) == stored(in_thread)

"""Ingest logic with a fake embedder over a real embedded Chroma in a temp dir."""

import pytest

from assistant.backends.store import ChunkStore, StoreError, make_client
from tests.conftest import ingest


class CountingEmbed:
    def __init__(self, embedder):
        self.embedder = embedder
        self.texts = 0

    def __call__(self, texts):
        self.texts += len(texts)
        return self.embedder.get_text_embedding_batch(texts)


def make_ingestor(services, manifest):
    ing = services.ingestor(manifest, progress=False)
    counter = CountingEmbed(services.embedder)
    ing.embed = counter
    return ing, counter


def test_ingest_demo_corpus_and_reingest_embeds_nothing(fake_services, demo_copy):
    first = ingest(fake_services, [demo_copy])
    assert first.files == 7 and first.files_failed == 0 and not first.skipped
    assert first.records == 32
    assert first.chunks_added == fake_services.store.count() > 0
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    again = ing.ingest([str(demo_copy)])
    manifest.close()
    assert (again.chunks_added, again.chunks_removed, counter.texts) == (0, 0, 0)
    assert again.files_unchanged == 7
    assert again.chunks_unchanged == first.chunks_added
    assert fake_services.store.count() == first.chunks_added


def test_changed_record_replaces_its_old_chunks(fake_services, demo_copy):
    ingest(fake_services, [demo_copy])
    total = fake_services.store.count()
    f = demo_copy / "pc0170.xml"
    f.write_text(f.read_text().replace("<unittitle>A-C</unittitle>", "<unittitle>A-C and more</unittitle>"))
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    summary = ing.ingest([str(f)])
    manifest.close()
    assert summary.chunks_added == 1 and summary.chunks_removed == 1
    assert counter.texts == 1  # only the changed chunk is embedded
    assert fake_services.store.count() == total
    texts = fake_services.store.collection.get(where={"record_id": "aspace_f5907634fce75222081b9028db18b2fd"})[
        "documents"
    ]
    assert len(texts) == 1 and "A-C and more" in texts[0]


def test_bad_files_are_reported_and_the_batch_goes_on(fake_services, demo_copy, tmp_path):
    (demo_copy / "broken.md").write_text("---\ntitle: never closed\n")
    (demo_copy / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    summary = ingest(fake_services, [demo_copy, tmp_path / "missing-folder"])
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in summary.skipped}
    assert "never closed" in reasons["broken.md"]
    assert "unknown format" in reasons["photo.jpg"]
    assert reasons["missing-folder"] == "no such file or folder"
    assert summary.files_failed == 3
    assert summary.records == 32  # every good file still went in


def test_file_that_breaks_later_loses_nothing_already_stored(fake_services, demo_copy):
    ingest(fake_services, [demo_copy])
    before = fake_services.store.count()
    f = demo_copy / "pc0170.xml"
    f.write_text(f.read_text()[:-2000])  # the finding aid is cut off part-way
    summary = ingest(fake_services, [f])
    assert summary.files_failed == 1 and "not well-formed XML at line" in summary.skipped[0].reason
    assert summary.chunks_removed == 0
    assert fake_services.store.count() == before


def test_sync_removes_chunks_of_deleted_files_only_when_asked(fake_services, demo_copy):
    ingest(fake_services, [demo_copy])
    before = fake_services.store.count()
    (demo_copy / "nature.marc").unlink()
    kept = ingest(fake_services, [demo_copy])
    assert kept.chunks_removed == 0 and fake_services.store.count() == before
    synced = ingest(fake_services, [demo_copy], sync=True)
    assert synced.chunks_removed == 1
    assert fake_services.store.collection.get(where={"record_id": "417826"})["ids"] == []


def test_store_refuses_vectors_from_another_model(fake_services, demo_copy):
    ingest(fake_services, [demo_copy])
    with pytest.raises(StoreError, match="holds vectors from fake:hash"):
        ChunkStore(fake_services.store.client, fake_services.settings.store.collection, "huggingface:other")


def test_an_empty_collection_takes_the_model_that_fills_it(fake_services, demo_copy):
    """Opened before its model was ready, a collection holds no vectors to mix: the model that fills it names
    it. Once it holds chunks, another model is refused."""
    client, name = make_client(fake_services.settings), fake_services.settings.collection
    ChunkStore(client, name, "static-refined:bundled:all-MiniLM-L6-v2")  # before `models prepare`
    store = ChunkStore(client, name, "static-refined:bundled:all-MiniLM-L6-v2@6e413c92fe49")
    assert store.collection.metadata["embedder"].endswith("@6e413c92fe49")
    ingest(fake_services, [demo_copy])  # still empty: the fake model takes it
    assert fake_services.store.count() > 0
    with pytest.raises(StoreError, match="holds vectors from fake:hash"):
        ChunkStore(client, name, "static-refined:bundled:all-MiniLM-L6-v2@6e413c92fe49")


def test_summary_counts_by_type(fake_services, demo_copy):
    summary = ingest(fake_services, [demo_copy])
    counts = fake_services.store.counts()
    assert counts["chunks"] == summary.chunks_added
    assert counts["by_type"]["marc"]["records"] == 13 and counts["by_type"]["ead"]["records"] == 7
    assert counts["by_type"]["warc"]["records"] == 12
    d = summary.as_dict()
    assert set(d) >= {
        "files",
        "records",
        "chunks_added",
        "chunks_unchanged",
        "chunks_removed",
        "skipped",
        "seconds",
        "chunks_per_s",
    }


def note_when_every_file_is_read(ingestor, files: list[str]):
    """An Event set (in the reader thread) once the ingestor's reader has chunked a record of every file."""
    import threading

    read: set[str] = set()
    all_read = threading.Event()
    chunks = ingestor.chunker.chunks

    def chunks_seen(record):
        read.add(record.provenance.source_file)
        if read >= set(files):
            all_read.set()
        return chunks(record)

    ingestor.chunker.chunks = chunks_seen
    return all_read


def test_the_reader_runs_ahead_across_files(fake_services, demo_copy):
    """One reader thread goes through every file while the first is still being embedded, so a page-heavy
    file is parsed while earlier ones embed."""
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    files = sorted(str(p) for p in demo_copy.iterdir())
    all_read = note_when_every_file_is_read(ing, files)
    waited = []

    def embed(texts):
        if not waited:  # the first batch: the reader must reach the last file without this batch being done
            waited.append(all_read.wait(10))
        return counter(texts)

    ing.embed = embed
    summary = ing.ingest(files)
    manifest.close()
    assert waited == [True]
    assert summary.files == 7 and summary.files_failed == 0 and summary.records == 32


def test_batches_are_bounded_in_characters_and_earlier_files_finish_before_the_last(
    fake_services, demo_copy, monkeypatch
):
    """With the reader far ahead, everything read is not handed to the model as one batch: each holds at most
    FLUSH_CHARS characters (or a single chunk), and a file whose chunks are all in earlier batches is
    finished while later ones embed, not all files at the end of the run (writes of a few chunks here: the
    demo corpus is smaller than one WRITE_AT)."""
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FLUSH_CHARS", 3000)
    monkeypatch.setattr(pipeline, "WRITE_AT", 4)
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    files = sorted(str(p) for p in demo_copy.iterdir())
    all_read = note_when_every_file_is_read(ing, files)
    events: list[tuple[str, int | str]] = []

    def embed(texts):
        if not events:
            assert all_read.wait(10)  # the first batch waits until the reader has read every file
        events.append(("embed", sum(map(len, texts)) if len(texts) > 1 else 0))
        return counter(texts)

    finish = ing.bookkeeper.finish

    def finished(read_file, summary, sync):
        events.append(("finish", read_file.key))
        return finish(read_file, summary, sync)

    ing.embed, ing.bookkeeper.finish = embed, finished
    summary = ing.ingest(files)
    manifest.close()
    embeds = [i for i, (kind, _) in enumerate(events) if kind == "embed"]
    assert len(embeds) > 2 and all(events[i][1] <= 3000 for i in embeds)
    assert [i for i, (kind, _) in enumerate(events) if kind == "finish"][0] < embeds[-1]
    assert sorted(key for kind, key in events if kind == "finish") == files  # each file finished once
    assert summary.files == 7 and summary.files_failed == 0 and summary.records == 32


def test_small_model_batches_are_written_together(fake_services, demo_copy, monkeypatch):
    """A fast model is handed small batches; the store gets them WRITE_AT chunks at a time (Chroma's add costs
    about twice as much per chunk in batches of 25 as of 256), the last write taking what is left, and every
    file is still finished once, in order."""
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FLUSH_AT", 3)
    monkeypatch.setattr(pipeline, "WRITE_AT", 10)
    monkeypatch.setattr(pipeline, "READER_IDLE_S", 60)  # no early write for a reader that is merely slow here
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    files = sorted(str(p) for p in demo_copy.iterdir())
    embedded: list[int] = []
    written: list[int] = []
    finished: list[str] = []
    add, finish = ing.store.add, ing.bookkeeper.finish

    def embed(texts):
        embedded.append(len(texts))
        return counter(texts)

    def store_add(chunks, vectors):
        written.append(len(chunks))
        return add(chunks, vectors)

    def finish_file(read_file, summary, sync):
        finished.append(read_file.key)
        return finish(read_file, summary, sync)

    ing.embed, ing.store.add, ing.bookkeeper.finish = embed, store_add, finish_file
    summary = ing.ingest(files)
    manifest.close()
    assert max(embedded) <= 3 and len(written) > 1
    assert all(size >= 10 for size in written[:-1]) and 0 < written[-1]
    assert sum(written) == sum(embedded) == summary.chunks_added
    assert finished == files and summary.files == 7 and summary.files_failed == 0


def test_a_failure_while_storing_one_file_leaves_the_next_file_whole(fake_services, demo_copy, monkeypatch):
    """The reader is ahead of the embedding: when a batch of the first file fails to embed, that file is
    reported (in the log when it happens, and in the summary) and recorded incomplete; the files after it hold
    exactly their own chunks, and the next run completes it."""
    import logging

    import ingest.pipeline as pipeline

    warnings: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append
    logging.getLogger("ingest.stages").addHandler(handler)  # whatever the CLI's setup_logging did before

    monkeypatch.setattr(pipeline, "FLUSH_AT", 2)  # flush mid-file, so the failure comes with records still queued
    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    files = sorted(str(p) for p in demo_copy.iterdir())
    first = files[0]

    def embed(texts):
        if not counter.texts:
            counter.texts += len(texts)
            raise RuntimeError("embedding server went away")
        return counter(texts)

    ing.embed = embed
    try:
        failed = ing.ingest(files)
    finally:
        logging.getLogger("ingest.stages").removeHandler(handler)
    stored = _chunks_by_file(fake_services)
    assert failed.files_failed == 1
    assert [(s.path, s.reason) for s in failed.skipped] == [(first, "RuntimeError: embedding server went away")]
    warned = [r.getMessage() for r in warnings]
    assert len(warned) == 1 and first in warned[0] and "RuntimeError: embedding server went away" in warned[0]
    for f in files[1:]:  # each later file holds exactly its own chunks
        assert manifest.chunk_ids(f) == stored[f]
    manifest.close()
    again = ingest(fake_services, files)  # the failed file is read again; the others are complete
    assert again.files_unchanged == 6 and again.files_failed == 0
    after = _chunks_by_file(fake_services)
    assert {f: after[f] for f in files[1:]} == {f: stored[f] for f in files[1:]}
    assert again.chunks_added == len(after[first]) - len(stored.get(first, set())) > 0


def _chunks_by_file(services) -> dict[str, set[str]]:
    got = services.store.client.get_collection(services.settings.store.collection).get(include=["metadatas"])
    by_file: dict[str, set[str]] = {}
    for chunk_id, meta in zip(got["ids"], got["metadatas"], strict=True):
        by_file.setdefault(meta["source_file"], set()).add(chunk_id)
    return by_file


@pytest.mark.timeout(60)
def test_ctrl_c_while_the_model_waits_stops_every_thread_and_the_rerun_completes(fake_services, demo_copy, monkeypatch):
    """Ctrl-C lands on the main thread, which runs the model and is mostly waiting for the next batch when the
    model is fast. The run must stop there: KeyboardInterrupt out of ingest(), none of its threads left
    running (they would go on writing after the lock is released), no file recorded as failed, and a rerun
    ends with what an uninterrupted run stores."""
    import signal
    import threading
    import time

    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FLUSH_AT", 2)  # many small batches: the model waits between them
    files = sorted(str(p) for p in demo_copy.iterdir())
    interrupted = threading.Event()

    def on_sigint(signum, frame):  # Python's own handler, plus a note that it ran
        interrupted.set()
        raise KeyboardInterrupt

    manifest = fake_services.manifest()
    ing, counter = make_ingestor(fake_services, manifest)
    chunks = ing.chunker.chunks
    seen = []

    def chunks_then_ctrl_c(record):  # in the reader thread
        seen.append(record)
        if len(seen) == 6:
            while not (counter.texts and ing._model_free()):
                time.sleep(0.01)
            time.sleep(0.2)  # the main thread is back waiting for a batch
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            assert interrupted.wait(10)
        return chunks(record)

    ing.chunker.chunks = chunks_then_ctrl_c
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            ing.ingest(files)
    finally:
        signal.signal(signal.SIGINT, previous)
    ingest_threads = ("refdesk-ingest", "refdesk-reader", "refdesk-store")
    left = [t.name for t in threading.enumerate() if t.name.startswith(ingest_threads)]
    manifest.close()
    assert left == []
    assert interrupted.is_set()
    again = ingest(fake_services, files)
    assert again.files_failed == 0 and not again.skipped
    stored = _chunks_by_file(fake_services)
    manifest = fake_services.manifest()
    try:
        assert {f: manifest.chunk_ids(f) for f in files} == {f: stored.get(f, set()) for f in files}
    finally:
        manifest.close()
    assert sum(map(len, stored.values())) == fake_services.store.count() == again.chunks_added + again.chunks_unchanged


def test_a_failed_write_fails_every_file_with_chunks_in_it(fake_services, demo_copy, monkeypatch):
    """A store write holds chunks of several files, and a file's chunks span several writes. When one write
    fails, each file with chunks in it is failed (and read again by the next run), whichever file was being
    read when the error came back: none is recorded complete with chunks missing from the store."""
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FLUSH_AT", 2)
    monkeypatch.setattr(pipeline, "WRITE_AT", 4)
    monkeypatch.setattr(pipeline, "READER_IDLE_S", 60)
    manifest = fake_services.manifest()
    ing, _counter = make_ingestor(fake_services, manifest)
    files = sorted(str(p) for p in demo_copy.iterdir())
    add = ing.store.add
    writes: list[set[str]] = []
    lost: set[str] = set()

    def store_add(chunks, vectors):
        writes.append({c.provenance.source_file for c in chunks})
        if len(writes[-1]) > 1 and not lost:  # the first write across a file boundary
            lost.update(writes[-1])
            raise RuntimeError("chroma: disk I/O error")
        return add(chunks, vectors)

    ing.store.add = store_add
    summary = ing.ingest(files)
    stored = _chunks_by_file(fake_services)
    complete = [f for f in files if (entry := manifest.entry(f)) is not None and entry.sha256]
    missing = {f: len(manifest.chunk_ids(f) - stored.get(f, set())) for f in complete}
    manifest.close()
    assert {f for f, n in missing.items() if n} == set()
    failed = {s.path for s in summary.skipped}
    assert len(lost) > 1 and lost <= failed and summary.files_failed == len(failed)
    again = ingest(fake_services, files)
    assert again.files_failed == 0 and again.files_unchanged == len(files) - len(failed)
    after = _chunks_by_file(fake_services)
    manifest = fake_services.manifest()
    try:
        assert all(manifest.chunk_ids(f) == after[f] for f in files)
    finally:
        manifest.close()

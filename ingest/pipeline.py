"""The local executor of the ingest stages (ingest.stages): threads on this machine.

One reader thread runs the read stage over every file in order (parsing, text extraction and chunking hold
the GIL), the model embeds on the calling thread (torch releases it), and store writes run in a third,
one at a time, in order and WRITE_AT chunks at a time; each file's bookkeeping follows once its last chunks
are stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from assistant.core.progress import Progress, progress_for
from assistant.core.types import Chunk
from ingest.manifest import Manifest
from ingest.read_worker import ReadWorker
from ingest.stages import Bookkeeper, FileJob, FileRead, IngestSummary, Planner, ReadStage

__all__ = ["Ingestor", "IngestSummary"]

FLUSH_AT = 256  # chunks buffered before one batched embed + add
# ... or this many characters (~50 full-size web-archive chunks, a few seconds of one core): a batch of long
# texts would otherwise hold back every file whose last chunk is in it, and the run ends on its store
# write and all those files' bookkeeping (~3 s at the end of the shared WARC set with one 218-chunk batch).
FLUSH_CHARS = 100_000
MIN_FLUSH = 16  # the smallest batch handed to a free model while records keep coming
# Chunks per store write, whatever the model's batches: Chroma's add costs about twice as much per chunk in
# batches of 25 as of 256 (145-149 against 274-304 chunks/s, 8,000 chunks into a fresh collection), and a fast
# model (static) is handed batches of MIN_FLUSH, so writing each batch as it came made the write the cost.
WRITE_AT = 256
GIL_SWITCH_S = 0.001
READER_IDLE_S = 0.2  # no new record for this long: the reader is behind, a free model takes what is pending


_DONE = object()
IDLE = object()  # from a Prefetcher: the reader has had nothing new for a while


class Prefetcher:
    """Runs the readers in a background thread from the moment it is made, so parsing and text extraction
    (Python, holding the GIL) overlap with embedding (torch, which releases it), and later files are read
    while earlier ones are still being embedded. Exceptions surface in the consumer."""

    def __init__(self, items: Iterable, depth: int = 512, idle_after: float | None = None):
        import queue
        import threading

        self.idle_after = idle_after  # yield IDLE when nothing arrives for this long (None: just wait)
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, args=(items,), name="refdesk-reader", daemon=True)
        self.thread.start()

    def _produce(self, items) -> None:
        try:
            for item in items:
                if self.stop.is_set():
                    return
                self.q.put(item)
            self.q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self.q.put(exc)

    def __iter__(self) -> Generator:
        import queue

        try:
            while True:
                try:
                    item = self.q.get(timeout=self.idle_after)
                except queue.Empty:
                    yield IDLE
                    continue
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        import queue

        self.stop.set()
        while self.thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self.q.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)


class _CallerThreadExecutor:
    """Runs submitted calls on the thread that calls run(), until shutdown(): the model stays on the thread
    that loaded it while another thread hands it batches. When that thread is interrupted (Ctrl-C lands on
    the main thread, usually while it waits here for the next batch), stop() fails what is queued and every
    later call, so whoever waits on a batch is woken with the interrupt instead of waiting for ever."""

    def __init__(self):
        import queue
        import threading

        self.q: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # a call is queued or refused, never queued after stop() emptied the queue
        self.stopped: BaseException | None = None

    def submit(self, fn: Callable, *args):
        from concurrent.futures import Future

        future: Future = Future()
        with self._lock:
            if self.stopped is None:
                self.q.put((future, fn, args))
                return future
        future.set_exception(self.stopped)
        return future

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the future carries it to whoever waits on it
                future.set_exception(exc)

    def stop(self, reason: BaseException) -> None:
        """No more calls run: those queued and those submitted later fail with reason."""
        import queue

        with self._lock:
            self.stopped = reason
        while True:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[0].set_running_or_notify_cancel():
                item[0].set_exception(reason)

    def shutdown(self) -> None:
        self.q.put(None)


class IngestInterrupted(KeyboardInterrupt):
    """What the ingest thread is woken with when the model's thread was interrupted. A KeyboardInterrupt, so
    no file is failed by it (files fail on Exception) and it ends the run wherever it lands."""


class Ingestor:
    def __init__(
        self,
        store,
        embed: Callable[[list[str]], list[list[float]]],
        embedder_name: str,
        manifest: Manifest,
        reading: ReadStage,
        progress: bool = True,
        make_read_stage: Callable[[], ReadStage] | None = None,
        read_worker_min_bytes: int = 0,
        extract_workers: int = 1,
    ):
        self.store = store
        self.embed = embed  # called only when something new must be embedded
        self.embedder_name = embedder_name
        self.manifest = manifest
        self.reading = reading
        self.chunker = reading.chunker
        self.progress = progress
        # When the files that can be read apart (all but web archives) come to read_worker_min_bytes or more,
        # they are read in a process of the run, which builds its read stage with make_read_stage
        # (ingest.read_worker); None: every file is read in the reader thread.
        self.make_read_stage = make_read_stage
        self.read_worker_min_bytes = read_worker_min_bytes
        self.extract_workers = extract_workers
        self.planner = Planner(store, manifest, embedder_name)
        self.bookkeeper = Bookkeeper(store, manifest, embedder_name)
        self._pending: list[Chunk] = []
        self._pending_chars = 0
        # Files read to the end are finished once their chunks are stored: those whose last chunks are
        # pending (with how many pending chunks come up to and including their last), being embedded, being
        # written.
        self._waiting: list[tuple[int, Callable[[], None]]] = []
        self._after_embed: list[Callable[[], None]] = []
        self._embedding = None  # the batch the model is on: a future of (chunks, vectors, seconds)
        self._embedder: _CallerThreadExecutor | None = None
        self._after_write: list[Callable[[], None]] = []  # those finished when the write in flight is done
        # Embedded batches not yet handed to the writer (chunks, vectors, the files finished with them).
        self._unwritten: list[tuple[list[Chunk], list, list[Callable[[], None]]]] = []
        self._unwritten_chunks = 0
        self._writing: list[Chunk] = []  # the chunks of the write in flight
        # Files with chunks in a batch that failed to embed or store -> (at which stage, the error).
        self._lost: dict[str, tuple[str, Exception]] = {}
        self._summary: IngestSummary | None = None
        self._progress: Progress | None = None
        # Store writes run beside the next batch's embedding (one at a time, in order).
        self._writer: ThreadPoolExecutor | None = None
        self._write: Future | None = None

    # -- public -------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[str | Path], sync: bool = False) -> IngestSummary:
        """Raises ingest.lock.IngestLocked when another ingest holds this data dir."""
        from ingest.lock import IngestLock

        with IngestLock(self.manifest.path.parent / "ingest.lock"):
            return self._ingest_locked(paths, sync)

    def _ingest_locked(self, paths: Sequence[str | Path], sync: bool) -> IngestSummary:
        import sys
        import threading

        summary = IngestSummary()
        # nothing left from an interrupted run
        self._pending, self._waiting, self._after_embed, self._after_write = [], [], [], []
        self._pending_chars = 0
        self._unwritten, self._unwritten_chunks = [], 0
        self._embedding = None
        self._writing, self._lost, self._summary = [], {}, summary
        # The model needs the GIL between torch ops; with the other threads busy in Python it would wait up
        # to the 5 ms default switch interval each time. Restored when the run ends.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        started = time.perf_counter()
        # The model runs here, on the calling thread (where it was loaded and warmed: run from a new thread
        # its buffers come on top, ~150 MB more peak memory); reading and bookkeeping run beside it.
        embedder = self._embedder = _CallerThreadExecutor()
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                self._consume(paths, sync, summary)
            except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
                failure.append(exc)
            finally:
                embedder.shutdown()

        worker = threading.Thread(target=consume, name="refdesk-ingest", daemon=True)
        try:
            worker.start()
            try:
                embedder.run()
            except BaseException:
                # Interrupted here, between batches or in one: the ingest thread is stopped and waited for (it
                # finishes the write in flight and its files), so nothing of this run writes after it returns.
                embedder.stop(IngestInterrupted("the model's thread was interrupted"))
                worker.join()
                raise
            worker.join()
        finally:
            sys.setswitchinterval(switch_interval)
        if failure:
            raise failure[0]
        summary.seconds = time.perf_counter() - started
        self.manifest.add_run(summary.as_dict())
        return summary

    def _consume(self, paths: Sequence[str | Path], sync: bool, summary: IngestSummary) -> None:
        """Plans, reads every file (through the reader thread), hands batches to the model, finishes each file."""
        from ingest.warc import TextExtractor

        plan = self.planner.plan(paths, sync, summary)
        self._progress = progress_for(
            self.progress, plan.files_total, plan.files_total - len(plan.jobs), desc="ingest", unit="file"
        )
        reader: Prefetcher | None = None
        stream: Generator | None = None
        extractor = TextExtractor(self.extract_workers)  # archived pages' text, extracted in processes of this run
        read_worker = self._read_worker(plan.jobs)
        try:
            # One reader thread goes through all the files in order, so it never waits for the embedding
            # to reach a file before starting on it (a page-heavy crawl is extracted while earlier files embed).
            reader = Prefetcher(
                self._read_all(plan.jobs, plan.payloads, extractor, read_worker), idle_after=READER_IDLE_S
            )
            stream = iter(reader)
            for _job in plan.jobs:
                self._read_file(stream, summary, sync)
                self._progress.advance()
            extractor.close(wait=False)  # everything is read: the worker exits while the last batches embed
            if read_worker is not None:
                read_worker.close()
            self._settle(summary)
        finally:
            if stream is not None:
                stream.close()  # a generator left suspended would be closed by the collector, maybe at exit
            if reader is not None:
                reader.close()
            extractor.close()
            if read_worker is not None:
                read_worker.close()
            # After an error: the batches in flight and those kept for the writer are dropped; their files stay
            # unfinished (read again by the next run).
            if self._writer is not None:
                self._embedding = None
                self._unwritten, self._unwritten_chunks = [], 0
                self._drain()
                self._writer.shutdown(wait=True)
                self._writer = None
            self._progress.close()

    def _read_all(
        self, jobs: Sequence[FileJob], payloads, extractor, read_worker: ReadWorker | None
    ) -> Iterator[Chunk | FileRead]:
        """The read stage over every job in order: each file's chunks, then its FileRead."""
        for job in jobs:
            if read_worker is not None and not read_worker.broken and self.reading.self_contained(job.fmt):
                yield from read_worker.file(job)
                if not read_worker.broken:
                    continue  # else it could not start, and read nothing of this file
            yield from self.reading.file(job, payloads, extractor)

    def _read_worker(self, jobs: Sequence[FileJob]) -> ReadWorker | None:
        """A read process for this run, if it has enough to read apart to be worth the process's start (a few
        seconds of imports, on the other core)."""
        if self.make_read_stage is None:
            return None
        apart = sum(job.size for job in jobs if self.reading.self_contained(job.fmt))
        return ReadWorker(self.make_read_stage) if apart and apart >= self.read_worker_min_bytes else None

    def _read_file(self, stream: Iterator, summary: IngestSummary, sync: bool) -> None:
        """Consumes one file's chunks from the shared stream, up to and including its FileRead."""
        taken: dict[str, str] = {}  # chunk id -> record id: this file's chunks handed on to be stored
        error: Exception | None = None
        read: FileRead | None = None
        for entry in stream:
            if self._embedder is not None and self._embedder.stopped is not None:
                raise self._embedder.stopped  # interrupted: not this file's failure, the run's end
            if isinstance(entry, FileRead):
                read = entry
                break
            if error is not None:
                continue  # the file failed here: its remaining chunks are passed over, not the next file's
            try:
                if entry is IDLE:
                    self._on_idle(summary)
                    continue
                taken[entry.id] = entry.provenance.record_id
                self._pending.append(entry)
                self._pending_chars += len(entry.text)
                # Full batches normally; a smaller one as soon as the model is free, so it does not wait for a
                # full batch while the reader is behind (e.g. while a crawl's first pages are extracted).
                if self._write is not None and self._write.done():
                    self._drain()  # its files' bookkeeping now, not when the next batch is handed on
                if (
                    len(self._pending) >= FLUSH_AT
                    or self._pending_chars >= FLUSH_CHARS
                    or (len(self._pending) >= MIN_FLUSH and self._model_free())
                ):
                    self._flush(summary)
            except Exception as exc:  # noqa: BLE001 - an embedding or store failure fails this file; the batch goes on
                error = exc
        assert read is not None, "the read stage ends every file with its FileRead"
        if error is not None:
            read.fail(error)
            read.chunk_ids = taken  # only what was handed on before the failure
        read.report(summary)
        # The file's last chunks go with the next batch (often the next file's): its bookkeeping waits until
        # they are stored, so the model is not handed a small batch at every file boundary.
        self._when_stored(lambda: self._finish(read, summary, sync))

    def _finish(self, read: FileRead, summary: IngestSummary, sync: bool) -> None:
        """Bookkeeping for a file whose chunks are all through; one with chunks in a batch that failed to embed
        or store is failed (recorded incomplete, read again by the next run), not recorded complete."""
        lost = self._lost.pop(read.key, None)
        if lost is not None and read.complete:
            stage, exc = lost
            read.fail(exc, record=f"chunks being {stage}")
            read.report_error(summary)
        self.bookkeeper.finish(read, summary, sync)

    def _lose(self, chunks: Sequence[Chunk], stage: str, exc: Exception) -> None:
        """A batch failed to embed or store: its files fail when they finish, whichever file is being read now
        (a batch holds chunks of several files, and a file's chunks span several batches)."""
        for chunk in chunks:
            self._lost.setdefault(chunk.provenance.source_file, (stage, exc))

    def _on_idle(self, summary: IngestSummary) -> None:
        """The reader is behind: a free model takes what is ready rather than idle; a finished write's files
        are finished."""
        if self._pending and self._model_free():
            self._flush(summary)
        if self._write is not None and self._write.done():
            self._drain()
        if self._unwritten and self._write is None:  # a free writer takes what is embedded, however little
            self._submit_write()

    def _model_free(self) -> bool:
        """No batch is being embedded: the model would idle if nothing were handed to it now."""
        return self._embedding is None or self._embedding.done()

    def _embed_batch(self, chunks: list[Chunk]) -> tuple[list[Chunk], list | Exception, float]:
        t0 = time.perf_counter()
        try:
            vectors = self.embed([c.text for c in chunks])
        except Exception as exc:  # noqa: BLE001 - returned: it fails this batch's files, and the run goes on
            return chunks, exc, time.perf_counter() - t0
        return chunks, vectors, time.perf_counter() - t0

    def _advance(self, summary: IngestSummary) -> None:
        """Takes the batch being embedded (waiting for it) and keeps it for the store writer."""
        self._store(self._take_embedded(summary))

    def _take_embedded(self, summary: IngestSummary):
        """The batch being embedded, once it is: (chunks, vectors, the files finished with it), or None."""
        if self._embedding is None:
            return None
        embedding, self._embedding = self._embedding, None
        after, self._after_embed = self._after_embed, []
        chunks, vectors, seconds = embedding.result()  # an interrupt is raised here
        summary.embed_seconds += seconds
        if isinstance(vectors, Exception):
            self._lose(chunks, "embedded", vectors)
            summary.chunks_added -= len(chunks)
            for finish in after:  # after their earlier chunks' writes, as if this batch had been stored
                self._after_in_flight(finish)
            return None
        return chunks, vectors, after

    def _store(self, embedded) -> None:
        """Keeps an embedded batch for the store writer; WRITE_AT chunks go to it together."""
        if embedded is None:
            return
        self._unwritten.append(embedded)
        self._unwritten_chunks += len(embedded[0])
        if self._unwritten_chunks >= WRITE_AT:
            self._submit_write()

    def _submit_write(self) -> None:
        """Hands the embedded batches kept so far to the store writer as one write, after the write in flight
        (and its files' bookkeeping)."""
        if not self._unwritten:
            return
        batches, self._unwritten, self._unwritten_chunks = self._unwritten, [], 0
        self._drain()
        assert self._writer is not None, "made by _flush() before the first batch"
        chunks = [chunk for batch, _, _ in batches for chunk in batch]
        vectors = [vector for _, got, _ in batches for vector in got]
        self._write = self._writer.submit(self.store.add, chunks, vectors)
        self._writing = chunks
        self._after_write = [finish for _, _, after in batches for finish in after]

    def _drain(self) -> None:
        """Waits for the store write in flight, then finishes the files whose last chunks it held (failing those
        with chunks in it, if it failed)."""
        if self._write is not None:
            write, self._write = self._write, None
            after, self._after_write = self._after_write, []
            written, self._writing = self._writing, []
            error = write.exception()
            if error is not None:
                if not isinstance(error, Exception):
                    raise error
                assert self._summary is not None, "set by ingest()"
                self._lose(written, "stored", error)
                self._summary.chunks_added -= len(written)
            for finish in after:
                finish()

    def _settle(self, summary: IngestSummary) -> None:
        """Everything read so far embedded, stored and its files finished."""
        while self._pending:
            self._flush(summary)
        self._submit_write()  # what is embedded already, and the files finished with it, while the last batch embeds
        self._advance(summary)
        self._submit_write()
        self._drain()
        waiting, self._waiting = self._waiting, []
        for _, finish in waiting:
            finish()

    def _when_stored(self, finish: Callable[[], None]) -> None:
        """Runs finish once every chunk read so far is stored (files finish in the order they were read)."""
        if self._pending:
            self._waiting.append((len(self._pending), finish))
        else:
            self._after_in_flight(finish)

    def _after_in_flight(self, finish: Callable[[], None]) -> None:
        """Runs finish once the batch being embedded, those kept for the writer and the write in flight, if any,
        are done."""
        if self._embedding is not None:
            self._after_embed.append(finish)
        elif self._unwritten:
            self._unwritten[-1][2].append(finish)
        elif self._write is not None:
            self._after_write.append(finish)
        else:
            finish()

    def _flush(self, summary: IngestSummary) -> None:
        """Hands the pending chunks, up to FLUSH_AT of them and FLUSH_CHARS characters, to the model (after the
        batch before them, if it is still being embedded); the rest stay pending."""
        if not self._pending:
            return
        size, chars = 0, 0
        for chunk in self._pending[:FLUSH_AT]:
            if size and chars + len(chunk.text) > FLUSH_CHARS:
                break
            size, chars = size + 1, chars + len(chunk.text)
        pending, self._pending = self._pending[:size], self._pending[size:]
        self._pending_chars -= chars
        try:
            existing = self.store.existing_ids([c.id for c in pending])
        except Exception as exc:  # noqa: BLE001 - these chunks' files fail; the run goes on
            self._lose(pending, "checked against the store", exc)
            new = []
        else:
            new = [c for c in pending if c.id not in existing]
            summary.chunks_unchanged += len(pending) - len(new)
        # The files whose last chunks are in this batch finish with it; the others wait for theirs.
        waiting = [finish for count, finish in self._waiting if count <= size]
        self._waiting = [(count - size, finish) for count, finish in self._waiting if count > size]
        if new:
            # Similar lengths side by side: the model's batches carry less padding (as encode() does for its input).
            new.sort(key=lambda c: len(c.text))
            embedded = self._take_embedded(summary)
            if self._writer is None:
                from concurrent.futures import ThreadPoolExecutor

                # Store writes run in their own thread, one at a time, in order.
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refdesk-store")
            assert self._embedder is not None, "started by ingest()"
            # The model goes on to this batch at once; the last one's write and the bookkeeping of files
            # finished before it (which waits for their write) run meanwhile, not while the model idles.
            self._embedding = self._embedder.submit(self._embed_batch, new)
            self._after_embed = waiting
            summary.chunks_added += len(new)
            self._store(embedded)
        else:  # all stored already
            for finish in waiting:
                self._after_in_flight(finish)
        if self._progress is not None:
            self._progress.note(chunks=summary.chunks_added)

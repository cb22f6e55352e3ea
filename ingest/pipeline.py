"""Files -> records -> chunks -> batched embedding -> idempotent add to the store.

Chunk ids hash the source file, record id and text, so re-ingesting unchanged input
embeds nothing; a changed record's old chunks are removed once its file was read in
full. Nothing is removed for a file that failed part-way: what was stored stays.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from assistant.core.types import AlsoCaptured, Chunk, Ignored, SkippedRecord, SourceRecord
from ingest.chunking import Chunker
from ingest.language import LanguageTagger
from ingest.manifest import Manifest, file_sha256
from ingest.payloads import PayloadIndex
from ingest.registry import ReaderError, detect_format, get_reader

FLUSH_AT = 256  # chunks buffered before one batched embed + add
MIN_FLUSH = 16  # the smallest batch handed to a free model while records keep coming
GIL_SWITCH_S = 0.001
READER_IDLE_S = 0.2  # no new record for this long: the reader is behind, a free model takes what is pending


@dataclass
class IngestSummary:
    files: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    records: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    left_out: Counter = field(default_factory=Counter)  # deliberately not indexed, by reason (redirects, images…)
    captures_added: int = 0  # capture dates added to content already stored (revisits, identical payloads)
    stored_elsewhere: int = 0  # archived records whose content another file's record already holds
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Chunks embedded and stored per second of the whole run."""
        return self.chunks_added / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "files_unchanged": self.files_unchanged,
            "files_failed": self.files_failed,
            "records": self.records,
            "chunks_added": self.chunks_added,
            "chunks_unchanged": self.chunks_unchanged,
            "chunks_removed": self.chunks_removed,
            "skipped": [s.model_dump() for s in self.skipped],
            "left_out": dict(self.left_out.most_common()),
            "captures_added": self.captures_added,
            "stored_elsewhere": self.stored_elsewhere,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_s": round(self.rate, 2),
        }

    def text(self) -> str:
        lines = [
            f"{self.files} files ({self.files_unchanged} unchanged, {self.files_failed} failed), "
            f"{self.records} records, chunks: {self.chunks_added} added, {self.chunks_unchanged} unchanged, "
            f"{self.chunks_removed} removed; {self.seconds:.1f} s, {self.rate:.1f} chunks/s",
        ]
        if self.left_out:
            reasons = ", ".join(f"{reason} {n}" for reason, n in self.left_out.most_common())
            lines.append(f"left out {sum(self.left_out.values())} (not errors): {reasons}")
        if self.stored_elsewhere:
            lines.append(
                f"{self.stored_elsewhere} archived records hold content already stored from another file: "
                "kept once, with their capture dates"
            )
        if self.captures_added:
            lines.append(f"{self.captures_added} more capture dates recorded for content already stored")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines.extend(f"  {s.line()}" for s in self.skipped)
        return "\n".join(lines)


_DONE = object()
IDLE = object()  # from a Prefetcher: the reader has had nothing new for a while


@dataclass
class _FileEnd:
    """Closes one file's items in the reader stream; error is what stopped the file early, if anything."""

    error: Exception | None = None


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

    def __iter__(self) -> Iterator:
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
    that loaded it while another thread hands it batches."""

    def __init__(self):
        import queue

        self.q: queue.Queue = queue.Queue()

    def submit(self, fn: Callable, *args):
        from concurrent.futures import Future

        future: Future = Future()
        self.q.put((future, fn, args))
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

    def shutdown(self) -> None:
        self.q.put(None)


@dataclass
class FileJob:
    """A file that must be read (changed or new), with what was learnt about it before reading."""

    path: Path
    fmt: str
    sha: str
    size: int


def iter_files(paths: Iterable[str | Path], summary: IngestSummary) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                yield child.resolve()
        elif path.is_file():
            yield path.resolve()
        else:
            summary.skipped.append(SkippedRecord(path=str(path), record="", reason="no such file or folder"))
            summary.files_failed += 1


def _by_record(chunk_records: dict[str, str]) -> dict[str, list[str]]:
    """record id -> its chunk ids; an archived PDF's record also owns its pages' chunks ("<id>#page=3")."""
    out: dict[str, list[str]] = {}
    for chunk_id, record_id in chunk_records.items():
        out.setdefault(record_id, []).append(chunk_id)
        if "#page=" in record_id:
            out.setdefault(record_id.split("#page=", 1)[0], []).append(chunk_id)
    return out


class Ingestor:
    def __init__(
        self,
        store,
        embed: Callable[[list[str]], list[list[float]]],
        embedder_name: str,
        manifest: Manifest,
        chunker: Chunker,
        link_templates: dict[str, str] | None = None,
        progress: bool = True,
        reader_options: dict | None = None,
        languages: LanguageTagger | None = None,
    ):
        self.store = store
        self.languages = languages  # fills in the language of records that do not state one
        # Bounds a reader may take (e.g. max_payload_bytes): passed to the readers whose signature names them.
        self.reader_options = reader_options or {}
        self.embed = embed  # called only when something new must be embedded
        self.embedder_name = embedder_name
        self.manifest = manifest
        self.chunker = chunker
        self.link_templates = link_templates or {}
        self.progress = progress
        self._pending: list[Chunk] = []
        # Files read to the end are finished once their chunks are stored: those whose last chunks are
        # pending, being embedded, being written.
        self._waiting: list[Callable[[], None]] = []
        self._after_embed: list[Callable[[], None]] = []
        self._embedding = None  # the batch the model is on: a future of (chunks, vectors, seconds)
        self._embedder: _CallerThreadExecutor | None = None
        self._after_write: list[Callable[[], None]] = []  # those finished when the write in flight is done
        self.payloads = PayloadIndex()  # archived payloads held by a stored record (filled per run)
        self._bar: tqdm | None = None
        # Store writes run beside the next batch's embedding (one at a time, in order).
        self._writer: ThreadPoolExecutor | None = None
        self._write = None

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
        self._embedding = None
        # The model needs the GIL between torch ops; with the other threads busy in Python it would wait up
        # to the 5 ms default switch interval each time.
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
            embedder.run()
            worker.join()
        finally:
            sys.setswitchinterval(switch_interval)
        if failure:
            raise failure[0]
        summary.seconds = time.perf_counter() - started
        self.manifest.add_run(summary.as_dict())
        return summary

    def _consume(self, paths: Sequence[str | Path], sync: bool, summary: IngestSummary) -> None:
        """Reads every file (through the reader thread), hands batches to the model, finishes each file."""
        files = list(iter_files(paths, summary))
        self._bar = tqdm(total=len(files), unit="file", desc="ingest", disable=not self.progress, leave=False)
        reader: Prefetcher | None = None
        try:
            jobs: list[FileJob] = []
            unchanged: dict[str, tuple[int, int]] = {}  # path -> (records, chunks) counted as unchanged
            for path in files:
                job = self._prepare(path, summary, sync, unchanged)
                if job is None:
                    self._bar.update(1)
                else:
                    jobs.append(job)
            gone: list[str] = []
            if sync:  # files deleted from the given folders: their chunks go first
                listed = {str(p) for p in files}
                for folder in (Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()):
                    for known in self.manifest.paths_under(str(folder)):
                        if known not in listed and not Path(known).exists():
                            gone.append(known)
                            summary.chunks_removed += self.store.delete(sorted(self.manifest.chunk_ids(known)))
                            self.manifest.forget_file(known)
            jobs += self._dependents(jobs, gone, unchanged, summary, sync)
            self.payloads = PayloadIndex(self.manifest.payload_holders({str(job.path) for job in jobs}))
            # One reader thread goes through all the files in order, so it never waits for the embedding
            # to reach a file before starting on it (a page-heavy crawl is extracted while earlier files embed).
            reader = Prefetcher(self._read_all(jobs), idle_after=READER_IDLE_S)
            stream = iter(reader)
            for job in jobs:
                self._read_file(job, stream, summary, sync)
                self._bar.update(1)
            self._settle(summary)
        finally:
            if reader is not None:
                reader.close()
            if self._writer is not None:  # after an error: the batch in flight is dropped; its files stay unfinished
                self._embedding = None
                self._drain()
                self._writer.shutdown(wait=True)
                self._writer = None
            self._bar.close()

    # -- one file -----------------------------------------------------------------------------
    def _dependents(
        self,
        jobs: list[FileJob],
        gone: list[str],
        unchanged: dict[str, tuple[int, int]],
        summary: IngestSummary,
        sync: bool,
    ) -> list[FileJob]:
        """Files whose archived pages point to content held by a file read again or removed now: they are
        read again as well, so that content is stored once more (under them, if nobody else holds it)."""
        reading = {str(job.path) for job in jobs}
        more: list[FileJob] = []
        for path in sorted(self.manifest.dependents(reading | set(gone)) - reading):
            if not Path(path).is_file():
                continue  # gone without --sync: its own chunks stay until then
            if path in unchanged:  # counted as unchanged a moment ago
                records, chunks = unchanged.pop(path)
                summary.files -= 1
                summary.files_unchanged -= 1
                summary.records -= records
                summary.chunks_unchanged -= chunks
                if self._bar is not None:
                    self._bar.update(-1)
            job = self._prepare(Path(path), summary, sync, force=True)
            if job is not None:
                more.append(job)
        return more

    def _prepare(
        self,
        path: Path,
        summary: IngestSummary,
        sync: bool = False,
        unchanged: dict[str, tuple[int, int]] | None = None,
        force: bool = False,
    ) -> FileJob | None:
        """Format, hash and the unchanged check; None when the file needs no reading (or cannot be read)."""
        key = str(path)
        summary.files += 1
        fmt = detect_format(path)
        if fmt is None:
            summary.skipped.append(
                SkippedRecord(path=key, record="", reason=f"unknown format ({path.suffix or 'no extension'})")
            )
            summary.files_failed += 1
            return None
        try:
            sha = file_sha256(path)
            size = path.stat().st_size
        except OSError as exc:
            summary.skipped.append(SkippedRecord(path=key, record="", reason=f"cannot read: {exc.strerror or exc}"))
            summary.files_failed += 1
            return None
        previous = self.manifest.entry(key)
        if (
            previous
            and previous.sha256 == sha
            and previous.embedder == self.embedder_name
            and not (sync and previous.withdrawn)
            and not force
        ):
            known = self.manifest.chunk_ids(key)
            if len(self.store.existing_ids(sorted(known))) == len(known):
                summary.files_unchanged += 1
                summary.records += previous.records
                summary.chunks_unchanged += len(known)
                if unchanged is not None:
                    unchanged[key] = (previous.records, len(known))
                return None
        return FileJob(path, fmt, sha, size)

    def _read_all(self, jobs: Sequence[FileJob]) -> Iterator:
        """Every job's items with their chunks, each file closed by a _FileEnd carrying its error, if any:
        a file that fails is reported and the next one is read."""
        import inspect

        accepted: dict[str, set[str]] = {}  # by format: the parameters its reader takes
        for job in jobs:
            try:
                reader = get_reader(job.fmt)
                # A WACZ holds WARCs: its pages replay like any archived page.
                template = self.link_templates.get("warc" if job.fmt == "wacz" else job.fmt, "")
                if job.fmt not in accepted:
                    accepted[job.fmt] = set(inspect.signature(reader).parameters)
                # The web-archive readers share the payload index across files.
                offered = {"payloads": self.payloads, **self.reader_options}
                options = {k: v for k, v in offered.items() if k in accepted[job.fmt]}
                for item in reader(job.path, link_template=template, **options):
                    if not isinstance(item, SourceRecord):
                        yield item, None
                        continue
                    # Language and chunks (tokenising) in the reader thread too; the caller only embeds and stores.
                    if self.languages is not None:
                        self.languages.tag(item)
                    yield item, list(self.chunker.chunks(item))
            except Exception as exc:  # noqa: BLE001 - handed to _read_file, which reports it for this file
                yield _FileEnd(exc)
                continue
            yield _FileEnd(None)

    def _read_file(self, job: FileJob, stream: Iterator, summary: IngestSummary, sync: bool = False) -> None:
        """Consumes one file's items from the shared stream, up to and including its _FileEnd."""
        path = job.path
        key = str(path)
        chunk_ids: dict[str, str] = {}  # chunk id -> record id
        captures: dict[str, list[str]] = {}  # record id -> further capture dates
        elsewhere: dict[tuple[str, str], list[str]] = {}  # (file, record id) holding the content -> capture dates
        pointing: set[str] = set()  # this file's records whose content another file holds
        records = 0
        complete = True
        ended = False  # this file's _FileEnd was taken from the stream
        try:
            for entry in stream:
                if entry is IDLE:
                    self._on_idle(summary)
                    continue
                if isinstance(entry, _FileEnd):
                    ended = True
                    if entry.error is not None:
                        raise entry.error
                    break
                item, chunks = entry
                if isinstance(item, SkippedRecord):
                    summary.skipped.append(item)
                    continue
                if isinstance(item, Ignored):
                    summary.left_out[item.reason] += 1
                    continue
                if isinstance(item, AlsoCaptured):
                    if item.source_file and item.source_file != key:
                        elsewhere.setdefault((item.source_file, item.record_id), []).append(item.date)
                        summary.stored_elsewhere += 1
                        pointing.add(item.record_here)
                    else:
                        captures.setdefault(item.record_id, []).append(item.date)
                    continue
                records += 1
                for chunk in chunks:
                    if chunk.id in chunk_ids:
                        continue  # the same text twice in one record
                    chunk_ids[chunk.id] = chunk.provenance.record_id
                    self._pending.append(chunk)
                # Full batches normally; a smaller one as soon as the model is free, so it does not wait for a
                # full batch while the reader is behind (e.g. while a crawl's first pages are extracted).
                if len(self._pending) >= FLUSH_AT or (len(self._pending) >= MIN_FLUSH and self._model_free()):
                    self._flush(summary)
        except ReaderError as exc:
            summary.skipped.append(SkippedRecord(path=exc.path, record=exc.record, reason=exc.reason))
            summary.files_failed += 1
            complete = False
        except Exception as exc:  # noqa: BLE001 - a reader bug fails its file, named with the type; the batch goes on
            summary.skipped.append(
                SkippedRecord(path=key, record=f"after record {records}", reason=f"{type(exc).__name__}: {exc}")
            )
            summary.files_failed += 1
            complete = False
        if not ended:  # stopped by an error here, not the reader's: the rest of this file is not the next file's
            for entry in stream:
                if entry is IDLE:
                    self._on_idle(summary)
                elif isinstance(entry, _FileEnd):
                    break
        # The file's last chunks go with the next batch (often the next file's): its bookkeeping waits until
        # they are stored, so the model is not handed a small batch at every file boundary.
        self._when_stored(
            lambda: self._finish_file(job, summary, sync, records, complete, chunk_ids, captures, elsewhere, pointing)
        )

    def _finish_file(
        self,
        job: FileJob,
        summary: IngestSummary,
        sync: bool,
        records: int,
        complete: bool,
        chunk_ids: dict[str, str],
        captures: dict[str, list[str]],
        elsewhere: dict[tuple[str, str], list[str]],
        pointing: set[str],
    ) -> None:
        """Once the file's chunks are stored: capture dates, stale chunks, the manifest entry."""
        key, fmt, sha, size = str(job.path), job.fmt, job.sha, job.size
        summary.records += records
        here = _by_record(chunk_ids) if captures else {}
        groups = [(here.get(record_id, []), dates) for record_id, dates in captures.items()]
        holders: dict[str, dict[str, list[str]]] = {}
        for (holder, record_id), dates in elsewhere.items():
            if holder not in holders:
                holders[holder] = _by_record(self.manifest.chunk_records(holder))
            groups.append((holders[holder].get(record_id, []), dates))
        summary.captures_added += self.store.add_captures(groups)
        if complete:
            # A record read again with new content replaces its old chunks; a record gone from the
            # file is removed only with --sync (librarians decide when withdrawals take effect).
            seen_records = set(chunk_ids.values()) | pointing
            stale = {c: r for c, r in self.manifest.chunk_records(key).items() if c not in chunk_ids}
            remove = [c for c, r in stale.items() if sync or r in seen_records]
            summary.chunks_removed += self.store.delete(sorted(remove))
            kept = {c: r for c, r in stale.items() if c not in set(remove)}
            chunk_ids.update(kept)
        else:
            kept = {}
        self.manifest.record_file(
            key,
            sha if complete else "",
            size,
            fmt,
            self.embedder_name,
            records,
            chunk_ids,
            replace=complete,
            withdrawn=len(kept),
            payloads=self.payloads.claimed_by(key),
            holders=set(holders),
        )

    def _on_idle(self, summary: IngestSummary) -> None:
        """The reader is behind: a free model takes what is ready rather than idle."""
        if self._pending and self._model_free():
            self._flush(summary)

    def _model_free(self) -> bool:
        """No batch is being embedded: the model would idle if nothing were handed to it now."""
        return self._embedding is None or self._embedding.done()

    def _embed_batch(self, chunks: list[Chunk]) -> tuple[list[Chunk], list, float]:
        t0 = time.perf_counter()
        vectors = self.embed([c.text for c in chunks])
        return chunks, vectors, time.perf_counter() - t0

    def _advance(self, summary: IngestSummary) -> None:
        """Takes the batch being embedded (waiting for it) and hands it to the store writer."""
        if self._embedding is None:
            return
        embedding, self._embedding = self._embedding, None
        after, self._after_embed = self._after_embed, []
        chunks, vectors, seconds = embedding.result()  # an embedding error is raised here
        summary.embed_seconds += seconds
        self._drain()
        self._write = self._writer.submit(self.store.add, chunks, vectors)
        self._after_write = after

    def _drain(self) -> None:
        """Waits for the store write in flight (its error, if any, is raised here), then finishes the files
        whose last chunks it held."""
        if self._write is not None:
            write, self._write = self._write, None
            after, self._after_write = self._after_write, []
            write.result()
            for finish in after:
                finish()

    def _settle(self, summary: IngestSummary) -> None:
        """Everything read so far embedded, stored and its files finished."""
        self._flush(summary)
        self._advance(summary)
        self._drain()
        waiting, self._waiting = self._waiting, []
        for finish in waiting:
            finish()

    def _when_stored(self, finish: Callable[[], None]) -> None:
        """Runs finish once every chunk read so far is stored (files finish in the order they were read)."""
        if self._pending:
            self._waiting.append(finish)
        elif self._embedding is not None:
            self._after_embed.append(finish)
        elif self._write is not None:
            self._after_write.append(finish)
        else:
            finish()

    def _flush(self, summary: IngestSummary) -> None:
        """Hands the pending chunks to the model (after the batch before them, if it is still being embedded)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        existing = self.store.existing_ids([c.id for c in pending])
        new = [c for c in pending if c.id not in existing]
        summary.chunks_unchanged += len(pending) - len(new)
        waiting, self._waiting = self._waiting, []
        if new:
            # Similar lengths side by side: the model's batches carry less padding (as encode() does for its input).
            new.sort(key=lambda c: len(c.text))
            self._advance(summary)
            if self._writer is None:
                from concurrent.futures import ThreadPoolExecutor

                # Store writes run in their own thread, one at a time, in order.
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refdesk-store")
            assert self._embedder is not None, "started by ingest()"
            self._embedding = self._embedder.submit(self._embed_batch, new)
            self._after_embed = waiting
            summary.chunks_added += len(new)
        else:  # all stored already
            for finish in waiting:
                self._when_stored(finish)
        if self._bar is not None:
            self._bar.set_postfix(chunks=summary.chunks_added, refresh=False)

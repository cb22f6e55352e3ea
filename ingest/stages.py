"""The ingest stages, defined once: plan -> read (records and their chunks) -> embed -> write -> bookkeeping.

Two executors run them: the local one (`ingest.pipeline.Ingestor`: threads on this machine, the default) and
Ray Data (`ingest.ray_engine.RayIngestor`: read tasks and an embedding actor pool on a cluster). Planning and
bookkeeping run where the manifest is (the caller), so the manifest stays the one record of what is stored.

Chunk ids hash the source file, record id and text, so re-ingesting unchanged input embeds nothing; a
changed record's old chunks are removed once its file was read in full. Nothing is removed for a file that
failed part-way: what was stored stays.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.types import AlsoCaptured, Chunk, Ignored, SkippedRecord, SourceRecord
from ingest.chunking import Chunker
from ingest.language import LanguageTagger
from ingest.manifest import Manifest, file_sha256
from ingest.payloads import PayloadIndex, PayloadPlan, PlannedPayload
from ingest.registry import ReaderError, detect_format, get_reader

log = logging.getLogger(__name__)

WEB_ARCHIVE_FORMATS = frozenset({"warc", "wacz"})  # their readers share one PayloadIndex across files


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
    engine: str = "local"

    @property
    def rate(self) -> float:
        """Chunks embedded and stored per second of the whole run."""
        return self.chunks_added / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "engine": self.engine,
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


@dataclass
class FileJob:
    """A file that must be read (changed or new), with what was learnt about it before reading."""

    path: Path
    fmt: str
    sha: str
    size: int


@dataclass
class Plan:
    """What one run reads: the files in order, and who already holds which archived payload."""

    jobs: list[FileJob]
    payloads: PayloadIndex
    files_total: int  # files named, found under a folder or read again as dependents (a progress bar's total)


@dataclass
class FileRead:
    """What reading one file found besides its chunks; the read stage hands it on after the file's last chunk,
    and bookkeeping takes it once those chunks are stored."""

    job: FileJob
    records: int = 0
    chunk_ids: dict[str, str] = field(default_factory=dict)  # chunk id -> record id
    captures: dict[str, list[str]] = field(default_factory=dict)  # record id -> further capture dates
    # (file, record id) holding this file's content elsewhere -> capture dates
    elsewhere: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    pointing: set[str] = field(default_factory=set)  # this file's records whose content another file holds
    payloads: dict[str, str] = field(default_factory=dict)  # payload key -> record id claimed by this file
    skipped: list[SkippedRecord] = field(default_factory=list)
    left_out: Counter = field(default_factory=Counter)
    stored_elsewhere: int = 0
    error: SkippedRecord | None = None  # what stopped the file early, if anything
    already_stored: int = 0  # chunks the Ray engine's read task left out as stored (the local engine asks the store)

    @property
    def key(self) -> str:
        return str(self.job.path)

    @property
    def complete(self) -> bool:
        return self.error is None

    def take(self, item, chunks: list[Chunk] | None) -> list[Chunk]:
        """Counts one reader item; returns its chunks not seen before in this file (to embed and store)."""
        if isinstance(item, SkippedRecord):
            self.skipped.append(item)
        elif isinstance(item, Ignored):
            self.left_out[item.reason] += 1
        elif isinstance(item, AlsoCaptured):
            if item.source_file and item.source_file != self.key:
                self.elsewhere.setdefault((item.source_file, item.record_id), []).append(item.date)
                self.stored_elsewhere += 1
                self.pointing.add(item.record_here)
            else:
                self.captures.setdefault(item.record_id, []).append(item.date)
        else:
            self.records += 1
            new = []
            for chunk in chunks or ():
                if chunk.id not in self.chunk_ids:  # the same text twice in one record is stored once
                    self.chunk_ids[chunk.id] = chunk.provenance.record_id
                    new.append(chunk)
            return new
        return []

    def fail(self, exc: Exception, record: str | None = None) -> None:
        """The file stops here (or, with record, is found incomplete): a ReaderError names its own place;
        anything else is named by its type."""
        if self.error is not None:
            return
        if isinstance(exc, ReaderError):
            self.error = SkippedRecord(path=exc.path, record=exc.record, reason=exc.reason)
        else:
            self.error = SkippedRecord(
                path=self.key,
                record=record if record is not None else f"after record {self.records}",
                reason=f"{type(exc).__name__}: {exc}",
            )

    def report(self, summary: IngestSummary) -> None:
        """Adds what the read found to the run's summary (records are added by bookkeeping, once stored)."""
        summary.skipped.extend(self.skipped)
        summary.left_out.update(self.left_out)
        summary.stored_elsewhere += self.stored_elsewhere
        self.report_error(summary)

    def report_error(self, summary: IngestSummary) -> None:
        """Counts the file as failed, if it is, and says so now: a long run may be stopped before its summary."""
        if self.error is None:
            return
        summary.skipped.append(self.error)
        summary.files_failed += 1
        where = f" ({self.error.record})" if self.error.record else ""
        log.warning(
            "%s failed%s: %s (the run goes on; the next run reads this file again)",
            self.error.path,
            where,
            self.error.reason,
        )


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


def by_record(chunk_records: dict[str, str]) -> dict[str, list[str]]:
    """record id -> its chunk ids; an archived PDF's record also owns its pages' chunks ("<id>#page=3")."""
    out: dict[str, list[str]] = {}
    for chunk_id, record_id in chunk_records.items():
        out.setdefault(record_id, []).append(chunk_id)
        if "#page=" in record_id:
            out.setdefault(record_id.split("#page=", 1)[0], []).append(chunk_id)
    return out


class Planner:
    """Stage 1, where the manifest is: which files need reading, and what --sync removes before reading."""

    def __init__(self, store, manifest: Manifest, embedder_name: str):
        self.store = store
        self.manifest = manifest
        self.embedder_name = embedder_name

    def plan(self, paths: Sequence[str | Path], sync: bool, summary: IngestSummary) -> Plan:
        files = list(iter_files(paths, summary))
        listed = {str(p) for p in files}
        jobs: list[FileJob] = []
        unchanged: dict[str, tuple[int, int]] = {}  # path -> (records, chunks) counted as unchanged
        for path in files:
            job = self._prepare(path, summary, sync, unchanged)
            if job is not None:
                jobs.append(job)
        gone: list[str] = []
        if sync:  # files deleted from the given folders: their chunks go first
            for folder in (Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()):
                for known in self.manifest.paths_under(str(folder)):
                    if known not in listed and not Path(known).exists():
                        gone.append(known)
                        summary.chunks_removed += self.store.delete(sorted(self.manifest.chunk_ids(known)))
                        self.manifest.forget_file(known)
        jobs += self._dependents(jobs, gone, unchanged, summary, sync)
        payloads = PayloadIndex(self.manifest.payload_holders({str(job.path) for job in jobs}))
        return Plan(jobs, payloads, len(listed | {str(job.path) for job in jobs}))

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


class ReadStage:
    """Stage 2: one file's records, chunked, as they come; then the FileRead saying what else it found.
    Readers stream, so a file of a million records is never held whole."""

    def __init__(
        self,
        chunker: Chunker,
        languages: LanguageTagger | None = None,
        link_templates: dict[str, str] | None = None,
        reader_options: dict | None = None,
    ):
        self.chunker = chunker
        self.languages = languages  # fills in the language of records that do not state one
        self.link_templates = link_templates or {}
        # Bounds a reader may take (e.g. max_payload_bytes): passed to the readers whose signature names them.
        self.reader_options = reader_options or {}
        self._accepted: dict[str, set[str]] = {}  # by format: the parameters its reader takes

    def self_contained(self, fmt: str) -> bool:
        """Whether fmt's reader needs nothing from the rest of the run, so its files can be read anywhere (web
        archives share payloads across the files of a run)."""
        return "payloads" not in self._parameters(fmt)

    def _parameters(self, fmt: str) -> set[str]:
        if fmt not in self._accepted:
            self._accepted[fmt] = set(inspect.signature(get_reader(fmt)).parameters)
        return self._accepted[fmt]

    def file(self, job: FileJob, payloads: PayloadIndex, extractor=None) -> Iterator[Chunk | FileRead]:
        """payloads: shared by the web-archive readers across files; extractor: the run's text-extraction
        worker for archived pages (ingest.warc.TextExtractor), or None to extract in this thread."""
        read = FileRead(job)
        try:
            items = self._items(job, payloads, extractor)
            if self.languages is not None:  # guessed in the extraction worker, when there is one
                items = self.languages.tag_all(items, extractor)
            for item in items:
                if isinstance(item, SourceRecord):
                    # Chunks (tokenising) here too: the embedding stage only embeds.
                    yield from read.take(item, list(self.chunker.chunks(item)))
                else:
                    read.take(item, None)
        except Exception as exc:  # noqa: BLE001 - a reader bug fails its file, named with the type; the batch goes on
            read.fail(exc)
        read.payloads = payloads.claimed_by(read.key)
        yield read

    def payload_plan(self, job: FileJob) -> list[PlannedPayload]:
        """The first pass over a web archive (ingest.payloads.PayloadPlan): the payloads it would look up and
        store, in order, read without extracting or chunking anything. A file that breaks part-way gives what
        came before the break, as its read proper will."""
        plan = PayloadPlan()
        try:
            for _ in self._items(job, plan, None):
                pass
        except Exception:  # noqa: BLE001 - the read proper meets the same error and fails the file with it
            log.debug("payload plan of %s ends early", job.path, exc_info=True)
        return plan.events

    def _items(self, job: FileJob, payloads: PayloadIndex | PayloadPlan, extractor) -> Iterator:
        reader = get_reader(job.fmt)
        # A WACZ holds WARCs: its pages replay like any archived page.
        template = self.link_templates.get("warc" if job.fmt == "wacz" else job.fmt, "")
        # languages: readers that extract text in a worker (web archives) guess there, off this thread.
        offered = {"payloads": payloads, "extractor": extractor, "languages": self.languages, **self.reader_options}
        options = {k: v for k, v in offered.items() if k in self._parameters(job.fmt)}
        return reader(job.path, link_template=template, **options)


class Bookkeeper:
    """Stage 5, where the manifest is, once a file's chunks are stored: capture dates, stale chunks, the
    manifest entry."""

    def __init__(self, store, manifest: Manifest, embedder_name: str):
        self.store = store
        self.manifest = manifest
        self.embedder_name = embedder_name

    def finish(self, read: FileRead, summary: IngestSummary, sync: bool) -> None:
        job, key = read.job, read.key
        chunk_ids = dict(read.chunk_ids)
        summary.records += read.records
        here = by_record(chunk_ids) if read.captures else {}
        groups = [(here.get(record_id, []), dates) for record_id, dates in read.captures.items()]
        holders: dict[str, dict[str, list[str]]] = {}
        for (holder, record_id), dates in read.elsewhere.items():
            if holder not in holders:
                holders[holder] = by_record(self.manifest.chunk_records(holder))
            groups.append((holders[holder].get(record_id, []), dates))
        summary.captures_added += self.store.add_captures(groups)
        kept: dict[str, str] = {}
        if read.complete:
            # A record read again with new content replaces its old chunks; a record gone from the
            # file is removed only with --sync (librarians decide when withdrawals take effect).
            seen_records = set(chunk_ids.values()) | read.pointing
            stale = {c: r for c, r in self.manifest.chunk_records(key).items() if c not in chunk_ids}
            remove = [c for c, r in stale.items() if sync or r in seen_records]
            summary.chunks_removed += self.store.delete(sorted(remove))
            removed = set(remove)
            kept = {c: r for c, r in stale.items() if c not in removed}
            chunk_ids.update(kept)
        self.manifest.record_file(
            key,
            job.sha if read.complete else "",
            job.size,
            job.fmt,
            self.embedder_name,
            read.records,
            chunk_ids,
            replace=read.complete,
            withdrawn=len(kept),
            payloads=read.payloads,
            holders=set(holders),
        )

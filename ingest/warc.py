"""WARC / ARC web archives, streamed record by record with warcio (flat memory whatever the size).

- 200 HTML responses: main text by trafilatura (drops navigation and boilerplate), title,
  language from <html lang>, charset from the HTTP header, then <meta>, then UTF-8, then cp1252.
- PDFs inside: one record per page, cited with URI + page.
- revisit records and identical payloads add no chunks; they add a capture date to the content first
  seen (AlsoCaptured), in this file or, through a shared PayloadIndex, in another one.
- Redirects, non-200, robots.txt, images, scripts, styles: left out and counted by reason.
- A truncated or corrupt file: every complete record before the break is kept; the break is
  reported with file and byte offset.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from assistant.core.types import AlsoCaptured, Ignored, Provenance, SkippedRecord, SourceRecord
from ingest.payloads import PayloadPlan
from ingest.registry import ReaderError, open_binary


def archive_errors() -> tuple[type[BaseException], ...]:
    """What a broken or cut-off WARC/ARC raises while it is streamed: warcio's own errors, gzip/zlib errors
    (under OSError, EOFError and zlib.error), bad header values (ValueError), and AttributeError/KeyError/
    IndexError from warcio's record loader on a mangled record head (found by tests/test_fuzz_readers.py)."""
    import zlib

    from warcio.exceptions import ArchiveLoadFailed
    from warcio.statusandheaders import StatusAndHeadersParserException

    return (
        ArchiveLoadFailed,
        StatusAndHeadersParserException,
        EOFError,
        OSError,
        ValueError,
        zlib.error,
        AttributeError,
        KeyError,
        IndexError,
    )


logging.getLogger("trafilatura").setLevel(logging.ERROR)  # it warns per discarded page; we count those

DEFAULT_REPLAY = "https://web.archive.org/web/{timestamp}/{uri}"
META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.I)
SKIP_TYPES = ("image/", "text/css", "javascript", "font/", "video/", "audio/", "application/octet-stream")
MIN_WORDS = 5
# Browsertrix stores the text of a rendered page as resource records "urn:text:<uri>" (at page load)
# and "urn:textFinal:<uri>" (after behaviours ran: scrolling, expanding).
BROWSER_TEXT_PREFIXES = ("urn:text:", "urn:textFinal:")
TEXT_SOURCE_LABELS = {"urn": "text rendered by the crawler's browser", "pages.jsonl": "text from the WACZ page list"}


SKIP_REASONS = (
    ("image/", "image files"),
    ("text/css", "style sheets"),
    ("javascript", "scripts"),
    ("font/", "fonts"),
    ("video/", "video files"),
    ("audio/", "audio files"),
    ("octet-stream", "binary files"),
)


def skip_reason(content_type: str) -> str:
    """What a left-out record is, in the summary's words ("style sheets", not "text files")."""
    return next((reason for key, reason in SKIP_REASONS if key in content_type), content_type.split(";")[0])


def _charset(content_type: str) -> str | None:
    match = re.search(r"charset=([\w\-]+)", content_type or "", re.I)
    return match.group(1) if match else None


def decode_html(payload: bytes, content_type: str) -> str:
    """Declared charset (HTTP), then sniffed (<meta>), then UTF-8, then Windows-1252: never mojibake silently."""
    candidates = [_charset(content_type)]
    match = META_CHARSET.search(payload[:4096])
    if match:
        candidates.append(match.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "cp1252"]
    for enc in candidates:
        if not enc:
            continue
        try:
            return payload.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", "replace")


def _timestamp14(warc_date: str) -> str:
    return re.sub(r"\D", "", warc_date)[:14]


def _human_date(warc_date: str) -> str:
    try:
        dt = datetime.fromisoformat(warc_date.replace("Z", "+00:00"))
        return dt.strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return warc_date


def _extract(html: str, uri: str, language_options: tuple | None = None) -> tuple[str, str, str, Any]:
    """(title, main text, stated language, guessed language or None). language_options: those of the run's
    ingest.language.LanguageTagger, to guess the language of a page that states none from its main text
    here, in the worker process (lingua holds the GIL while it reads: in the reading thread it stalled the
    model's Python between torch ops), or None not to guess."""
    import trafilatura
    from lxml import etree
    from lxml import html as lxml_html

    title, lang = "", ""
    try:
        doc = lxml_html.fromstring(html)
        title = re.sub(r"\s+", " ", doc.findtext(".//title") or "").strip()
        lang = (doc.get("lang") or doc.get("xml:lang") or "").split("-")[0].lower()
    except (etree.LxmlError, ValueError):  # an empty or undecodable page: no title, no language
        pass
    # Balanced mode without tables: old table-layout sites put their navigation in tables, and
    # favor_recall keeps forum navigation (ten times the chunks). Tables come back only if nothing else does.
    text = trafilatura.extract(html, url=uri, include_comments=False, include_tables=False, deduplicate=False) or ""
    if len(text.split()) < MIN_WORDS:
        text = trafilatura.extract(html, url=uri, include_comments=False, include_tables=True, deduplicate=False) or ""
    guessed = _guess(text, language_options) if not lang else None
    return title, text, lang, guessed


def _guess(text: str, language_options: tuple | None):
    """The guessed language of a text that will be stored (MIN_WORDS or more), or None."""
    if language_options is None or len(text.split()) < MIN_WORDS:
        return None
    from ingest.language import shared_tagger

    return shared_tagger(language_options).guess_language(text)


def _pdf_page_texts(payload: bytes, language_options: tuple | None = None) -> tuple[list[tuple[int, str, Any]], str]:
    """The pages of a PDF inside an archive, as ([(page number, text, guessed language or None)], "") for the
    pages with MIN_WORDS or more, or ([], why) when the PDF cannot be opened. Run where pages are extracted
    (pypdf and lingua are pure Python / hold the GIL), like _extract."""
    from pypdf import PdfReader

    from ingest.pdf import pdf_errors

    broken = pdf_errors()
    try:
        pages = list(PdfReader(io.BytesIO(payload)).pages)
    except broken as exc:
        return [], f"PDF inside the archive unreadable: {exc}"
    texts = []
    for number, page in enumerate(pages, 1):
        try:
            text = (page.extract_text() or "").strip()
        except broken:
            text = ""
        if len(text.split()) >= MIN_WORDS:
            texts.append((number, text, _guess(text, language_options)))
    return texts, ""


DEFAULT_MAX_PAYLOAD_BYTES = 20_000_000  # settings: ingest.max_payload_bytes
EXTRACT_WINDOW = 16  # pages extracted ahead, in a worker process, while the caller embeds


class TextExtractor:
    """Main-text extraction for archived pages in spawned worker processes (ingest.extract_workers, one by
    default), owned by whoever runs the ingest (started on first use, stopped by close()): trafilatura is
    pure Python and would otherwise hold the GIL the embedding thread needs (ingest/bare-encode ratio 0.71 without it; README "Web archives").
    Readers given none extract in their own thread (a Ray read task is already a worker of its own)."""

    def __init__(self, workers: int = 1):
        self.workers = workers  # processes; pages are still handed back in the order they were read
        self._pool = None
        self.inline_only = False  # set when no worker process can be started (e.g. a __main__ read from stdin)

    def submit(self, extract, *args):
        """extract(*args) in the worker: _extract (a page) or _pdf_page_texts (a PDF's pages)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(extract, *args)

    def close(self, wait: bool = True) -> None:
        """wait=False: the worker exits in the background (nothing more will be submitted)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> TextExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pending:
    """One archived page or PDF handed to the extraction worker; resolve() gives its items, in order."""

    def __init__(self, extractor: TextExtractor, extract, args: tuple, finish, path: str, record_id: str):
        self.extractor, self.extract, self.args, self.finish = extractor, extract, args, finish
        self.path, self.record_id = path, record_id
        self.future = extractor.submit(extract, *args)

    def resolve(self) -> list:
        from concurrent.futures.process import BrokenProcessPool

        try:
            try:
                extracted = self.future.result()
            except BrokenProcessPool:
                self.extractor.inline_only = True
                extracted = self.extract(*self.args)
        except Exception as exc:  # noqa: BLE001 - trafilatura/pypdf on arbitrary archived content: its failure skips one record, named with its type
            return [
                SkippedRecord(
                    path=self.path, record=self.record_id, reason=f"text extraction failed: {type(exc).__name__}: {exc}"
                )
            ]
        return self.finish(*extracted)


@dataclass
class ArchiveContext:
    """Where the records come from: a WARC on disk, or one inside a WACZ package."""

    path: Path  # the file on disk (a WARC, or the WACZ holding it): the records' source_file
    label: str  # how messages name it: "x.warc.gz" or "site.wacz!archive/data.warc.gz"
    warc_name: str  # the WARC's own name
    template: str  # replay link template
    extra_filters: dict = field(default_factory=dict)  # e.g. wacz_file, collection
    locator_suffix: str = ""  # e.g. " · site.wacz (My crawl)"
    browser: Any = None  # WACZ: text the crawler's browser extracted (ingest.wacz.BrowserText)
    seen: dict[str, str] = field(default_factory=dict)  # payload key -> record id of the content first seen
    payloads: Any = None  # ingest.payloads.PayloadIndex: content already held by another file's record
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES  # decompressed; a larger payload is left out
    extractor: TextExtractor | None = None  # None: pages are extracted in the reading thread
    languages: Any = None  # ingest.language.LanguageTagger: guesses the language of pages that state none

    def __post_init__(self) -> None:
        self.source_file = str(self.path.resolve())  # the records' source_file, worked out once per archive
        # A first pass (ingest.payloads.PayloadPlan): each payload is noted where it is looked up, not read on.
        self.plan = self.payloads if isinstance(self.payloads, PayloadPlan) else None

    def register(self, keys: list[str], record_id: str) -> None:
        for key in keys:
            self.seen.setdefault(key, record_id)
        if self.payloads is not None:
            self.payloads.claim(keys, self.source_file, record_id)

    def elsewhere(self, keys: list[str]):
        """The record of another file (this run or an earlier one) that holds this payload, if any."""
        if self.payloads is None or not keys:
            return None
        return self.payloads.holder(keys, self.source_file)


def iter_records(
    path: str | Path,
    link_template: str = "",
    payloads=None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    extractor: TextExtractor | None = None,
    languages=None,
) -> Iterator:
    """payloads: an ingest.payloads.PayloadIndex shared across files, so content already stored from
    another file adds a capture date instead of a second copy. max_payload_bytes: a record whose payload
    decompresses to more is left out (counted, with the reason), never read whole into memory.
    extractor: pages are extracted there, ahead of the caller, instead of in this thread. languages: an
    ingest.language.LanguageTagger; a page stating no language gets its guess, made where it is extracted."""
    path = Path(path)
    with open_binary(path) as fh:
        if not fh.read(1):
            raise ReaderError(path, "empty file")
        fh.seek(0)
        ctx = ArchiveContext(
            path=path,
            label=str(path),
            warc_name=path.name,
            template=link_template or DEFAULT_REPLAY,
            payloads=payloads,
            max_payload_bytes=max_payload_bytes,
            extractor=extractor,
            languages=languages,
        )
        yield from iter_archive(fh, ctx, size=path.stat().st_size)


def iter_archive(fh: IO[bytes], ctx: ArchiveContext, size: int | None = None) -> Iterator:
    """Streams one WARC/ARC from an open binary file (a file on disk, or a member of a zip)."""
    from warcio.archiveiterator import ArchiveIterator

    broken = archive_errors()
    offset = 0
    iterator = ArchiveIterator(fh, arc2warc=True)
    pending: deque[_Pending] = deque()
    try:
        for record in iterator:
            # The record's start offset; get_record_offset() would read the record to its end first.
            offset = iterator.offset
            for item in _record_items(ctx, record, offset):
                if isinstance(item, _Pending):
                    pending.append(item)
                    while len(pending) > EXTRACT_WINDOW:
                        yield from pending.popleft().resolve()
                else:
                    yield item
        while pending:
            yield from pending.popleft().resolve()
        if size is not None and iterator.offset < size and ctx.warc_name.lower().endswith(".gz"):
            # warcio stops quietly at a cut-off gzip member: say where the archive breaks.
            yield SkippedRecord(
                path=ctx.label,
                record=f"byte {iterator.offset} of {size}",
                reason="archive ends early (truncated or corrupt): records after this point are lost",
            )
    except broken as exc:
        while pending:  # pages read before the break still count
            yield from pending.popleft().resolve()
        raise ReaderError(
            ctx.label, f"archive breaks at byte {offset}: {type(exc).__name__}: {exc}", record=f"after byte {offset}"
        ) from exc


def _record_items(ctx: ArchiveContext, record, offset: int) -> Iterator:
    seen = ctx.seen
    rtype = record.rec_type
    headers = record.rec_headers
    uri = headers.get_header("WARC-Target-URI") or ""
    date = headers.get_header("WARC-Date") or ""
    if ctx.warc_name.lower().endswith((".arc", ".arc.gz")) or not headers.get_header("WARC-Record-ID"):
        # An ARC record has no id of its own: warcio's conversion makes up a new uuid on every read, which
        # would give the same page new chunk ids each time the file is read. Its place in the file is stable.
        record_id = f"{ctx.warc_name}@{offset}"
    else:
        record_id = headers.get_header("WARC-Record-ID").strip("<>")
    digest = headers.get_header("WARC-Payload-Digest") or ""
    if rtype == "revisit":
        if ctx.plan is not None:
            ctx.plan.record(ctx.source_file, [digest] if digest else [], record_id, stores=False)
            return
        original = seen.get(digest)
        holder = None if original else ctx.elsewhere([digest] if digest else [])
        if original:
            yield AlsoCaptured(record_id=original, date=date)
        elif holder:
            yield AlsoCaptured(record_id=holder.record_id, date=date, source_file=holder.path, record_here=record_id)
        else:
            yield Ignored(reason="revisit of content not ingested")
        return
    if rtype not in ("response", "resource"):
        yield Ignored(reason=f"{rtype} record")
        return
    text_source = "html"  # what the page text was made from, kept with every chunk
    if rtype == "resource" and ctx.browser is not None and uri.startswith(BROWSER_TEXT_PREFIXES):
        choice = ctx.browser.resource_choice(uri)
        if choice is None:
            yield Ignored(reason="browser text superseded by a later extraction (urn:textFinal)")
            return
        uri, text_source = choice  # the page's own URI; the text the browser rendered
    if uri.endswith("/robots.txt"):
        yield Ignored(reason="robots.txt")
        return
    status = "200"
    content_type = ""
    if rtype == "response":
        if record.http_headers is None:
            yield Ignored(reason="response without HTTP headers")
            return
        status = record.http_headers.get_statuscode() or ""
        content_type = (record.http_headers.get_header("Content-Type") or "").lower()
        if status.startswith("3"):
            yield Ignored(reason="redirect")
            return
        if status != "200":
            yield Ignored(reason=f"HTTP {status or 'status missing'}")
            return
    else:
        content_type = (headers.get_header("Content-Type") or "").lower()
    if any(t in content_type for t in SKIP_TYPES):
        yield Ignored(reason=skip_reason(content_type))
        return
    # Read one byte past the cap: a payload that decompresses to more is left out, never held whole.
    payload = record.content_stream().read(ctx.max_payload_bytes + 1)
    if len(payload) > ctx.max_payload_bytes:
        yield Ignored(reason=f"payload over {ctx.max_payload_bytes:,} bytes decompressed (ingest.max_payload_bytes)")
        return
    # The header digest is what revisits name; the SHA-1 of the decoded payload matches an ARC (no digest
    # header) with its WARC conversion, whatever encoding each producer wrote its digest in.
    keys = [k for k in (digest, "sha1:" + hashlib.sha1(payload).hexdigest()) if k]
    is_pdf = "pdf" in content_type or payload[:5] == b"%PDF-"
    plain_resource = rtype == "resource" and "text/plain" in content_type  # e.g. text a crawler extracted
    indexed = is_pdf or "html" in content_type or plain_resource or not content_type
    if ctx.plan is not None:  # stored below if indexed, unless seen in this file or held by another
        ctx.plan.record(ctx.source_file, keys, record_id, stores=indexed)
        return
    original = next((seen[k] for k in keys if k in seen), None)
    if original:
        yield AlsoCaptured(record_id=original, date=date, via="duplicate")
        return
    holder = ctx.elsewhere(keys)
    if holder:  # no second extraction or embedding: one more capture of the stored record
        yield AlsoCaptured(
            record_id=holder.record_id, date=date, via="duplicate", source_file=holder.path, record_here=record_id
        )
        return
    timestamp = _timestamp14(date)
    link = ctx.template.format(timestamp=timestamp, uri=uri, id=record_id)
    locator = f"captured {_human_date(date)} — {uri}"
    source_file = ctx.source_file
    base_filters = {
        "uri": uri,
        "warc_file": ctx.warc_name,
        "warc_offset": offset,
        "capture": date[:10],
        **ctx.extra_filters,
    }
    year = re.match(r"(\d{4})", date)
    if year:
        base_filters["year"] = int(year.group(1))
    language_options = ctx.languages.options if ctx.languages is not None else None
    if is_pdf:
        ctx.register(keys, record_id)
        where = (ctx.label, uri, record_id, date, locator + ctx.locator_suffix, link, source_file, base_filters)
        yield from _extracted(
            ctx, _pdf_page_texts, (payload, language_options), partial(_pdf_records, *where, ctx.languages), record_id
        )
        return
    if not indexed:
        yield Ignored(reason=f"{content_type.split(';')[0]} not indexed")
        return
    text_content = decode_html(payload, content_type)
    ctx.register(keys, record_id)  # registered now: an identical payload later is a further capture
    filters = dict(base_filters, format="web page")

    def finish(title: str, text: str, lang: str, guessed=None, source: str = text_source):
        """guessed: the language guessed where the text was extracted (None: no guess, or no tagger)."""
        if len(text.split()) < MIN_WORDS:
            return Ignored(reason="no main text")
        shown_source = "" if source == "html" else f" · {TEXT_SOURCE_LABELS.get(source.split(':')[0], source)}"
        return SourceRecord(
            provenance=Provenance(
                source_type="warc",
                record_id=record_id,
                title=title or uri,
                locator=locator + ctx.locator_suffix + shown_source,
                captured=_human_date(date),
                link=link,
                date=date,
                source_file=source_file,
            ),
            text=f"Archived page {uri}, captured {_human_date(date)}.\n{text}",
            filters=_language(dict(filters, language=lang, text_source=source), lang, guessed, ctx.languages),
            search={"title": title or uri, "identifiers": uri},
        )

    is_html = "html" in content_type or "<html" in text_content[:2000].lower()
    if is_html and ctx.browser is not None:
        choice = ctx.browser.html_choice(uri)
        if choice == "browser record":
            yield Ignored(reason="HTML left for the text the browser extracted (urn:text record)")
            return
        if choice is not None:
            title, text = choice
            yield finish(title, text, "", _guess(text, language_options), source="pages.jsonl")
            return
    if text_source != "html":
        title = ctx.browser.title(uri) if ctx.browser is not None else ""
        yield finish(title or uri, text_content, "", _guess(text_content, language_options))
    elif is_html:
        page = lambda *extracted: [finish(*extracted)]  # noqa: E731 - one record per page
        yield from _extracted(ctx, _extract, (text_content, uri, language_options), page, record_id)
    else:
        yield finish(uri, text_content, "", _guess(text_content, language_options))


def _extracted(ctx: ArchiveContext, extract, args: tuple, finish, record_id: str) -> Iterator:
    """The items of finish(*extract(*args)): a _Pending for the run's extraction worker (iter_archive resolves
    them in order), or, without one, extracted here."""
    if ctx.extractor is None or ctx.extractor.inline_only:
        yield from finish(*extract(*args))
    else:
        yield _Pending(ctx.extractor, extract, args, finish, ctx.label, record_id)


def _language(filters: dict, stated: str, guessed, languages) -> dict:
    """filters with the record's language: as stated, else as guessed, else (when a tagger looked) marked
    undetermined, so the read stage does not guess again from refdesk's own first line."""
    if stated or languages is None:
        return filters
    if guessed is not None:
        return guessed.mark(filters)
    from ingest.language import mark_undetermined

    return mark_undetermined(filters)


def _pdf_records(
    label, uri, record_id, date, locator, link, source_file, filters, languages, pages: list, error: str
) -> list:
    """The records of a PDF's pages as _pdf_page_texts read them, or why there are none."""
    if error:
        return [SkippedRecord(path=label, record=record_id, reason=error)]
    name = uri.rsplit("/", 1)[-1] or uri
    return [
        SourceRecord(
            provenance=Provenance(
                source_type="warc",
                record_id=f"{record_id}#page={number}",
                title=f"{name} (PDF)",
                locator=f"{locator}, p. {number}",
                captured=_human_date(date),
                link=f"{link}#page={number}",
                date=date,
                source_file=source_file,
            ),
            text=f"Archived PDF {uri}, captured {_human_date(date)}, page {number}.\n{text}",
            filters=_language(dict(filters, format="pdf page", page=number), "", guessed, languages),
            search={"title": name, "identifiers": uri},
        )
        for number, text, guessed in pages
    ]

"""PDF finding aids and documents with pypdf: one record per page, cited as "p. N" with file#page=N.

In an inventory laid out as Box | Folder | Title | Date columns, the box number is printed only
where it changes; rows are rewritten as "Box 4, Folder 11: <title> (<date>)" with the current box
carried down the page and across pages (best effort, from pypdf's layout-preserving extraction).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from assistant.core.types import Provenance, SkippedRecord, SourceRecord
from ingest.language import mark_undetermined
from ingest.registry import ReaderError

logging.getLogger("pypdf").setLevel(logging.ERROR)  # font-encoding chatter per page; failures are reported per page

HEADER = re.compile(r"^\s*Box\s{2,}Folder\s{2,}Title\b", re.I)
PAGE_FOOTER = re.compile(r"^\s*Page \d+ of \d+\s*$")


def _inventory(lines: list[str], box: str) -> tuple[list[str], str, bool]:
    """Rewrites Box | Folder | Title | Date rows by the header's column positions (the layout
    extraction keeps columns aligned); returns (lines, current box, whether a table was seen)."""
    out: list[str] = []
    cols: tuple[int, int, int, int | None] | None = None
    seen_table = False
    for line in lines:
        if HEADER.match(line):
            low = line.lower()
            date_col = low.find("date", low.find("title"))
            cols = (low.find("box"), low.find("folder"), low.find("title"), date_col if date_col > 0 else None)
            seen_table = True
            continue
        if cols:
            b, f, t, d = cols
            cell_box = line[b:f].strip()
            folder = line[f:t].strip()
            title = (line[t:d] if d else line[t:]).strip()
            date = line[d:].strip() if d else ""
            if re.fullmatch(r"\d{1,4}[A-Za-z]?", folder) and (
                not cell_box or re.fullmatch(r"\d{1,4}[A-Za-z]?", cell_box)
            ):
                box = cell_box or box
                out.append(f"Box {box}, Folder {folder}: {title}" + (f" ({date})" if date else ""))
                continue
            if not cell_box and not folder and title and out and out[-1].startswith("Box "):
                head, sep, tail = out[-1].partition(" (")
                out[-1] = f"{head} {title}" + (f" ({tail}" if sep else "")  # wrapped title line
                continue
        out.append(line.strip())
    return [line for line in out if line], box, seen_table


def pdf_errors() -> tuple[type[BaseException], ...]:
    """What pypdf raises on a damaged file: its own errors, and the Python ones its parser meets on bytes it
    does not expect (found by fuzzing real PDFs: tests/test_fuzz_readers.py)."""
    import zlib

    from pypdf.errors import PyPdfError

    return (
        PyPdfError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        RecursionError,
        zlib.error,
        AssertionError,
        NotImplementedError,
        ZeroDivisionError,
        OverflowError,
        UnicodeError,
    )


PAGES_PER_TASK = 8  # pages one worker task extracts: the worker opens the PDF once per task
TASKS_AHEAD = 4  # tasks handed to the worker ahead of the pages being yielded


def _open(path: Path):
    """(PdfReader, page count, document title), or a ReaderError naming the file."""
    from pypdf import PdfReader

    broken = pdf_errors()
    try:
        with path.open("rb") as fh:
            if not fh.read(1024).lstrip().startswith(b"%PDF-"):
                raise ReaderError(path, "not a PDF (no %PDF- header)")
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise ReaderError(path, "encrypted PDF (needs a password)")
            except broken as exc:
                raise ReaderError(path, f"encrypted PDF: {exc}") from exc
        page_count = len(reader.pages)  # walks the page tree: a broken one fails here, for the whole file
        title = str(reader.metadata.get("/Title") or "").strip() if reader.metadata else ""
    except broken as exc:
        raise ReaderError(path, f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    return reader, page_count, title


def _page_lines(reader, number: int) -> tuple[list[str], str]:
    """A page's lines in layout order, footers left out, or ([], why the page is unreadable)."""
    try:
        raw = reader.pages[number - 1].extract_text(extraction_mode="layout") or ""
    except pdf_errors() as exc:  # a broken page must not lose the rest of the document
        return [], f"unreadable page: {exc}"
    return [line for line in raw.splitlines() if not PAGE_FOOTER.match(line)], ""


@lru_cache(maxsize=1)
def _worker_reader(path: str, modified_ns: int):
    """The worker's PdfReader for the file whose pages it is handed, opened once for all its tasks."""
    return _open(Path(path))[0]


def _extract_pages(path: str, first: int, last: int, language_options: tuple | None, reader=None) -> list[tuple]:
    """Pages first..last as (number, lines, why unreadable, guessed language or None). Run in the ingest's
    extraction worker (ingest.warc.TextExtractor) when there is one: pypdf's layout extraction is pure
    Python and lingua holds the GIL, and in the reader thread they slowed the model by a quarter on the
    shared PDFs (README "Language"). The language is guessed from the page's own lines, before refdesk writes
    "Box 4, Folder 11:" into inventory rows."""
    if reader is None:
        reader = _worker_reader(path, Path(path).stat().st_mtime_ns)
    tagger = None
    if language_options is not None:
        from ingest.language import shared_tagger

        tagger = shared_tagger(language_options)
    pages = []
    for number in range(first, last + 1):
        lines, error = _page_lines(reader, number)
        text = "\n".join(lines).strip()
        guessed = tagger.guess_language(text) if tagger is not None and text else None
        pages.append((number, lines, error, guessed))
    return pages


def _pages(path: Path, reader, page_count: int, extractor, language_options) -> Iterator[tuple]:
    """Every page as _extract_pages gives it, in order: from the worker, PAGES_PER_TASK at a time, when there
    is one; else here."""
    from concurrent.futures.process import BrokenProcessPool

    spans = deque(
        (first, min(first + PAGES_PER_TASK - 1, page_count)) for first in range(1, page_count + 1, PAGES_PER_TASK)
    )
    if extractor is None or extractor.inline_only:
        for first, last in spans:
            yield from _extract_pages(str(path), first, last, language_options, reader)
        return
    pending: deque = deque()
    while spans or pending:
        while spans and len(pending) < TASKS_AHEAD:
            first, last = spans.popleft()
            pending.append(((first, last), extractor.submit(_extract_pages, str(path), first, last, language_options)))
        (first, last), future = pending.popleft()
        try:
            yield from future.result()
        except BrokenProcessPool:  # the worker is gone: the rest of the run extracts here
            extractor.inline_only = True
            for start, end in [(first, last), *(span for span, _ in pending), *spans]:
                yield from _extract_pages(str(path), start, end, language_options, reader)
            return


def iter_records(
    path: str | Path, link_template: str = "", extractor=None, languages=None
) -> Iterator[SourceRecord | SkippedRecord]:
    """extractor: the run's text-extraction worker (ingest.warc.TextExtractor); pages are extracted there,
    ahead of the caller, instead of in this thread. languages: an ingest.language.LanguageTagger; each
    page's language is guessed where it is extracted."""
    path = Path(path)
    reader, page_count, title = _open(path)
    options = languages.options if languages is not None else None
    empty: list[int] = []
    box = ""
    base = path.resolve().as_uri()
    for number, lines, error, guessed in _pages(path, reader, page_count, extractor, options):
        if error:
            yield SkippedRecord(path=str(path), record=f"p. {number}", reason=error)
            continue
        lines, box, table = _inventory(lines, box)
        text = "\n".join(lines).strip()
        if not text:
            empty.append(number)
            continue
        page_title = title or lines[0][:120]
        link = (
            link_template.format(path=path.as_posix(), page=number, id=f"{path.stem}#page={number}")
            if link_template
            else f"{base}#page={number}"
        )
        filters: dict = {"format": "inventory page" if table else "pdf page", "page": number}
        if guessed is not None:
            guessed.mark(filters)
        elif languages is not None:
            mark_undetermined(filters)  # its own words gave no guess: not guessed again from the record
        yield SourceRecord(
            provenance=Provenance(
                source_type="pdf",
                record_id=f"{path.name}#page={number}",
                title=page_title,
                locator=f"p. {number}",
                link=link,
                date="",
                source_file=str(path.resolve()),
            ),
            text=text,
            filters=filters,
        )
    if empty:
        pages_text = ", ".join(str(n) for n in empty[:20]) + (" …" if len(empty) > 20 else "")
        yield SkippedRecord(path=str(path), record=f"pages {pages_text}", reason="no text layer: OCR not done")

"""PDF finding aids and documents with pypdf: one record per page, cited as "p. N" with file#page=N.

In an inventory laid out as Box | Folder | Title | Date columns, the box number is printed only
where it changes; rows are rewritten as "Box 4, Folder 11: <title> (<date>)" with the current box
carried down the page and across pages (best effort, from pypdf's layout-preserving extraction).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from assistant.core.types import Provenance, SkippedRecord, SourceRecord
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


def iter_records(path: str | Path, link_template: str = "") -> Iterator[SourceRecord | SkippedRecord]:
    from pypdf import PdfReader

    broken = pdf_errors()

    path = Path(path)
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
    empty: list[int] = []
    box = ""
    base = path.resolve().as_uri()
    for number in range(1, page_count + 1):
        try:
            raw = reader.pages[number - 1].extract_text(extraction_mode="layout") or ""
        except broken as exc:  # a broken page must not lose the rest of the document
            yield SkippedRecord(path=str(path), record=f"p. {number}", reason=f"unreadable page: {exc}")
            continue
        lines = [line for line in raw.splitlines() if not PAGE_FOOTER.match(line)]
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
            filters={"format": "inventory page" if table else "pdf page", "page": number},
        )
    if empty:
        pages_text = ", ".join(str(n) for n in empty[:20]) + (" …" if len(empty) > 20 else "")
        yield SkippedRecord(path=str(path), record=f"pages {pages_text}", reason="no text layer: OCR not done")

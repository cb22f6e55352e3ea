"""Plain-text and Markdown reader: one SourceRecord per Markdown section.

An optional front-matter block (`---` / `key: value` lines / `---`) gives the file's
title, record_id, date, link and attribution; headings split the file into records.
The file is read line by line, so memory holds one section at a time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from assistant.core.types import Provenance, SkippedRecord, SourceRecord
from ingest.registry import ReaderError

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FRONT_KEYS = {"title", "record_id", "date", "link", "source", "licence", "license", "locator"}


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:60] or "section"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("r", encoding="utf-8-sig", newline=None) as fh:
            number = 0
            try:
                for number, line in enumerate(fh, 1):
                    yield number, line.rstrip("\n")
            except UnicodeDecodeError as exc:
                raise ReaderError(path, f"not UTF-8 text near line {number + 1}: {exc.reason}") from exc
    except OSError as exc:
        raise ReaderError(path, f"cannot read: {exc.strerror or exc}") from exc


def iter_records(path: str | Path, link_template: str = "") -> Iterator[SourceRecord | SkippedRecord]:
    path = Path(path)
    lines = _lines(path)
    front: dict[str, str] = {}
    first = next(lines, None)
    pending: list[tuple[int, str]] = []
    if first is not None and first[1].strip() == "---":
        for _number, line in lines:
            if line.strip() == "---":
                break
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in FRONT_KEYS:
                front[key.strip().lower()] = value.strip()
        else:
            raise ReaderError(path, "front matter opened with '---' is never closed")
    elif first is not None:
        pending.append(first)

    base_id = front.get("record_id") or path.stem
    file_title = front.get("title", "")
    link = front.get("link") or (
        link_template.format(record_id=base_id, path=path.as_posix()) if link_template else path.resolve().as_uri()
    )
    heading_path: list[str] = []
    section_lines: list[str] = []
    section_start = 1
    seen_ids: dict[str, int] = {}

    def emit() -> SourceRecord | None:
        text = "\n".join(section_lines).strip()
        if not text:
            return None
        heading = heading_path[-1] if heading_path else ""
        # The top heading that repeats the file's title names the record itself, not a section.
        slug = _slug(heading) if heading and heading != file_title else ""
        record_id = f"{base_id}#{slug}" if slug else base_id
        seen_ids[record_id] = seen_ids.get(record_id, 0) + 1
        if seen_ids[record_id] > 1:
            record_id = f"{record_id}-{seen_ids[record_id]}"
        title = file_title or (heading_path[0] if heading_path else path.stem)
        locator = front.get("locator") or ""
        section = " › ".join(h for h in heading_path if h != title)
        if section:
            locator = f"{locator}, {section}" if locator else section
        if not locator:
            locator = f"lines {section_start}–{section_end}"
        return SourceRecord(
            provenance=Provenance(
                source_type="text",
                record_id=record_id,
                title=title,
                locator=locator,
                link=link,
                date=front.get("date", ""),
                source_file=str(path.resolve()),
            ),
            text=text,
            extra={k: v for k, v in front.items() if k in ("source", "licence", "license")},
        )

    section_end = 0
    for number, line in itertools.chain(pending, lines):
        match = HEADING.match(line)
        if match:
            record = emit()
            if record:
                yield record
            level = len(match.group(1))
            heading_path = heading_path[: level - 1] + [match.group(2)]
            section_lines = []
            section_start = number
            continue
        section_lines.append(line)
        section_end = number
    record = emit()
    if record:
        yield record

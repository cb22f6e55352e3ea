"""Readers by format, imported lazily; the format of each file is picked here (extension, then content)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.core.errors import RefdeskError
from assistant.core.registry import Registry
from assistant.core.types import SkippedRecord, SourceRecord

ReaderFn = Callable[..., Iterator[SourceRecord | SkippedRecord]]

READERS = Registry(
    "reader",
    {
        "text": "ingest.text:iter_records",
        "marc": "ingest.marc:iter_records",
        "oai_dc": "ingest.oai_dc:iter_records",
        "ead": "ingest.ead:iter_records",
        "pdf": "ingest.pdf:iter_records",
        "warc": "ingest.warc:iter_records",
        "wacz": "ingest.wacz:iter_records",
    },
)

EXTENSIONS = {
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
    ".mrc": "marc",
    ".marc": "marc",
    ".dat": "marc",
    ".iso2709": "marc",
    ".pdf": "pdf",
    ".ead": "ead",
    ".warc": "warc",
    ".arc": "warc",
    ".wacz": "wacz",
}
SNIFFED = {".xml"}  # shared by MARCXML and EAD: decided by content
SNIFF_BYTES = 4096
XML_SNIFF_BYTES = 65536  # an OAI-PMH envelope can hold a long header before the first MARC record


class ReaderError(RefdeskError):
    """A whole file cannot be read; the message names the file (and the record where known)."""

    def __init__(self, path: str | Path, reason: str, record: str = ""):
        self.path = str(path)
        self.record = record
        self.reason = reason
        where = self.path + (f" [{record}]" if record else "")
        super().__init__(f"{where}: {reason}")


def open_binary(path: Path):
    """The file for reading, or a ReaderError naming it (readers call this, so the message is the same)."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise ReaderError(path, f"cannot read: {exc.strerror or exc}") from exc


def _sniff_xml(head: bytes) -> str | None:
    text = head.decode("utf-8", "ignore")
    if "http://www.openarchives.org/OAI/2.0/oai_dc/" in text:
        return "oai_dc"
    if re.search(r"<(\w+:)?ead[\s>]", text) or "urn:isbn:1-931666-22-9" in text or "ead3.archivists.org" in text:
        return "ead"
    if (
        "http://www.loc.gov/MARC21/slim" in text
        or re.search(r"<(\w+:)?(collection|record)[\s>]", text)
        and re.search(r"<(\w+:)?(leader|controlfield|datafield)[\s>]", text)
    ):
        return "marc"
    return None


def _sniff_binary(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"WARC/"):
        return "warc"
    if (
        head.startswith(b"PK\x03\x04")
        and b"datapackage.json" in head
        or head.startswith(b"PK\x03\x04")
        and b"archive/" in head
    ):
        return "wacz"
    if len(head) >= 24 and head[:5].isdigit() and head[10:12] == b"22":
        return "marc"
    return None


def detect_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".warc.gz", ".arc.gz", ".warc", ".arc")):
        return "warc"
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS and suffix not in SNIFFED:
        return EXTENSIONS[suffix]
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return None
    if head.lstrip().startswith(b"<"):
        with path.open("rb") as fh:
            return _sniff_xml(fh.read(XML_SNIFF_BYTES))
    return _sniff_binary(head)


def get_reader(fmt: str) -> ReaderFn:
    return READERS.get(fmt)

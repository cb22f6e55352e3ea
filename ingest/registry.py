"""Readers by format, imported lazily; the format of each file is picked here."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from assistant.registry import Registry
from assistant.types import SkippedRecord, SourceRecord

ReaderFn = Callable[..., Iterator[SourceRecord | SkippedRecord]]

READERS = Registry("reader", {"text": "ingest.text:iter_records"})

# Extension -> format. Later readers (MARC, EAD, PDF, WARC) add their own entries and sniffers.
EXTENSIONS = {".txt": "text", ".md": "text", ".markdown": "text"}


class ReaderError(Exception):
    """A whole file cannot be read; the message names the file (and the record where known)."""

    def __init__(self, path: str | Path, reason: str, record: str = ""):
        self.path = str(path)
        self.record = record
        self.reason = reason
        where = self.path + (f" [{record}]" if record else "")
        super().__init__(f"{where}: {reason}")


def detect_format(path: Path) -> str | None:
    return EXTENSIONS.get(path.suffix.lower())


def get_reader(fmt: str) -> ReaderFn:
    return READERS.get(fmt)

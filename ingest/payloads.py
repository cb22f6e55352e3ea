"""Which stored record holds each archived payload, across files and runs.

The same page often sits in several archive files (an ARC and its WARC conversion, a second crawl that
found it unchanged, a WACZ made from a WARC already ingested). Its text is extracted and embedded once;
every further sighting only adds a capture date to the record first stored. Keys are the WARC payload
digest (what revisit records name) and refdesk's own SHA-1 of the decoded payload (ARC files have no
digest header, and producers write digests in different encodings).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import NamedTuple


class Holder(NamedTuple):
    path: str  # source file (WARC, ARC or WACZ) whose chunks hold the content
    record_id: str


class PayloadIndex:
    """Read and claimed by the reader thread; filled from the manifest before it starts."""

    def __init__(self, known: dict[str, Holder] | None = None):
        self._holders: dict[str, Holder] = dict(known or {})
        self._claimed: dict[str, dict[str, str]] = {}  # path -> key -> record id, claimed in this run
        self._lock = threading.Lock()

    def holder(self, keys: Iterable[str], path: str) -> Holder | None:
        """The record in another file that holds this payload, if any."""
        with self._lock:
            for key in keys:
                found = self._holders.get(key)
                if found is not None and found.path != path:
                    return found
        return None

    def claim(self, keys: Iterable[str], path: str, record_id: str) -> None:
        with self._lock:
            for key in keys:
                if key not in self._holders:
                    self._holders[key] = Holder(path, record_id)
                    self._claimed.setdefault(path, {})[key] = record_id

    def claimed_by(self, path: str) -> dict[str, str]:
        """key -> record id for the payloads path claimed in this run (what the manifest keeps)."""
        with self._lock:
            return dict(self._claimed.get(path, {}))

    def items(self) -> list[tuple[str, Holder]]:
        """key -> holder pairs known now (handed to a Ray read task)."""
        with self._lock:
            return list(self._holders.items())

    def __len__(self) -> int:
        return len(self._holders)

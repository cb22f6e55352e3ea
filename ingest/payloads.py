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

    def holders_of(self, keys: Iterable[str]) -> dict[str, Holder]:
        """key -> holder for those of keys held now (what a file of a planned run is given)."""
        with self._lock:
            return {key: self._holders[key] for key in keys if key in self._holders}

    def items(self) -> list[tuple[str, Holder]]:
        """key -> holder pairs known now (handed to a Ray read task)."""
        with self._lock:
            return list(self._holders.items())

    def __len__(self) -> int:
        return len(self._holders)


class PlannedPayload(NamedTuple):
    path: str  # the archive file (its source_file)
    keys: tuple[str, ...]  # what the reader looks the payload up by
    record_id: str
    stores: bool  # the record is stored when neither its file nor another holds its keys (False: looked up only)


class PayloadPlan:
    """A first pass over one archive file: every payload it looks up, in the order read, with whether it
    would store it, worked out without extracting anything (ingest.warc stops each record there). Given as
    the reader's `payloads`; nothing is claimed and no record is yielded."""

    def __init__(self) -> None:
        self.events: list[PlannedPayload] = []

    def record(self, path: str, keys: list[str], record_id: str, stores: bool) -> None:
        self.events.append(PlannedPayload(path, tuple(keys), record_id, stores))


def holders_before(plans: Iterable[list[PlannedPayload]], known: dict[str, Holder]) -> list[dict[str, Holder]]:
    """For each file's plan, in the run's order: the holders of its keys as they stand when it would be read
    in one sequential run. A file read alone with its own (a PayloadIndex over them) decides every page as
    that run would, so the files of a run can be read in parallel (the Ray engine) and still store each
    payload once, in the same record. This replays ingest.warc.ArchiveContext over one PayloadIndex: a
    payload is stored when no key of it was seen earlier in its file and no other file holds it."""
    index = PayloadIndex(known)
    views: list[dict[str, Holder]] = []
    for events in plans:
        # Before this file's own claims: a key it claims must not look held to it (claim would skip it).
        views.append(index.holders_of(key for event in events for key in event.keys))
        seen: set[str] = set()
        for event in events:
            if not event.stores or seen.intersection(event.keys) or index.holder(event.keys, event.path):
                continue
            seen.update(event.keys)
            index.claim(event.keys, event.path, event.record_id)
    return views

"""The hand-off queue: questions refdesk could not answer, waiting for a librarian (SQLite).

It stores the question, the sources retrieved and the draft answer; no patron identity
unless the patron typed contact details themselves.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.errors import RefdeskError
from assistant.core.types import Answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoffs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at REAL NOT NULL,
  question TEXT NOT NULL,
  draft TEXT NOT NULL,
  sources TEXT NOT NULL,
  contact TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT 'open',
  closed_at REAL,
  note TEXT NOT NULL DEFAULT ''
);
"""


@dataclass
class Handoff:
    id: int
    created_at: float
    question: str
    draft: str
    sources: list[dict] = field(default_factory=list)
    contact: str = ""
    status: str = "open"
    closed_at: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class HandoffError(RefdeskError):
    pass


class HandoffRefused(HandoffError):
    """A hand-off not taken, with the reason in words a patron can read."""


def checked_draft(answer: Answer) -> str:
    """What refdesk drafted, in front of librarians: checked sentences only. A sentence the checker
    rejected (an invented founder and year, say) never reaches the queue unmarked."""
    lines = []
    for sentence in answer.sentences:
        if sentence.status == "supported":
            lines.append(sentence.text)
        elif sentence.shown:  # verify.unsupported = "flag": shown to the patron, so marked here too
            lines.append(f"[unverified] {sentence.text}")
    return " ".join(lines)


class HandoffQueue:
    def __init__(self, path: Path, max_contact_chars: int = 200, max_open: int = 500):
        self.max_contact_chars, self.max_open = max_contact_chars, max_open
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)

    def create_offered(self, answer: Answer | None, contact: str, offers, within_limits=lambda: True) -> Handoff:
        """A hand-off someone asked for: only for an answer that offered one (`offers`: the front end's
        assistant.web.ratelimit.HandoffOffers), once per answer, contact details bounded, the queue bounded;
        `within_limits()` is the caller's rate limit (per session and address on the patron side)."""
        contact = contact.strip() if isinstance(contact, str) else ""
        if answer is None or not answer.handoff_offered:
            raise HandoffRefused("There is no answer to pass on to a librarian yet.")
        if not answer.handoff_token:
            raise HandoffRefused("This question was already sent to a librarian.")
        if len(contact) > self.max_contact_chars:
            raise HandoffRefused(f"Please keep contact details under {self.max_contact_chars} characters.")
        if self.open_count() >= self.max_open:
            raise HandoffRefused("The librarians' queue is full right now. Please contact the library directly.")
        if not within_limits():
            raise HandoffRefused(
                "You have sent several questions to a librarian already. Please try again later "
                "or contact the library directly."
            )
        if not offers.take(answer.handoff_token):
            raise HandoffRefused("This question was already sent to a librarian.")
        return self.create(answer, contact)

    def open_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM handoffs WHERE status = 'open'").fetchone()[0]

    def create(self, answer: Answer, contact: str = "") -> Handoff:
        draft = checked_draft(answer) or "(refdesk found nothing it could check)"
        sources = [
            {
                k: getattr(s, k)
                for k in ("n", "chunk_id", "source_type", "record_id", "title", "locator", "link", "date")
            }
            for s in answer.sources
        ]
        with self.db:
            cur = self.db.execute(
                "INSERT INTO handoffs(created_at, question, draft, sources, contact) VALUES (?, ?, ?, ?, ?)",
                (time.time(), answer.question, draft, json.dumps(sources), contact.strip()),
            )
        return self.get(_row_id(cur))

    def _row(self, row) -> Handoff:
        return Handoff(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])

    def get(self, handoff_id: int) -> Handoff:
        row = self.db.execute(
            "SELECT id, created_at, question, draft, sources, contact, status, closed_at, note "
            "FROM handoffs WHERE id = ?",
            (handoff_id,),
        ).fetchone()
        if row is None:
            raise HandoffError(f"no hand-off #{handoff_id}")  # never the server's data path
        return self._row(row)

    def list(self, status: str | None = "open") -> list[Handoff]:
        query = "SELECT id, created_at, question, draft, sources, contact, status, closed_at, note FROM handoffs"
        rows = (
            self.db.execute(query + " WHERE status = ? ORDER BY id", (status,))
            if status
            else self.db.execute(query + " ORDER BY id")
        )
        return [self._row(r) for r in rows]

    def close(self, handoff_id: int, note: str = "") -> Handoff:
        self.get(handoff_id)
        with self.db:
            self.db.execute(
                "UPDATE handoffs SET status = 'closed', closed_at = ?, note = ? WHERE id = ?",
                (time.time(), note, handoff_id),
            )
        return self.get(handoff_id)


def _row_id(cursor) -> int:
    if cursor.lastrowid is None:  # sqlite sets it on every INSERT; None would be a bug here
        raise RuntimeError("INSERT returned no row id")
    return int(cursor.lastrowid)

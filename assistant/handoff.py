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

from assistant.types import Answer

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


class HandoffError(Exception):
    pass


class HandoffQueue:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)

    def create(self, answer: Answer, contact: str = "") -> Handoff:
        draft = " ".join(s.text for s in answer.sentences) or answer.answer
        sources = [
            {k: getattr(s, k) for k in ("n", "chunk_id", "source_type", "record_id", "title", "locator", "link", "date")}
            for s in answer.sources
        ]
        with self.db:
            cur = self.db.execute(
                "INSERT INTO handoffs(created_at, question, draft, sources, contact) VALUES (?, ?, ?, ?, ?)",
                (time.time(), answer.question, draft, json.dumps(sources), contact.strip()),
            )
        return self.get(cur.lastrowid)

    def _row(self, row) -> Handoff:
        return Handoff(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])

    def get(self, handoff_id: int) -> Handoff:
        row = self.db.execute("SELECT id, created_at, question, draft, sources, contact, status, closed_at, note "
                              "FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        if row is None:
            raise HandoffError(f"no hand-off #{handoff_id} in {self.path}")
        return self._row(row)

    def list(self, status: str | None = "open") -> list[Handoff]:
        query = "SELECT id, created_at, question, draft, sources, contact, status, closed_at, note FROM handoffs"
        rows = (self.db.execute(query + " WHERE status = ? ORDER BY id", (status,)) if status
                else self.db.execute(query + " ORDER BY id"))
        return [self._row(r) for r in rows]

    def close(self, handoff_id: int, note: str = "") -> Handoff:
        self.get(handoff_id)
        with self.db:
            self.db.execute("UPDATE handoffs SET status = 'closed', closed_at = ?, note = ? WHERE id = ?",
                            (time.time(), note, handoff_id))
        return self.get(handoff_id)

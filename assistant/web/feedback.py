"""Librarians' feedback on answers (up/down + comment), kept in SQLite in the data dir."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at REAL NOT NULL,
  question TEXT NOT NULL,
  answer TEXT NOT NULL,
  cited TEXT NOT NULL,
  rating INTEGER NOT NULL,  -- +1 up, -1 down
  comment TEXT NOT NULL DEFAULT ''
);
"""


class FeedbackStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def add(self, question: str, answer: str, cited: list[str], rating: int, comment: str = "") -> int:
        if rating not in (1, -1):
            raise ValueError("rating is +1 or -1")
        with self.lock, self.db:
            cur = self.db.execute(
                "INSERT INTO feedback (created_at, question, answer, cited, rating, comment) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), question, answer, json.dumps(cited), rating, comment.strip()[:2000]),
            )
        return _row_id(cur)

    def list(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, created_at, question, answer, cited, rating, comment FROM feedback ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "created_at": r[1],
                "question": r[2],
                "answer": r[3],
                "cited": json.loads(r[4]),
                "rating": r[5],
                "comment": r[6],
            }
            for r in rows
        ]


def _row_id(cursor) -> int:
    if cursor.lastrowid is None:  # sqlite sets it on every INSERT; None would be a bug here
        raise RuntimeError("INSERT returned no row id")
    return int(cursor.lastrowid)

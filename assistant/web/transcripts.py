"""Widget transcripts: kept only when privacy.keep_transcripts is on, deleted after the retention period.

What a row holds: a random per-browser-session id (not derived from the patron), the time, the
question and refdesk's answer. Never an IP address, a user agent or a cookie.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcripts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session TEXT NOT NULL,
  created_at REAL NOT NULL,
  question TEXT NOT NULL,
  answer TEXT NOT NULL
);
"""


class TranscriptStore:
    def __init__(self, path: Path, retention_days: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.retention_s = retention_days * 86400
        self.lock = threading.Lock()

    def add(self, session: str, question: str, answer: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.lock, self.db:
            self.db.execute("DELETE FROM transcripts WHERE created_at < ?", (now - self.retention_s,))
            self.db.execute(
                "INSERT INTO transcripts (session, created_at, question, answer) VALUES (?, ?, ?, ?)",
                (session, now, question, answer),
            )

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0])

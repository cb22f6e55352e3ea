"""What was ingested from which file: for incremental re-ingest and deletion sync (SQLite)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Container, Sized
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER, format TEXT,
  embedder TEXT, records INTEGER, chunks INTEGER, ingested_at REAL,
  withdrawn INTEGER NOT NULL DEFAULT 0  -- chunks of records gone from the file, kept until --sync
);
CREATE TABLE IF NOT EXISTS chunks (chunk_id TEXT PRIMARY KEY, path TEXT NOT NULL, record_id TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, finished_at REAL, summary TEXT);
-- archived payloads: which file's record holds each (ingest.payloads), and which files point to another's
CREATE TABLE IF NOT EXISTS payloads (key TEXT PRIMARY KEY, path TEXT NOT NULL, record_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payloads_path ON payloads(path);
CREATE TABLE IF NOT EXISTS payload_refs (path TEXT NOT NULL, holder TEXT NOT NULL, PRIMARY KEY (path, holder));
CREATE INDEX IF NOT EXISTS payload_refs_holder ON payload_refs(holder);
"""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FileEntry:
    path: str
    sha256: str
    embedder: str
    records: int
    chunks: int
    withdrawn: int = 0


class ListedChunks(Container[str], Sized):
    """The chunk ids the manifest lists, as `in` and `len`: a set of them all holds about 115 MB per million
    chunks; a lookup by the primary key costs about 9 µs (both measured). Valid while the manifest is open."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __contains__(self, chunk_id: object) -> bool:
        return self.db.execute("SELECT 1 FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])


class Manifest:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread off: ingest uses it from its bookkeeping thread (one thread at a time).
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def entry(self, path: str) -> FileEntry | None:
        row = self.db.execute(
            "SELECT path, sha256, embedder, records, chunks, withdrawn FROM files WHERE path = ?", (path,)
        ).fetchone()
        return FileEntry(*row) if row else None

    def chunk_ids(self, path: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE path = ?", (path,))}

    def chunk_records(self, path: str) -> dict[str, str]:
        """chunk id -> record id, for one file."""
        return dict(self.db.execute("SELECT chunk_id, record_id FROM chunks WHERE path = ?", (path,)).fetchall())

    def listed_chunks(self) -> ListedChunks:
        """Every chunk id of every file, what the store should hold, asked of the database one id at a time."""
        return ListedChunks(self.db)

    def file_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM files").fetchone()[0])

    def paths_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        rows = self.db.execute("SELECT path FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))
        return [r[0] for r in rows]

    def record_file(
        self,
        path: str,
        sha256: str,
        size: int,
        fmt: str,
        embedder: str,
        records: int,
        chunks: dict[str, str],
        replace: bool,
        withdrawn: int = 0,
        payloads: dict[str, str] | None = None,
        holders: set[str] | None = None,
    ) -> None:
        """chunks: chunk id -> record id now stored for the file. replace=False keeps the ones listed
        before as well (a partly unreadable file loses nothing). payloads: payload key -> record id held
        by this file; holders: other files holding content this file's records point to."""
        with self.db:
            if replace:
                self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
                self.db.execute("DELETE FROM payloads WHERE path = ?", (path,))
                self.db.execute("DELETE FROM payload_refs WHERE path = ?", (path,))
            self.db.executemany(
                "INSERT OR REPLACE INTO chunks(chunk_id, path, record_id) VALUES (?, ?, ?)",
                ((c, path, r) for c, r in chunks.items()),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO payloads(key, path, record_id) VALUES (?, ?, ?)",
                ((k, path, r) for k, r in (payloads or {}).items()),
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO payload_refs(path, holder) VALUES (?, ?)",
                ((path, h) for h in sorted(holders or ())),
            )
            total = self.db.execute("SELECT count(*) FROM chunks WHERE path = ?", (path,)).fetchone()[0]
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (path, sha256, size, fmt, embedder, records, total, time.time(), withdrawn),
            )

    def forget_file(self, path: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
            self.db.execute("DELETE FROM files WHERE path = ?", (path,))
            self.db.execute("DELETE FROM payloads WHERE path = ?", (path,))
            self.db.execute("DELETE FROM payload_refs WHERE path = ?", (path,))

    def payload_holders(self, exclude: set[str]) -> dict:
        """payload key -> Holder(path, record_id), leaving out the files about to be read again."""
        from ingest.payloads import Holder

        return {
            k: Holder(p, r)
            for k, p, r in self.db.execute("SELECT key, path, record_id FROM payloads")
            if p not in exclude
        }

    def dependents(self, paths: set[str]) -> set[str]:
        """Files whose records point to content held by any of paths, and the files pointing to those."""
        found: set[str] = set()
        frontier = set(paths)
        while frontier:
            batch, rows = sorted(frontier), set()
            for start in range(0, len(batch), 500):  # SQLite's limit on bound variables
                part = batch[start : start + 500]
                rows |= {
                    r[0]
                    for r in self.db.execute(
                        f"SELECT DISTINCT path FROM payload_refs WHERE holder IN ({','.join('?' * len(part))})", part
                    )
                }
            frontier = rows - found - set(paths)
            found |= frontier
        return found

    def add_run(self, summary: dict) -> None:
        with self.db:
            self.db.execute("INSERT INTO runs(finished_at, summary) VALUES (?, ?)", (time.time(), json.dumps(summary)))

    def last_runs(self, n: int = 5) -> list[dict]:
        rows = self.db.execute("SELECT finished_at, summary FROM runs ORDER BY id DESC LIMIT ?", (n,))
        return [{"finished_at": r[0], **json.loads(r[1])} for r in rows]

"""One ingest per data dir at a time. Content ids keep two concurrent runs consistent, but both would
embed everything: the second is told who holds the lock instead."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from assistant.core.errors import RefdeskError


class IngestLocked(RefdeskError):
    def __init__(self, path: Path, pid: str):
        self.path, self.pid = path, pid
        super().__init__(
            f"another ingest is running on this data dir (pid {pid or 'unknown'}); "
            f"wait for it to finish (lock: {path.name})"
        )


class IngestLock:
    """An exclusive flock on DATA_DIR/ingest.lock. The kernel drops it when the process dies (kill -9
    included), so a crashed run never leaves a stale lock behind."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> IngestLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise IngestLocked(self.path, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

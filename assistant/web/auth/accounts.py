"""Librarian accounts (argon2id password hashes), API keys (stored as SHA-256 of a random secret) and
the audit log of librarian actions, in DATA_DIR/users.sqlite. The audit log never holds patron content."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from assistant.core.errors import RefdeskError

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  created_at REAL NOT NULL,
  revoked_at REAL,
  last_used_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
"""
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")
MIN_PASSWORD = 10
KEY_PREFIX = "rdk_"


class AccountError(RefdeskError, ValueError):
    pass


@dataclass
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class Accounts:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.hasher = PasswordHasher()  # argon2id, the library's current defaults
        self.lock = threading.Lock()
        # Verifying against this keeps a sign-in for an unknown name as slow as one for a known name.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    # -------------------------------------------------------------- users
    def add_user(self, username: str, password: str, actor: str = "cli") -> None:
        if not USERNAME.match(username):
            raise AccountError("user names are 2-64 letters, digits, . _ @ -")
        self._check_password(password)
        with self.lock, self.db:
            try:
                self.db.execute(
                    "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                    (username, self.hasher.hash(password), time.time()),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"user {username!r} exists (refdesk user passwd to change the password)") from None
        self.audit(actor, "user added", username)

    def remove_user(self, username: str, actor: str = "cli") -> None:
        with self.lock, self.db:
            if self.db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                raise AccountError(f"no user {username!r}")
        self.audit(actor, "user removed", username)

    def set_password(self, username: str, password: str, actor: str = "cli") -> None:
        self._check_password(password)
        with self.lock, self.db:
            if (
                self.db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?", (self.hasher.hash(password), username)
                ).rowcount
                == 0
            ):
                raise AccountError(f"no user {username!r}")
        self.audit(actor, "password changed", username)

    def users(self) -> list[dict]:
        return [
            {"username": u, "created_at": c}
            for u, c in self.db.execute("SELECT username, created_at FROM users ORDER BY username")
        ]

    def has_users(self) -> bool:
        return self.db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def verify(self, username: str, password: str) -> bool:
        row = self.db.execute("SELECT password_hash FROM users WHERE username = ?", (username,)).fetchone()
        try:
            self.hasher.verify(row[0] if row else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        if row and self.hasher.check_needs_rehash(row[0]):
            with self.lock, self.db:
                self.db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?", (self.hasher.hash(password), username)
                )
        return row is not None

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"passwords need at least {MIN_PASSWORD} characters")

    # -------------------------------------------------------------- API keys
    def create_key(self, name: str, actor: str = "cli") -> tuple[ApiKey, str]:
        """The new key and its secret; the secret is shown once and stored only as a hash."""
        if not name.strip():
            raise AccountError("an API key needs a --name (who or what uses it)")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.lock, self.db:
            cur = self.db.execute(
                "INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (name.strip(), secret[:10], _sha256(secret), time.time()),
            )
        self.audit(actor, "API key created", f"#{cur.lastrowid} {name.strip()}")
        return self.key(_row_id(cur)), secret

    def key(self, key_id: int) -> ApiKey:
        row = self.db.execute(
            "SELECT id, name, prefix, created_at, revoked_at, last_used_at FROM api_keys WHERE id = ?", (key_id,)
        ).fetchone()
        if row is None:
            raise AccountError(f"no API key #{key_id}")
        return ApiKey(*row)

    def keys(self) -> list[ApiKey]:
        return [
            ApiKey(*r)
            for r in self.db.execute(
                "SELECT id, name, prefix, created_at, revoked_at, last_used_at FROM api_keys ORDER BY id"
            )
        ]

    def revoke_key(self, key_id: int, actor: str = "cli") -> None:
        with self.lock, self.db:
            if (
                self.db.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
                ).rowcount
                == 0
            ):
                raise AccountError(f"no active API key #{key_id}")
        self.audit(actor, "API key revoked", f"#{key_id}")

    def check_key(self, secret: str) -> ApiKey | None:
        if not secret.startswith(KEY_PREFIX):
            return None
        row = self.db.execute(
            "SELECT id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (_sha256(secret),)
        ).fetchone()
        if row is None:
            return None
        with self.lock, self.db:
            self.db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), row[0]))
        return self.key(row[0])

    # -------------------------------------------------------------- audit
    def audit(self, actor: str, action: str, detail: str = "") -> None:
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (time.time(), actor, action, detail),
            )

    def audit_log(self, limit: int = 200) -> list[dict]:
        return [
            {"at": a, "actor": u, "action": act, "detail": d}
            for a, u, act, d in self.db.execute(
                "SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]


def _sha256(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()


def _row_id(cursor) -> int:
    if cursor.lastrowid is None:  # sqlite sets it on every INSERT; None would be a bug here
        raise RuntimeError("INSERT returned no row id")
    return int(cursor.lastrowid)

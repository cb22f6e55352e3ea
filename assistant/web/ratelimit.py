"""Limits on what anonymous patrons can make refdesk do, held in memory only (nothing about a patron is
written to disk): sliding-window rate limits, the bound on answers made at once, and the server-issued
widget session that per-session limits are keyed by (a client-chosen Gradio session_hash is not)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager

from assistant.core.errors import RefdeskError


class RateLimiter:
    """At most `limit` events per key in any `window_s`. Memory stays bounded: at most `max_keys` keys
    are tracked; the least recently used one is forgotten first (a forgotten key starts afresh, which
    only ever errs towards letting one more request through for a key idle the longest)."""

    def __init__(self, limit: int, window_s: float = 60.0, clock=time.monotonic, max_keys: int = 50_000):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self.hits: OrderedDict[str, deque[float]] = OrderedDict()
        self.lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self.hits.get(key)
        if hits is None:
            hits = self.hits[key] = deque()
            while len(self.hits) > self.max_keys:
                self.hits.popitem(last=False)
        else:
            self.hits.move_to_end(key)
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        return hits

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            hits = self._window(key, now)
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may try again (0 if it may now)."""
        now = self.clock()
        with self.lock:
            hits = self._window(key, now)
            if len(hits) < self.limit:
                return 0
            return max(1, math.ceil(self.window_s - (now - hits[0])))


class Busy(RefdeskError):
    """Past capacity: every answer slot is taken and the waiting line is full (or the wait ran out)."""

    def __init__(self, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"busy: try again in {retry_after_s} s")


class AnswerGate:
    """Bounds the answers made at once (`concurrency`) and the questions waiting for a slot
    (`max_waiting`, each for at most `max_wait_s`). Past that, Busy at once, with an estimate of when a
    slot frees up, instead of a request that hangs until some proxy times it out."""

    def __init__(self, concurrency: int, max_waiting: int, max_wait_s: float, clock=time.monotonic):
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.slots = threading.BoundedSemaphore(concurrency)
        self.lock = threading.Lock()
        self.waiting = 0
        self.active = 0
        self.recent_s: deque[float] = deque(maxlen=20)  # how long the last answers took

    def retry_after_s(self) -> int:
        typical = sorted(self.recent_s)[len(self.recent_s) // 2] if self.recent_s else 5.0
        rounds = (self.waiting + self.active) / self.concurrency
        return max(1, math.ceil(typical * max(1.0, rounds)))

    @contextmanager
    def slot(self):
        if not self.slots.acquire(blocking=False):
            with self.lock:
                if self.waiting >= self.max_waiting:
                    raise Busy(self.retry_after_s())
                self.waiting += 1
            try:
                got = self.slots.acquire(timeout=self.max_wait_s)
            finally:
                with self.lock:
                    self.waiting -= 1
            if not got:
                raise Busy(self.retry_after_s())
        with self.lock:
            self.active += 1
        started = self.clock()
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                self.recent_s.append(self.clock() - started)
            self.slots.release()


class WidgetSessions:
    """Widget sessions the server issues: a random id signed with a per-process key, sent as an HttpOnly
    cookie. A client cannot make one up, so a limit keyed by it cannot be walked around by changing the
    Gradio session_hash; getting many cookies is itself limited per address."""

    COOKIE = "refdesk_widget"

    def __init__(self, key: bytes | None = None):
        self.key = key or secrets.token_bytes(32)

    def _sign(self, sid: str) -> str:
        return hmac.new(self.key, sid.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        sid = secrets.token_urlsafe(18)
        return f"{sid}.{self._sign(sid)}"

    def verify(self, value: str | None) -> str | None:
        """The session id inside a cookie value this server issued, else None."""
        if not value or value.count(".") != 1 or len(value) > 100:
            return None
        sid, signature = value.split(".")
        return sid if hmac.compare_digest(signature, self._sign(sid)) else None


class HandoffOffers:
    """Hand-offs refdesk offered and not yet taken: one token per answer that offered one, usable once.
    A press of "Ask a librarian" without an offer, or a second press for the same answer, finds none."""

    def __init__(self, ttl_s: float = 3600.0, max_offers: int = 50_000, clock=time.monotonic):
        self.ttl_s, self.max_offers, self.clock = ttl_s, max_offers, clock
        self.offers: OrderedDict[str, float] = OrderedDict()
        self.lock = threading.Lock()

    def offer(self) -> str:
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.offers[token] = self.clock() + self.ttl_s
            while len(self.offers) > self.max_offers:
                self.offers.popitem(last=False)
        return token

    def take(self, token: str | None) -> bool:
        if not token:
            return False
        with self.lock:
            expires = self.offers.pop(token, None)
        return expires is not None and expires > self.clock()


class PatronLimits:
    """Everything that bounds the anonymous side, built once from the widget settings and shared by the
    guard (every request), the widget's functions and the API."""

    def __init__(self, widget, clock=time.monotonic):
        self.sessions = WidgetSessions()
        self.questions = RateLimiter(widget.rate_limit_per_minute, 60.0, clock)
        self.calls_per_address = RateLimiter(widget.rate_limit_per_address_per_minute, 60.0, clock)
        self.new_sessions = RateLimiter(widget.new_sessions_per_address_per_minute, 60.0, clock)
        self.handoffs_per_session = RateLimiter(widget.handoffs_per_session_per_hour, 3600.0, clock)
        self.handoffs_per_address = RateLimiter(widget.handoffs_per_address_per_hour, 3600.0, clock)
        self.answers = AnswerGate(widget.concurrency, widget.max_waiting, widget.max_wait_s, clock)
        self.offers = HandoffOffers(clock=clock)

    def session_key(self, cookie_value: str | None, address: str) -> str:
        """The server-issued session; a client without one (cookies refused) is keyed by its address,
        so dropping the cookie never buys more questions."""
        sid = self.sessions.verify(cookie_value)
        return f"session:{sid}" if sid else f"address:{address}"

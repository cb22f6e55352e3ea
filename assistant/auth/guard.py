"""The HTTP guard in front of every route (pure ASGI, so streamed Gradio responses pass untouched).

Zones, by path:
- public: /healthz, /login, /logout, /embed.js, /record (stored records; the widget links to them)
- widget: /widget… — no login; framed only by the configured origins; request size and per-address
  rate limits (held in memory; addresses are never written anywhere)
- api: /v1/… — a bearer API key
- console: everything else (the Gradio console and all its endpoints) — a signed-in librarian; state-
  changing requests must come from refdesk's own origin (Origin/Referer check) besides the SameSite cookie
"""
from __future__ import annotations

import html
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import quote, urlparse

from fastapi import Request  # module level: FastAPI resolves the login handlers' annotations from here

from assistant.ratelimit import RateLimiter

SESSION_COOKIE = "refdesk_session"
LOGIN_CSRF_COOKIE = "refdesk_login_csrf"
PUBLIC = ("/healthz", "/login", "/logout", "/embed.js", "/record")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def zone(path: str) -> str:
    if path in PUBLIC:
        return "public"
    if path == "/widget" or path.startswith("/widget/"):
        return "widget"
    if path.startswith("/v1/") or path == "/v1":
        return "api"
    return "console"


@dataclass
class Session:
    username: str
    expires: float


class Backoff:
    """Failed sign-ins by user name and by address (memory only): after max_failures, each further try
    waits twice as long as the last, up to max_backoff_s."""

    def __init__(self, max_failures: int, max_backoff_s: float, clock=time.monotonic):
        self.max_failures, self.max_backoff_s, self.clock = max_failures, max_backoff_s, clock
        self.state: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()

    def wait_s(self, keys: list[str]) -> float:
        now = self.clock()
        return max((until - now for k in keys if (until := self.state.get(k, (0, 0.0))[1]) > now), default=0.0)

    def failed(self, keys: list[str]) -> None:
        now = self.clock()
        with self.lock:
            for k in keys:
                count = self.state.get(k, (0, 0.0))[0] + 1
                delay = min(self.max_backoff_s, 2.0 ** (count - self.max_failures)) if count >= self.max_failures else 0.0
                self.state[k] = (count, now + delay)

    def succeeded(self, keys: list[str]) -> None:
        with self.lock:
            for k in keys:
                self.state.pop(k, None)


class Auth:
    """Sessions, API keys and the decisions the guard and the login pages need."""

    def __init__(self, settings, accounts):
        self.settings = settings
        self.cfg = settings.auth
        self.accounts = accounts
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self.backoff = Backoff(self.cfg.max_failures, self.cfg.max_backoff_s)
        self.address_limiter = RateLimiter(settings.widget.rate_limit_per_address_per_minute)

    # ---------------------------------------------------------------- who is asking
    def client_address(self, scope) -> str:
        client = scope.get("client") or ("", 0)
        return client[0] or ""

    def is_loopback(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            return False

    def librarian(self, headers: dict[str, str], cookies: dict[str, str], address: str) -> str | None:
        if self.cfg.trusted_header and address in self.cfg.trusted_proxies:
            # REMOTE_USER (the CGI name) travels as the header Remote-User.
            name = headers.get(self.cfg.trusted_header.lower().replace("_", "-"), "").strip()
            if name:
                return name
        sid = cookies.get(SESSION_COOKIE, "")
        if sid:
            with self.lock:
                session = self.sessions.get(sid)
                if session and session.expires > time.time():
                    return session.username
                self.sessions.pop(sid, None)
        if not self.accounts.has_users() and self.is_loopback(address):
            return "local"  # no accounts yet: the console answers on this machine only
        return None

    def actor(self, request) -> str:
        """The librarian behind a Gradio event (gr.Request), for the audit log."""
        headers = {k.lower(): v for k, v in dict(getattr(request, "headers", {}) or {}).items()}
        cookies = dict(getattr(request, "cookies", {}) or {})
        client = getattr(request, "client", None)
        return self.librarian(headers, cookies, getattr(client, "host", "") or "") or "unknown"

    # ---------------------------------------------------------------- sessions
    def sign_in(self, username: str, password: str, address: str) -> tuple[str | None, float]:
        """(session id or None, seconds to wait before the next try)."""
        keys = [f"user:{username.lower()}", f"addr:{address}"]
        wait = self.backoff.wait_s(keys)
        if wait > 0:
            return None, wait
        if self.accounts.verify(username, password):
            self.backoff.succeeded(keys)
            sid = secrets.token_urlsafe(32)
            with self.lock:
                self.sessions[sid] = Session(username, time.time() + self.cfg.session_hours * 3600)
            self.accounts.audit(username, "signed in")
            return sid, 0.0
        self.backoff.failed(keys)
        self.accounts.audit(username if len(username) <= 64 else username[:64], "sign-in failed")
        return None, self.backoff.wait_s(keys)

    def sign_out(self, sid: str) -> None:
        with self.lock:
            session = self.sessions.pop(sid, None)
        if session:
            self.accounts.audit(session.username, "signed out")

    def secure_cookie(self, scope, headers: dict[str, str]) -> bool:
        if self.cfg.cookie_secure != "auto":
            return self.cfg.cookie_secure == "always"
        forwarded = headers.get("x-forwarded-proto", "") if self.client_address(scope) in self.cfg.trusted_proxies else ""
        return scope.get("scheme") == "https" or forwarded == "https"

    def same_origin(self, headers: dict[str, str], scope) -> bool:
        origin = headers.get("origin") or ""
        if not origin or origin == "null":
            referer = headers.get("referer", "")
            origin = f"{urlparse(referer).scheme}://{urlparse(referer).netloc}" if referer else ""
        if not origin:
            return False
        if self.cfg.public_origin:
            return origin.rstrip("/") == self.cfg.public_origin.rstrip("/")
        return urlparse(origin).netloc == headers.get("host", "")


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:
        return {}
    return {k: m.value for k, m in jar.items()}


class AccessGuard:
    def __init__(self, app, auth: Auth):
        self.app = app
        self.auth = auth
        widget = auth.settings.widget
        ancestors = " ".join(["'self'", *widget.allowed_origins])
        self.widget_csp = f"frame-ancestors {ancestors}"
        self.allowed_origins = set(widget.allowed_origins)
        self.max_bytes = widget.max_request_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        headers = _headers(scope)
        where = zone(path)
        address = self.auth.client_address(scope)
        extra: list[tuple[bytes, bytes]] = [(b"x-content-type-options", b"nosniff"),
                                            (b"referrer-policy", b"same-origin")]

        if where in ("widget", "api", "public"):
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_bytes:
                return await _json(send, 413, "request too large")
        if where == "widget":
            extra.append((b"content-security-policy", self.widget_csp.encode()))
            if method == "POST" and path.endswith("/queue/join") and not self.auth.address_limiter.allow(address):
                return await _json(send, 429, "too many questions from this address; please wait a minute")
        elif where == "api":
            token = headers.get("authorization", "")
            key = self.auth.accounts.check_key(token[7:].strip()) if token.lower().startswith("bearer ") else None
            if key is None:
                return await _json(send, 401, "a valid API key is required (Authorization: Bearer rdk_…)",
                                   extra=[(b"www-authenticate", b"Bearer")])
        elif where == "public":
            if path == "/embed.js" and headers.get("origin") in self.allowed_origins:
                extra.append((b"access-control-allow-origin", headers["origin"].encode()))
                extra.append((b"vary", b"Origin"))
            if path in ("/login", "/logout"):
                extra += [(b"content-security-policy", b"frame-ancestors 'none'"), (b"x-frame-options", b"DENY")]
        else:  # console
            extra += [(b"content-security-policy", b"frame-ancestors 'none'"), (b"x-frame-options", b"DENY")]
            user = self.auth.librarian(headers, _cookies(headers), address)
            if user is None:
                if not self.auth.accounts.has_users():
                    return await _json(send, 403, "no librarian accounts yet: the console answers on this machine "
                                                  "only; add one with `refdesk user add NAME`")
                if method == "GET" and "text/html" in headers.get("accept", ""):
                    return await _redirect(send, "/login?next=" + quote(path))
                return await _json(send, 401, "sign in first (/login)")
            if method not in SAFE_METHODS and not self.auth.same_origin(headers, scope):
                return await _json(send, 403, "cross-site request refused (no matching Origin or Referer)")
            if scope["type"] == "http":
                scope.setdefault("state", {})["librarian"] = user

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
            await send(message)

        return await self.app(scope, receive, send_with_headers)


async def _json(send, status: int, message: str, extra: list | None = None):
    body = json.dumps({"error": {"message": message, "code": status}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str):
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def login_page(csrf: str, next_path: str, message: str = "", library: str = "refdesk") -> str:
    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    note = f'<p role="alert" class="error">{e(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in — {e(library)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.3rem 0}}input{{padding:.4rem}}button{{padding:.5rem}}
.error{{color:#a40000}}</style></head><body><h1>{e(library)} — librarians</h1>{note}
<form method="post" action="/login"><input type="hidden" name="csrf" value="{e(csrf)}">
<input type="hidden" name="next" value="{e(next_path)}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button></form></body></html>"""


def install_login_routes(app, auth: Auth) -> None:
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

    library = auth.settings.serve.library_name

    def safe_next(value: str) -> str:
        # Only a path on this site: never an open redirect to another host.
        return value if value.startswith("/") and not value.startswith("//") else "/"

    async def login_form(request: Request):
        csrf = secrets.token_urlsafe(24)
        response = HTMLResponse(login_page(csrf, safe_next(request.query_params.get("next", "/")), library=library))
        response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/login",
                            secure=auth.secure_cookie(request.scope, dict(request.headers)))
        return response

    async def login(request: Request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        form = await request.form()
        csrf = str(form.get("csrf", ""))
        if not csrf or csrf != request.cookies.get(LOGIN_CSRF_COOKIE) or not auth.same_origin(headers, request.scope):
            return JSONResponse({"error": {"message": "sign-in form expired or cross-site; reload /login", "code": 403}},
                                status_code=403)
        username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))[:1000]
        sid, wait = auth.sign_in(username, password, auth.client_address(request.scope))
        next_path = safe_next(str(form.get("next", "/")))
        if sid is None:
            new_csrf = secrets.token_urlsafe(24)
            message = (f"Too many failed sign-ins: wait {int(wait) + 1} s and try again." if wait > 0
                       else "Wrong user name or password.")
            response = HTMLResponse(login_page(new_csrf, next_path, message, library), status_code=429 if wait > 0 else 401)
            if wait > 0:
                response.headers["Retry-After"] = str(int(wait) + 1)
            response.set_cookie(LOGIN_CSRF_COOKIE, new_csrf, httponly=True, samesite="strict", path="/login",
                                secure=auth.secure_cookie(request.scope, headers))
            return response
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", path="/",
                            max_age=int(auth.cfg.session_hours * 3600), secure=auth.secure_cookie(request.scope, headers))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def logout(request: Request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not auth.same_origin(headers, request.scope):
            return JSONResponse({"error": {"message": "cross-site request refused", "code": 403}}, status_code=403)
        auth.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    app.add_api_route("/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route("/logout", logout, methods=["POST"], include_in_schema=False)

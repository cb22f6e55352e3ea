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

import ipaddress
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote, urlparse

from fastapi import Request  # module level: FastAPI resolves the login handlers' annotations from here
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from assistant.core.errors import RefdeskError

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
            if len(self.state) > 50_000:  # made-up names must not grow memory without bound
                for key in [k for k, (_n, until) in self.state.items() if until <= now][:25_000]:
                    del self.state[key]
            for k in keys:
                count = self.state.get(k, (0, 0.0))[0] + 1
                delay = (
                    min(self.max_backoff_s, 2.0 ** (count - self.max_failures)) if count >= self.max_failures else 0.0
                )
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
        # One key for the user name and the address together: five made-up names from one address behind a
        # shared proxy must not lock every librarian out, and guessing one account's password from one
        # address still backs off.
        keys = [f"{username.lower()}\x1f{address}"]
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

    def secure_origin(self, scope, headers: dict[str, str]) -> bool:
        """Did the browser reach refdesk over https (directly, or through a trusted proxy)?"""
        forwarded = (
            headers.get("x-forwarded-proto", "") if self.client_address(scope) in self.cfg.trusted_proxies else ""
        )
        return scope.get("scheme") in ("https", "wss") or forwarded == "https"

    def secure_cookie(self, scope, headers: dict[str, str]) -> bool:
        if self.cfg.cookie_secure != "auto":
            return self.cfg.cookie_secure == "always"
        return self.secure_origin(scope, headers)

    def same_origin(self, headers: dict[str, str], scope) -> bool:
        origin = headers.get("origin") or ""
        if not origin or origin == "null":
            referer = headers.get("referer", "")
            origin = f"{urlparse(referer).scheme}://{urlparse(referer).netloc}" if referer else ""
        if not origin:
            return False
        if self.cfg.public_origin:
            return origin.rstrip("/") == self.cfg.public_origin.rstrip("/")
        # Scheme and host both: http://refdesk.example is another origin than https://refdesk.example.
        expected_scheme = "https" if self.secure_origin(scope, headers) else "http"
        parsed = urlparse(origin)
        return parsed.scheme == expected_scheme and parsed.netloc == headers.get("host", "")


def _headers(scope) -> dict[str, str]:
    return dict(Headers(scope=scope).items())


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {k: m.value for k, m in jar.items()}


@dataclass(frozen=True)
class WidgetEndpoints:
    """The widget's functions, the only things a POST to /widget may start: Gradio's fn_index numbers
    (queue/join) and API names (call/…). Anything else is a 404, never a 500 from inside Gradio."""

    fn_indices: frozenset[int]
    api_names: frozenset[str]

    @classmethod
    def of(cls, blocks) -> WidgetEndpoints:
        fns = list(blocks.fns.values())
        return cls(
            frozenset(fn._id for fn in fns),
            frozenset(str(fn.api_name) for fn in fns if isinstance(fn.api_name, str) and fn.api_name),
        )


GRADIO_CALL = re.compile(r"^/gradio_api/(?:call|run|api)/([^/]+)/?$")


class BodyTooLarge(RefdeskError):
    pass


async def read_body(receive, limit: int) -> bytes:
    """The whole request body, counted as it arrives (a chunked body declares no length): BodyTooLarge
    as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive):
    """A receive() that hands the app the body already read, then listens for the disconnect."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class AccessGuard:
    def __init__(self, app, auth: Auth, limits, widget_endpoints: WidgetEndpoints | None = None):
        """limits: the services' assistant.web.ratelimit.PatronLimits, shared with the widget's functions (the
        session cookie issued here is verified there with the same key)."""
        self.app = app
        self.auth = auth
        self.limits = limits
        self.widget_endpoints = widget_endpoints
        widget = auth.settings.widget
        self.widget_csp = "frame-ancestors " + " ".join(["'self'", *widget.allowed_origins])
        self.allowed_origins = set(widget.allowed_origins)
        self.max_bytes = widget.max_request_bytes
        self.console_max_bytes = widget.console_max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        headers = _headers(scope)
        where = zone(path)
        address = self.auth.client_address(scope)
        extra = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}
        set_cookie = ""

        if where == "widget":
            extra["content-security-policy"] = self.widget_csp
            refusal = self._widget_refusal(path[len("/widget") :], method, address)
            if refusal is not None:
                return await refusal(scope, receive, send)
            cookie = _cookies(headers).get(self.limits.sessions.COOKIE)
            if (
                method == "GET"
                and path == "/widget/"
                and self.limits.sessions.verify(cookie) is None
                and self.limits.new_sessions.allow(address)
            ):
                set_cookie = self._session_cookie(scope, headers)
        elif where == "api":
            token = headers.get("authorization", "")
            key = self.auth.accounts.check_key(token[7:].strip()) if token.lower().startswith("bearer ") else None
            if key is None:
                return await _json(
                    scope,
                    receive,
                    send,
                    401,
                    "a valid API key is required (Authorization: Bearer rdk_…)",
                    {"www-authenticate": "Bearer"},
                )
        elif where == "public":
            if path == "/embed.js" and headers.get("origin") in self.allowed_origins:
                extra["access-control-allow-origin"] = headers["origin"]
                extra["vary"] = "Origin"
            if path in ("/login", "/logout"):
                extra.update({"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"})
        else:  # console
            extra.update({"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"})
            user = self.auth.librarian(headers, _cookies(headers), address)
            if user is None:
                if not self.auth.accounts.has_users():
                    return await _json(
                        scope,
                        receive,
                        send,
                        403,
                        "no librarian accounts yet: the console answers on this machine only; "
                        "add one with `refdesk user add NAME`",
                    )
                if method == "GET" and "text/html" in headers.get("accept", ""):
                    return await RedirectResponse("/login?next=" + quote(path), status_code=303)(scope, receive, send)
                return await _json(scope, receive, send, 401, "sign in first (/login)")
            if method not in SAFE_METHODS and not self.auth.same_origin(headers, scope):
                return await _json(
                    scope, receive, send, 403, "cross-site request refused (no matching Origin or Referer)"
                )
            if scope["type"] == "http":
                scope.setdefault("state", {})["librarian"] = user

        if scope["type"] == "http":
            limit = self.console_max_bytes if where == "console" else self.max_bytes
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return await _json(scope, receive, send, 413, f"request too large (over {limit} bytes)")
            try:
                body = await read_body(receive, limit)
            except BodyTooLarge:
                return await _json(scope, receive, send, 413, f"request too large (over {limit} bytes)")
            if where == "widget" and method not in SAFE_METHODS:
                refusal = self._widget_call_refusal(path[len("/widget") :], body)
                if refusal is not None:
                    return await refusal(scope, receive, send)
            receive = replay(body, receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in response_headers:
                        response_headers[name] = value
                if set_cookie:
                    response_headers.append("set-cookie", set_cookie)
            await send(message)

        return await self.app(scope, receive, send_with_headers)

    def _widget_refusal(self, sub: str, method: str, address: str):
        """What the widget refuses before reading a byte of the body (None: go on)."""
        if "/upload" in sub or "/file=" in sub or "/file/" in sub:
            return _error(403, "the patron widget accepts and serves no files")
        if method in SAFE_METHODS:
            return None
        if not self.limits.calls_per_address.allow(address):
            wait = self.limits.calls_per_address.retry_after(address)
            return _error(
                429, f"too many requests from this address; try again in {wait} s", {"retry-after": str(wait)}
            )
        return None

    def _widget_call_refusal(self, sub: str, body: bytes):
        """A POST may only start one of the widget's own functions."""
        if self.widget_endpoints is None:
            return None
        if sub.rstrip("/") == "/gradio_api/queue/join":
            try:
                fn_index = json.loads(body or b"{}").get("fn_index")
            except (ValueError, AttributeError):
                return _error(400, "the body must be a JSON object")
            if not isinstance(fn_index, int) or fn_index not in self.widget_endpoints.fn_indices:
                return _error(404, f"no such widget function: {str(fn_index)[:40]}")
            return None
        match = GRADIO_CALL.match(sub)
        if match and match.group(1) in self.widget_endpoints.api_names:
            return None
        return _error(404, "no such widget endpoint")

    def _session_cookie(self, scope, headers: dict[str, str]) -> str:
        # The widget lives in other sites' frames: over https the cookie must be SameSite=None (and is
        # partitioned per embedding site); over plain http (a laptop demo) Lax works for the same site.
        value = self.limits.sessions.issue()
        attributes = f"{self.limits.sessions.COOKIE}={value}; Path=/widget; HttpOnly"
        if self.auth.secure_cookie(scope, headers):
            return attributes + "; Secure; SameSite=None; Partitioned"
        return attributes + "; SameSite=Lax"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "code": status}},
        status_code=status,
        headers={"x-content-type-options": "nosniff", **(headers or {})},
    )


async def _json(scope, receive, send, status: int, message: str, headers: dict[str, str] | None = None):
    await _error(status, message, headers)(scope, receive, send)


def login_page(csrf: str, next_path: str, message: str = "", library: str = "refdesk") -> str:
    from assistant.web.templates import render

    return render("login.html", csrf=csrf, next_path=next_path, message=message, library=library)


def install_login_routes(app, auth: Auth) -> None:
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

    library = auth.settings.serve.library_name

    def safe_next(value: str) -> str:
        # Only a path on this site: never an open redirect to another host.
        return value if value.startswith("/") and not value.startswith("//") else "/"

    async def login_form(request: Request):
        csrf = secrets.token_urlsafe(24)
        response: Response = HTMLResponse(
            login_page(csrf, safe_next(request.query_params.get("next", "/")), library=library)
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="strict",
            path="/login",
            secure=auth.secure_cookie(request.scope, dict(request.headers)),
        )
        return response

    async def login(request: Request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        form = await request.form()
        csrf = str(form.get("csrf", ""))
        if not csrf or csrf != request.cookies.get(LOGIN_CSRF_COOKIE) or not auth.same_origin(headers, request.scope):
            return JSONResponse(
                {"error": {"message": "sign-in form expired or cross-site; reload /login", "code": 403}},
                status_code=403,
            )
        username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))[:1000]
        sid, wait = auth.sign_in(username, password, auth.client_address(request.scope))
        next_path = safe_next(str(form.get("next", "/")))
        if sid is None:
            new_csrf = secrets.token_urlsafe(24)
            message = (
                f"Too many failed sign-ins: wait {int(wait) + 1} s and try again."
                if wait > 0
                else "Wrong user name or password."
            )
            response: Response = HTMLResponse(
                login_page(new_csrf, next_path, message, library), status_code=429 if wait > 0 else 401
            )
            if wait > 0:
                response.headers["Retry-After"] = str(int(wait) + 1)
            response.set_cookie(
                LOGIN_CSRF_COOKIE,
                new_csrf,
                httponly=True,
                samesite="strict",
                path="/login",
                secure=auth.secure_cookie(request.scope, headers),
            )
            return response
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            path="/",
            max_age=int(auth.cfg.session_hours * 3600),
            secure=auth.secure_cookie(request.scope, headers),
        )
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

"""Access control over real HTTP (FastAPI TestClient through the whole ASGI stack, Gradio included)."""

import json
import re
import sqlite3

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from assistant.cli import main
from assistant.services import Services
from assistant.web.app import build_app
from assistant.web.auth.guard import SESSION_COOKIE, Backoff, zone

PASSWORD = "correct horse battery"


@pytest.fixture
def services(fake_settings):
    from assistant.backends.llm import FakeChat

    fake_settings.widget.allowed_origins = ["https://www.library.example"]
    svc = Services(fake_settings, llm=FakeChat())
    svc.accounts.add_user("ana", PASSWORD)
    return svc


@pytest.fixture
def app(services):
    return build_app(services)


def client(app, **kw):
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False, **kw)


def all_paths(app):
    """Every route of the app, the mounted Gradio apps' routes included, with placeholders for parameters."""
    out = []

    def walk(routes, prefix):
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif hasattr(route, "path"):
                path = re.sub(r"\{[^}]+\}", "x", prefix + route.path) or "/"
                methods = sorted(getattr(route, "methods", None) or {"GET"})
                out.append((path, methods))

    walk(app.routes, "")
    return out


def test_every_console_route_refuses_anonymous_requests(app):
    c = client(app)
    paths = all_paths(app)
    console = [(p, m) for p, m in paths if zone(p) == "console"]
    assert len(console) > 20 and ("/", ["GET", "HEAD"]) in console or any(p == "/" for p, _ in console)
    assert any(p.startswith("/gradio_api/queue/join") for p, _ in console)
    for path, methods in console:
        for method in methods:
            if method == "HEAD":
                continue
            r = c.request(method, path, headers={"accept": "text/html"})
            assert r.status_code in (401, 303), (method, path, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login?next=")
            r = c.request(method, path, headers={"accept": "application/json"})
            assert r.status_code in (401, 303), (method, path, r.status_code)
    # The other zones are exactly the patron-facing ones.
    others = {p for p, _ in paths if zone(p) != "console"}
    assert {p for p in others if not p.startswith(("/widget", "/v1"))} <= {
        "/healthz",
        "/login",
        "/logout",
        "/embed.js",
        "/record",
    }


def sign_in(c, username="ana", password=PASSWORD, origin="http://testserver"):
    page = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return c.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf, "next": "/"},
        headers={"origin": origin},
    )


def test_sign_in_gives_a_strict_http_only_cookie_and_the_console(app, services):
    c = client(app, base_url="https://testserver")
    r = sign_in(c, origin="https://testserver")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)][0].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    page = c.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    audit = services.accounts.audit_log()
    assert audit[0]["actor"] == "ana" and audit[0]["action"] == "signed in"


def test_wrong_passwords_back_off(app, services):
    c = client(app)
    statuses = [sign_in(c, password="wrong password!").status_code for _ in range(6)]
    assert statuses[:4] == [401] * 4 and statuses[4:] == [429, 429]  # the 5th failure starts the wait
    r = sign_in(c)  # even the right password waits out the back-off
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert [e["action"] for e in services.accounts.audit_log()][:5] == ["sign-in failed"] * 5


def test_backoff_doubles_and_forgets_on_success():
    now = [0.0]
    b = Backoff(3, 60, clock=lambda: now[0])
    for _ in range(3):
        b.failed(["u"])
    assert b.wait_s(["u"]) == 1.0
    b.failed(["u"])
    assert b.wait_s(["u"]) == 2.0
    now[0] = 10
    assert b.wait_s(["u"]) == 0
    b.succeeded(["u"])
    b.failed(["u"])
    assert b.wait_s(["u"]) == 0


def test_sign_in_form_needs_its_csrf_token_and_same_origin(app):
    c = client(app)
    c.get("/login")
    r = c.post(
        "/login",
        data={"username": "ana", "password": PASSWORD, "csrf": "forged", "next": "/"},
        headers={"origin": "http://testserver"},
    )
    assert r.status_code == 403
    assert sign_in(c, origin="https://evil.example").status_code == 403
    assert sign_in(c).status_code == 303


def test_state_changing_console_requests_need_the_sites_own_origin(app):
    c = client(app)
    assert sign_in(c).status_code == 303
    join = "/gradio_api/queue/join"
    body = json.dumps({"data": ["x"], "fn_index": 0, "session_hash": "abc"})
    assert c.post(join, content=body, headers={"origin": "https://evil.example"}).status_code == 403
    assert c.post(join, content=body).status_code == 403  # neither Origin nor Referer: refused
    ok = c.post(join, content=body, headers={"origin": "http://testserver", "content-type": "application/json"})
    assert ok.status_code not in (401, 403)
    assert c.post("/logout", headers={"origin": "https://evil.example"}).status_code == 403
    assert c.post("/logout", headers={"origin": "http://testserver"}).status_code == 303
    assert c.get("/config", headers={"accept": "application/json"}).status_code == 401  # signed out


def test_api_needs_a_live_key(app, services):
    c = client(app)
    ask = {"messages": [{"role": "user", "content": "What is the ISSN of Nature?"}]}
    assert c.post("/v1/chat/completions", json=ask).status_code == 401
    assert c.post("/v1/chat/completions", json=ask, headers={"authorization": "Bearer rdk_madeup"}).status_code == 401
    key, secret = services.accounts.create_key("catalogue bot")
    auth = {"authorization": f"Bearer {secret}"}
    assert c.post("/v1/chat/completions", json=ask, headers=auth).status_code == 200
    services.accounts.revoke_key(key.id)
    r = c.post("/v1/chat/completions", json=ask, headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    stored = sqlite3.connect(services.settings.users_path).execute("SELECT key_hash, prefix FROM api_keys").fetchall()
    assert secret not in str(stored) and stored[0][1] == secret[:10]


def test_widget_is_public_framed_only_by_configured_origins_and_size_limited(app):
    c = client(app)
    r = c.get("/widget/", headers={"accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == "frame-ancestors 'self' https://www.library.example"
    js = c.get("/embed.js", headers={"origin": "https://www.library.example"})
    assert js.headers["access-control-allow-origin"] == "https://www.library.example"
    assert "access-control-allow-origin" not in c.get("/embed.js", headers={"origin": "https://evil.example"}).headers
    big = c.post("/widget/gradio_api/queue/join", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_per_address_rate_limit_on_widget_questions(fake_settings):
    fake_settings.widget.rate_limit_per_address_per_minute = 2
    app = build_app(Services(fake_settings))
    c = client(app)
    codes = [
        c.post("/widget/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": str(i)}).status_code
        for i in range(3)
    ]
    assert codes[2] == 429 and 429 not in codes[:2]


def test_without_accounts_the_console_answers_on_localhost_only(fake_settings):
    app = build_app(Services(fake_settings))
    remote = client(app, client=("203.0.113.7", 5000))
    r = remote.get("/config")
    assert r.status_code == 403 and "refdesk user add" in r.json()["error"]["message"]
    local = client(app, client=("127.0.0.1", 5000))
    assert local.get("/config").status_code == 200


def test_trusted_proxy_header_signs_in_only_from_the_proxy(fake_settings):
    fake_settings.auth.trusted_header = "REMOTE_USER"
    svc = Services(fake_settings)
    svc.accounts.add_user("ana", PASSWORD)
    app = build_app(svc)
    assert client(app, client=("127.0.0.1", 1)).get("/config", headers={"remote-user": "bo"}).status_code == 200
    assert client(app, client=("198.51.100.9", 1)).get("/config", headers={"remote-user": "bo"}).status_code == 401


def test_user_and_key_commands(fake_settings, capsys, monkeypatch):
    svc = Services(fake_settings)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert main(["user", "add", "bo", "--password-stdin"], services=svc) == 0
    assert main(["user", "add", "cy", "--generate"], services=svc) == 0
    generated = capsys.readouterr().out.strip().rsplit("password: ", 1)[1]
    assert svc.accounts.verify("cy", generated) and svc.accounts.verify("bo", PASSWORD)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    assert main(["user", "passwd", "bo", "--password-stdin"], services=svc) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert main(["user", "list", "--json"], services=svc) == 0
    assert [u["username"] for u in json.loads(capsys.readouterr().out)] == ["bo", "cy"]
    assert main(["apikey", "create", "--name", "opac", "--json"], services=svc) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["secret"].startswith("rdk_")
    assert main(["apikey", "list", "--json"], services=svc) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "secret" not in listed[0] and created["secret"] not in json.dumps(listed)
    assert main(["apikey", "revoke", str(created["id"])], services=svc) == 0
    assert main(["user", "remove", "cy"], services=svc) == 0
    capsys.readouterr()
    assert main(["audit", "--json"], services=svc) == 0
    actions = [e["action"] for e in json.loads(capsys.readouterr().out)]
    assert actions[:5] == ["user removed", "API key revoked", "API key created", "user added", "user added"]


def test_audit_log_holds_no_patron_content(services, fake_services):
    from assistant.core.types import Answer

    h = services.handoffs.create(Answer(question="my private question", answer="x"), contact="me@example.org")
    assert main(["handoff", "close", str(h.id), "--note", "called back"], services=services) == 0
    log = json.dumps(services.accounts.audit_log())
    assert f"#{h.id}" in log and "my private question" not in log and "me@example.org" not in log

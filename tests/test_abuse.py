"""Abuse tests, one or more per finding of the hardening review: what an anonymous attacker or a careless
user sends, over real HTTP to a real uvicorn server (chunked bodies included), with fake models."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from assistant.core.types import Answer, Sentence, Source
from tests.conftest import LiveServer, catalogue_and_finding_aid, ingest

pytestmark = pytest.mark.reliability

PASSWORD = "correct horse battery"


class Patron:
    """A patron's browser: opens the widget page (so holds the widget session cookie unless told not to),
    then calls the widget's functions the way its page does (queue/join + the queue's event stream)."""

    def __init__(self, server: LiveServer, session_hash: str | None = None, open_page: bool = True):
        import uuid

        self.c = httpx.Client(base_url=server.url, timeout=60)
        if open_page:
            assert self.c.get("/widget/", headers={"accept": "text/html"}).status_code == 200
        self.session_hash = session_hash or uuid.uuid4().hex
        self.fns = {d["api_name"]: d["id"] for d in self.c.get("/widget/config").json()["dependencies"]}

    def run(self, api_name: str, data: list, session_hash: str | None = None) -> tuple[int, str]:
        """(HTTP status of the join, the function's output as JSON text, or the error body)."""
        session = session_hash or self.session_hash
        r = self.c.post(
            "/widget/gradio_api/queue/join",
            json={
                "data": data,
                "fn_index": self.fns[api_name],
                "session_hash": session,
                "trigger_id": None,
                "event_data": None,
            },
        )
        if r.status_code != 200:
            return r.status_code, r.text
        event_id = r.json()["event_id"]
        with self.c.stream("GET", "/widget/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data: "):
                    continue
                message = json.loads(line[6:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    return 200, json.dumps(message.get("output", {}))
        return 500, "stream ended without a result"

    def ask(self, question: str, **kw) -> str:
        status, out = self.run("ask", [question, None], **kw)
        assert status == 200, out
        return out

    def hand_off(self, contact: str = "") -> str:
        status, out = self.run("hand_off", [None, contact])
        assert status == 200, out
        return out


def rest_call(c: httpx.Client, api_name: str, data: list, **kw) -> tuple[int, str]:
    """Gradio's REST way into a widget function: POST /call/NAME, then read its event stream."""
    r = c.post(f"/widget/gradio_api/call/{api_name}", json={"data": data}, **kw)
    if r.status_code != 200:
        return r.status_code, r.text
    return 200, c.get(f"/widget/gradio_api/call/{api_name}/{r.json()['event_id']}").text


def chunked(data: bytes, piece: int = 16_384):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


@pytest.fixture
def services(fake_settings, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services

    svc = Services(fake_settings, llm=FakeChat())
    ingest(svc, catalogue_and_finding_aid(demo_copy))
    svc.accounts.add_user("ana", PASSWORD)
    return svc


@pytest.fixture
def server(services):
    with LiveServer(services) as live:
        yield live


# ---- 1. bytes counted as received; no uploads on the public side ------------------------------------


def test_chunked_upload_to_the_widget_is_refused_and_nothing_is_stored(server, tmp_path, monkeypatch):
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"\x89PNG" + os.urandom(2_000_000) + b"\r\n--b--\r\n"
    )
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post(
            "/widget/gradio_api/upload",
            content=chunked(body),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code in (403, 413) and "error" in r.json()
        assert "content-length" not in r.request.headers  # it really went chunked
        # Small uploads are refused too: the widget has no file inputs.
        r = c.post("/widget/gradio_api/upload", files={"files": ("a.txt", b"hello")})
        assert r.status_code == 403
        assert c.get("/widget/gradio_api/file=/etc/hostname").status_code == 403


@pytest.mark.parametrize("path", ["/widget/gradio_api/call/ask", "/v1/chat/completions", "/login"])
def test_chunked_bodies_over_the_limit_are_refused_on_every_public_route(server, services, path):
    _key, secret = services.accounts.create_key("abuse")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post(
            path,
            content=chunked(b"x" * 200_000),
            headers={"content-type": "application/json", "authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 413, (path, r.status_code, r.text[:200])


UNANSWERABLE = "What does the library say about quantum chromodynamics of pelicans?"


def test_a_200k_contact_never_reaches_the_queue(server, services):
    patron = Patron(server)
    patron.ask(UNANSWERABLE)
    # Sent chunked, to slip past a Content-Length check.
    payload = json.dumps(
        {"data": [None, "x" * 200_000], "fn_index": patron.fns["hand_off"], "session_hash": patron.session_hash}
    ).encode()
    r = patron.c.post(
        "/widget/gradio_api/queue/join", content=chunked(payload), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # Under the byte limit but over the contact limit: refused with a message, nothing stored.
    assert "under 200 characters" in patron.hand_off("y" * 5_000)
    assert services.handoffs.list(None) == []


# ---- 2. rate limits nobody can walk around; bounded answers at once ------------------------------


def test_session_limit_holds_whatever_session_hash_is_sent(fake_settings, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services

    fake_settings.widget.rate_limit_per_minute = 2
    svc = Services(fake_settings, llm=FakeChat())
    ingest(svc, catalogue_and_finding_aid(demo_copy))
    with LiveServer(svc) as live:
        patron = Patron(live)
        outs = [patron.ask("Who wrote Summerland?") for _ in range(2)]
        assert all("many questions" not in out for out in outs)
        # A fresh Gradio session_hash changes nothing: the limit is keyed by the server-issued cookie.
        assert "many questions" in patron.ask("Who wrote Summerland?", session_hash="fresh-hash-1")
        # Nor does the REST route (call/ask), which carries no session_hash at all.
        status, text = rest_call(patron.c, "ask", ["Who wrote Summerland?"])
        assert status == 200 and "many questions" in text
        # Dropping the cookie does not help either: cookieless calls share their address's allowance.
        bare = Patron(live, open_page=False)
        outs = [bare.ask("Who wrote Summerland?", session_hash=f"h{i}") for i in range(3)]
        assert "many questions" not in outs[1] and "many questions" in outs[2]


def test_every_post_into_the_widget_counts_against_the_address(fake_settings):
    from assistant.services import Services

    fake_settings.widget.rate_limit_per_address_per_minute = 3
    with LiveServer(Services(fake_settings)) as live:
        c = httpx.Client(base_url=live.url, timeout=60)
        codes = [c.post("/widget/gradio_api/call/ask", json={"data": ["x"]}).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.post("/widget/gradio_api/queue/join", json={"data": ["x", None], "fn_index": 0, "session_hash": "z"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_past_capacity_patrons_are_told_busy_not_left_waiting(fake_settings, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services

    fake_settings.widget.concurrency = 1
    fake_settings.widget.max_waiting = 1
    fake_settings.widget.max_wait_s = 30
    fake_settings.widget.rate_limit_per_address_per_minute = 100
    svc = Services(fake_settings, llm=FakeChat())
    ingest(svc, catalogue_and_finding_aid(demo_copy))
    slow_ask = svc.answers.ask

    def ask(question, **kw):
        time.sleep(1.5)  # a slow model: three patrons arrive while the first answer is being made
        return slow_ask(question, **kw)

    svc.answers.ask = ask
    with LiveServer(svc) as live:
        patrons = [Patron(live) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda p: p.run("ask", ["Who wrote Summerland?", None]), patrons))
    texts = [out for _, out in results]
    assert all(status == 200 for status, _ in results)  # no errors, no time-outs
    busy = [t for t in texts if "busy right now" in t]
    answered = [t for t in texts if "Chabon" in t]
    assert len(busy) == 2 and len(answered) == 2, texts  # one answering + one waiting; the rest told at once
    assert all("try again in" in t for t in busy)


def test_the_api_says_busy_with_retry_after(fake_settings, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services
    from assistant.web.ratelimit import Busy

    svc = Services(fake_settings, llm=FakeChat())
    _key, secret = svc.accounts.create_key("bot")

    class Full:
        def slot(self):
            raise Busy(7)

    svc.patron_limits.answers = Full()
    with LiveServer(svc) as live:
        r = httpx.post(
            f"{live.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {secret}"},
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
    assert (
        r.status_code == 503 and r.headers["retry-after"] == "7" and "try again in 7 s" in r.json()["error"]["message"]
    )


# ---- 3. hand-off flooding ---------------------------------------------------------------------


def test_one_hand_off_per_offered_answer(server, services):
    patron = Patron(server)
    assert "no answer to pass on" in patron.hand_off()  # nothing asked yet: nothing offered
    patron.ask(UNANSWERABLE)
    outs = [patron.hand_off("ana@example.org") for _ in range(4)]
    assert "request #1" in outs[0]
    assert all("already sent" in out for out in outs[1:]), outs
    assert len(services.handoffs.list(None)) == 1
    # Through the REST route, which has no session state: nothing was offered there.
    status, text = rest_call(patron.c, "hand_off", ["x@example.org"])
    assert "no answer to pass on" in text
    patron.ask("Who wrote Summerland?")  # answered: no hand-off offered
    assert "no answer to pass on" in patron.hand_off()
    assert len(services.handoffs.list(None)) == 1


def test_hand_offs_are_limited_per_session_and_the_queue_is_bounded(fake_settings, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services

    fake_settings.widget.handoffs_per_session_per_hour = 2
    fake_settings.widget.max_open_handoffs = 3
    svc = Services(fake_settings, llm=FakeChat())
    ingest(svc, catalogue_and_finding_aid(demo_copy))
    unanswerable = UNANSWERABLE
    with LiveServer(svc) as live:
        patron = Patron(live)
        results = []
        for _ in range(3):
            patron.ask(unanswerable)
            results.append(patron.hand_off())
        assert "request #" in results[0] and "request #" in results[1] and "several questions" in results[2]
        other = Patron(live)  # another patron: one more fits, then the queue is full
        outs = []
        for _ in range(2):
            other.ask(unanswerable)
            outs.append(other.hand_off())
        assert "request #" in outs[0] and "queue is full" in outs[1]
    assert len(svc.handoffs.list("open")) == 3


# ---- 4. nothing unchecked in front of librarians -------------------------------------------------


def test_the_queue_draft_holds_only_checked_sentences(services):
    answer = Answer(
        question="Who founded the library?",
        handoff_offered=True,
        sentences=[
            Sentence(
                text="The library was founded by Jonas Invented in 1802 [1].",
                citations=[1],
                status="unsupported",
                reasons=["1802 not in [1]"],
                kind="generated",
            ),
            Sentence(
                text="Summerland — Author: Chabon, Michael [1]",
                citations=[1],
                status="supported",
                shown=True,
                kind="evidence",
            ),
        ],
        sources=[Source(n=1, chunk_id="c1", source_type="marc", record_id="1", title="Summerland")],
    )
    handoff = services.handoffs.create(answer)
    assert "Invented" not in handoff.draft and "1802" not in handoff.draft
    assert "Chabon" in handoff.draft


# ---- 5. errors are 4xx JSON, no server paths ------------------------------------------------------


def test_malformed_requests_get_4xx_json(server, services):
    _key, secret = services.accounts.create_key("abuse")
    auth = {"authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post(
            "/v1/chat/completions",
            headers=auth,
            json={"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        )
        assert r.status_code == 400 and "content" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", headers=auth, json={"messages": [{"role": "user", "content": {"a": 1}}]})
        assert r.status_code == 400
        r = c.post("/widget/gradio_api/queue/join", json={"data": [], "fn_index": 999, "session_hash": "a"})
        assert r.status_code == 404 and r.json()["error"]["code"] == 404
        r = c.post("/widget/gradio_api/queue/join", content=b"[not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = c.post("/widget/gradio_api/call/close_handoff", json={"data": [1, ""]})
        assert r.status_code == 404 and "error" in r.json()


def test_closing_a_missing_hand_off_names_no_server_path(services):
    from assistant.backends.handoff import HandoffError

    with pytest.raises(HandoffError) as err:
        services.handoffs.close(12345)
    assert str(services.settings.data_dir) not in str(err.value) and "#12345" in str(err.value)


def test_api_sources_and_refcheck_links_show_no_server_paths(server, services):
    _key, secret = services.accounts.create_key("abuse")
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {secret}"},
        json={"messages": [{"role": "user", "content": "Who wrote Summerland?"}]},
        timeout=60,
    )
    assert r.status_code == 200
    body = r.text
    assert "file://" not in body and str(services.settings.data_dir.parent) not in body
    sources = r.json()["refdesk"]["sources"]
    assert sources and all(s["link"].startswith(("/record?chunk=", "http")) for s in sources)
    assert all("/" not in s["source_file"] for s in sources)
    from assistant.web.app import refcheck_html

    report = services.refcheck.check_text("Chabon, Michael. Summerland. New York: Talk Miramax, 2002.")
    assert report.results[0].record is not None  # held, with a link
    assert "file://" not in report.text() and all(
        "file://" not in (r.record.link if r.record else "") for r in report.results
    )
    page = refcheck_html(report)  # the console's reference-check tab
    assert "file://" not in page and 'href="/record?chunk=' in page


def test_origin_check_compares_the_scheme(server):
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as c:
        page = c.get("/login")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        host = server.url.split("://", 1)[1]
        form = {"username": "ana", "password": PASSWORD, "csrf": csrf, "next": "/"}
        assert c.post("/login", data=form, headers={"origin": f"https://{host}"}).status_code == 403
        assert c.post("/login", data=form, headers={"origin": f"http://{host}"}).status_code == 303


def test_made_up_names_behind_a_shared_proxy_lock_no_librarian_out(server):
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as c:

        def sign_in(user, password):
            page = c.get("/login")
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            return c.post(
                "/login",
                data={"username": user, "password": password, "csrf": csrf, "next": "/"},
                headers={"origin": server.url},
            ).status_code

        assert [sign_in(f"nobody{i}", "guess") for i in range(6)] == [401] * 6
        assert sign_in("ana", PASSWORD) == 303  # same address, a real librarian: not locked out


# ---- 6. no stale or missing pages -------------------------------------------------------------------


def test_widget_without_the_trailing_slash(server):
    r = httpx.get(f"{server.url}/widget", follow_redirects=False)
    assert r.status_code in (301, 307, 308) and r.headers["location"].endswith("/widget/")
    assert httpx.get(f"{server.url}/widget", follow_redirects=True, headers={"accept": "text/html"}).status_code == 200


# ---- 7-10. ingest bounds ----------------------------------------------------------------------------


def test_a_text_with_no_spaces_becomes_bounded_chunks(fake_services, tmp_path):
    import random
    import string

    path = tmp_path / "blob.txt"
    path.write_text("".join(random.Random(7).choices(string.ascii_letters, k=5_000_000)))
    summary = ingest(fake_services, [path])
    limit = fake_services.settings.ingest.max_chunk_chars
    chunks = list(fake_services.store.iter_chunks())
    assert summary.chunks_added == len(chunks) >= 5_000_000 // limit
    assert max(len(c.text) for c in chunks) <= limit


def _bomb_warc(path: Path, html_bytes: int) -> None:
    """A WARC whose one HTML response decompresses (Content-Encoding: gzip) to html_bytes."""
    import gzip
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        block = b"<p>" + b"a" * 1021
        for _ in range(html_bytes // len(block)):
            gz.write(block)
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        headers = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")], protocol="HTTP/1.1"
        )
        record = writer.create_warc_record(
            "http://bomb.example/", "response", payload=io.BytesIO(raw.getvalue()), http_headers=headers
        )
        writer.write_record(record)


def test_an_archived_payload_that_decompresses_to_300_mb_is_left_out_in_bounded_memory(fake_services, tmp_path):
    import resource

    path = tmp_path / "bomb.warc.gz"
    _bomb_warc(path, 300_000_000)
    assert path.stat().st_size < 5_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    summary = ingest(fake_services, [path])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert summary.chunks_added == 0
    reasons = json.dumps(summary.as_dict())
    assert "payload over 20,000,000 bytes" in reasons
    assert grown_mb < 200, grown_mb  # the cap (20 MB) is read, never the whole 300 MB


def test_a_jpeg_named_mrc_is_one_clear_error(fake_services, shared_data, tmp_path):
    jpeg = tmp_path / "photo.mrc"
    jpeg.write_bytes((shared_data / "broken" / "NOT_A_PDF_smile_jpeg.pdf").read_bytes())
    assert jpeg.read_bytes()[:3] == b"\xff\xd8\xff"
    summary = ingest(fake_services, [jpeg])
    assert summary.files_failed == 1 and summary.chunks_added == 0
    text = summary.text()
    assert "not a MARC file: it is a JPEG image" in text
    assert "unreadable MARC record" not in text and text.count("photo.mrc") == 1


def test_a_second_ingest_on_the_same_data_dir_is_refused_with_the_pid(fake_services, demo_copy, capsys):
    from assistant.cli import main
    from ingest.lock import IngestLock

    with IngestLock(fake_services.settings.data_dir / "ingest.lock"):
        code = main(["ingest", str(demo_copy)], services=fake_services)
    err = capsys.readouterr().err
    assert code == 2 and f"another ingest is running on this data dir (pid {os.getpid()})" in err
    assert fake_services.store.count() == 0
    assert main(["ingest", str(demo_copy)], services=fake_services) == 0  # the lock is released

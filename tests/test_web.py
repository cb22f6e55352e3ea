"""The web layer without a browser: OpenAI-compatible API, JSON errors, widget privacy, feedback, rate limit."""

import json

import pytest
from fastapi.testclient import TestClient

from assistant.core.types import Answer, Sentence, Source
from assistant.web.app import build_app, build_filters
from assistant.web.ratelimit import RateLimiter
from assistant.web.render import chat_html, highlight, sources_html
from assistant.web.transcripts import TranscriptStore
from tests.conftest import catalogue_and_finding_aid, ingest


@pytest.fixture
def client(fake_services, demo_copy):
    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    _key, secret = fake_services.accounts.create_key("tests")
    return TestClient(
        build_app(fake_services), raise_server_exceptions=False, headers={"Authorization": f"Bearer {secret}"}
    )


def test_chat_completions_returns_the_checked_answer_and_its_sources(client):
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "refdesk",
            "messages": [
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": "What is the ISSN of Nature?"},
            ],
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "refdesk"
    content = body["choices"][0]["message"]["content"]
    assert "0028-0836 [" in content
    sources = body["refdesk"]["sources"]
    numbers = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", content)}
    assert numbers and numbers <= {s["n"] for s in sources}  # every marker in the text names a returned source
    assert any(s["record_id"] == "417826" for s in sources)
    assert body["refdesk"]["refused"] is False


def _events(r) -> list:
    return [
        json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_streaming_sends_each_checked_sentence_as_its_own_chunk(client):
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Who wrote Summerland?"}], "stream": True},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.rstrip().endswith("data: [DONE]")
    chunks = _events(r)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(contents) >= 2  # the opening and the quoted evidence, not one block
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    shown = [s["text"] for s in final["refdesk"]["sentences"] if s["shown"]]
    # What was streamed is the checked sentences of the final answer, each one whole.
    lines = "".join(contents).split("\n")
    assert all(any(text in line for line in lines) for text in shown)
    assert all(any(line in text or text in line for text in shown) for line in lines)
    assert "Chabon, Michael" in "".join(contents)


def test_follow_up_through_the_official_openai_client(client):
    import openai

    key = client.headers["Authorization"].removeprefix("Bearer ")
    api = openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)
    first = api.chat.completions.create(
        model="refdesk", messages=[{"role": "user", "content": "Do you have Summerland?"}]
    )
    reply = first.choices[0].message.content
    assert "Summerland" in reply
    follow = api.chat.completions.create(
        model="refdesk",
        messages=[
            {"role": "user", "content": "Do you have Summerland?"},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "Who published it?"},
        ],
    )
    answer = follow.choices[0].message.content
    assert "Miramax" in answer, answer  # Summerland's publisher, read from its record
    assert follow.model_extra["refdesk"]["resolved_question"].startswith("Who published it? (")
    # The same question without its conversation is a different question: it names no work.
    alone = api.chat.completions.create(model="refdesk", messages=[{"role": "user", "content": "Who published it?"}])
    assert "Miramax" not in (alone.choices[0].message.content or "")
    streamed = api.chat.completions.create(
        model="refdesk",
        stream=True,
        messages=[
            {"role": "user", "content": "Do you have Summerland?"},
            {"role": "user", "content": "Who published it?"},
        ],
    )
    parts = [c.choices[0].delta.content for c in streamed if c.choices and c.choices[0].delta.content]
    assert len(parts) >= 2 and "Miramax" in "".join(parts)


@pytest.mark.parametrize(
    "payload,status,needle",
    [
        ("not json", 400, "must be JSON"),
        ({"messages": []}, 400, "non-empty list"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "no user message"),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "does not exist"),
    ],
)
def test_api_errors_are_json(client, payload, status, needle):
    r = client.post(
        "/v1/chat/completions",
        content=payload if isinstance(payload, str) else json.dumps(payload),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == status
    assert needle in r.json()["error"]["message"] and "Traceback" not in r.text


def test_an_internal_error_is_json_without_a_traceback(client, fake_services):
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    fake_services.answers.ask = boom
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error" and "secret internals" not in r.text
    assert client.get("/v1/nope").json()["error"]["code"] == 404
    assert client.get("/healthz").json()["status"] == "ok"


def test_embed_script_points_an_iframe_at_the_widget(client):
    r = client.get("/embed.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert '"/widget/"' in r.text and "iframe" in r.text


def test_filters_from_the_console_controls():
    filters = build_filters(["marc", "ead"], ["/x/a.mrc"], 1900, 2000.0, "English")
    assert [(f.key, f.op, f.value) for f in filters] == [
        ("source_type", "in", ("marc", "ead")),
        ("source_file", "in", ("/x/a.mrc",)),
        ("year", ">=", 1900),
        ("year", "<=", 2000),
        ("language", "=", "English"),
    ]
    assert build_filters([], [], None, None, "") == []


def test_filters_narrow_retrieval(fake_services, demo_copy):
    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    answer = fake_services.answers.ask(
        "Stanford marching band photographs",
        k=10,
        retrieve_only=True,
        filters=build_filters(["marc"], [], None, None, ""),
    )
    assert answer.sources and {s.source_type for s in answer.sources} == {"marc"}
    answer = fake_services.answers.ask(
        "Pride and prejudice", k=10, retrieve_only=True, filters=build_filters([], [], 1990, 2000, "")
    )
    assert answer.sources and all(1990 <= int(s.date[:4]) <= 2000 for s in answer.sources if s.date[:4].isdigit())


def test_cards_highlight_terms_and_hide_uncited_sources_on_request():
    assert (
        highlight("Pride & <b>Prejudice</b> by Austen", ["prejudice", "austen"])
        == "Pride &amp; &lt;b&gt;<mark>Prejudice</mark>&lt;/b&gt; by <mark>Austen</mark>"
    )
    sources = [
        Source(n=1, chunk_id="a", source_type="marc", record_id="r1", text="one"),
        Source(n=2, chunk_id="b", source_type="marc", record_id="r2", text="two"),
    ]
    answer = Answer(
        question="q",
        answer="x [1]",
        sources=sources,
        sentences=[Sentence(text="x [1]", citations=[1], status="supported", shown=True)],
    )
    hidden = sources_html(sources, answer, show_uncited=False)
    assert 'id="source-1"' in hidden and 'id="source-2"' not in hidden and "1 more source(s)" in hidden
    shown = sources_html(sources, answer, show_uncited=True)
    assert 'class="source-card uncited" id="source-2"' in shown


def test_widget_conversation_is_escaped():
    turn = {
        "question": "<img src=x onerror=alert(1)>",
        "answer": Answer(
            question="q",
            answer="Quote: <script>alert(1)</script> [1]",
            sources=[
                Source(
                    n=1, chunk_id="c", source_type="warc", record_id="r", title="<b>t</b>", link="javascript:alert(1)"
                )
            ],
            sentences=[
                Sentence(text="Quote: <script>alert(1)</script> [1]", citations=[1], status="supported", shown=True)
            ],
        ).model_dump(),
    }
    page = chat_html([turn], "Library")
    assert "<script>" not in page and "<img" not in page and "javascript:" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;t&lt;/b&gt;" in page


def test_rate_limit_is_per_session_and_recovers():
    now = [0.0]
    limiter = RateLimiter(2, window_s=60, clock=lambda: now[0])
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a"), limiter.allow("b")] == [True, True, False, True]
    now[0] = 61
    assert limiter.allow("a")


def test_transcripts_are_off_by_default_and_expire_when_on(fake_services, tmp_path):
    assert fake_services.transcripts is None
    assert not fake_services.settings.transcripts_path.exists()
    store = TranscriptStore(tmp_path / "t.sqlite", retention_days=1)
    store.add("s1", "old question", "old answer", now=0)
    store.add("s1", "new question", "new answer", now=2 * 86400)
    assert store.count() == 1


def test_feedback_is_stored(fake_services):
    fid = fake_services.feedback.add("q", "a [1]", ["marc:1"], -1, "wrong edition")
    assert fake_services.feedback.list()[0] == {
        **fake_services.feedback.list()[0],
        "id": fid,
        "rating": -1,
        "comment": "wrong edition",
        "cited": ["marc:1"],
    }
    with pytest.raises(ValueError):
        fake_services.feedback.add("q", "a", [], 5)

from assistant.core.types import Answer, Sentence, Source, public_link
from assistant.web.render import answer_html, sources_html


def test_source_text_and_model_output_are_escaped():
    src = Source(
        n=1,
        chunk_id="c",
        source_type="warc",
        record_id="r",
        title="<b>t</b>",
        text="<script>alert(1)</script><img src=x onerror=alert(1)>",
        link="javascript:alert(1)",
    )
    html = sources_html([src])
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert "javascript:" not in html  # not made into a link
    answer = Answer(
        question="q",
        answer="x",
        sentences=[Sentence(text="<i>x</i> [1].", citations=[1], status="supported", shown=True)],
    )
    out = answer_html(answer)
    assert "<i>" not in out and 'href="#source-1"' in out


def test_safe_link():
    assert public_link("https://example.org/x", "c1") == "https://example.org/x"
    # A file link would show the server's paths to anyone: the record page instead.
    assert public_link("file:///srv/data/a.md", "c1") == "/record?chunk=c1"
    assert public_link("javascript:alert(1)", "c1") == "/record?chunk=c1"
    assert public_link("data:text/html,x", "") == ""

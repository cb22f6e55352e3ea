"""HTML for answers and source cards. Everything from sources or the model is escaped."""
from __future__ import annotations

import html
import re
from urllib.parse import urlparse

from assistant.types import Answer, Source

SOURCE_LABELS = {
    "text": "Text", "marc": "Catalogue record", "ead": "Finding-aid component", "pdf": "PDF page", "warc": "Archived page",
}
SAFE_SCHEMES = {"http", "https", "file"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_link(url: str) -> str:
    """Only http(s)/file links become clickable; `javascript:` and the like never do."""
    return url if url and urlparse(url).scheme in SAFE_SCHEMES else ""


def _sentence_html(text: str) -> str:
    escaped = _e(text)
    return re.sub(r"\[(\d+)\]", lambda m: f'<a class="cite" href="#source-{m.group(1)}">[{m.group(1)}]</a>', escaped)


def answer_html(answer: Answer) -> str:
    parts = ['<div class="refdesk-answer">']
    if answer.error and answer.error != answer.answer:
        parts.append(f'<p class="error" role="alert">{_e(answer.error)}</p>')
    if answer.refused or (answer.error and answer.error == answer.answer):
        cls = "refusal" if answer.refused else "error"
        parts.append(f'<p class="{cls}" role="status">{_e(answer.answer)}</p>')
    else:
        cited = [s for s in answer.sentences if s.status == "cited"]
        for sentence in cited:
            parts.append(f'<p class="sentence cited" data-status="cited">{_sentence_html(sentence.text)}</p>')
        if not cited and answer.answer:
            parts.append(f"<p>{_e(answer.answer)}</p>")
    if answer.invalid_markers:
        parts.append(
            f'<p class="note">{answer.invalid_markers} citation marker(s) removed: they pointed to no stored source.</p>'
        )
    parts.append("</div>")
    return "\n".join(parts)


def source_card(source: Source) -> str:
    label = SOURCE_LABELS.get(source.source_type, source.source_type)
    link = safe_link(source.link)
    title = _e(source.title or source.record_id)
    title_html = f'<a href="{_e(link)}" target="_blank" rel="noopener noreferrer">{title}</a>' if link else title
    meta = " · ".join(_e(x) for x in (label, source.locator, source.date) if x)
    snippet = _e(source.text[:400] + ("…" if len(source.text) > 400 else ""))
    return (
        f'<div class="source-card" id="source-{source.n}" data-chunk-id="{_e(source.chunk_id)}" '
        f'data-record-id="{_e(source.record_id)}">'
        f'<div class="source-head"><span class="source-n">[{source.n}]</span> {title_html}</div>'
        f'<div class="source-meta">{meta} · record {_e(source.record_id)} · score {source.score:.2f}</div>'
        f'<div class="source-snippet">{snippet}</div></div>'
    )


def sources_html(sources: list[Source]) -> str:
    if not sources:
        return '<div class="sources"><p>No sources retrieved.</p></div>'
    return '<div class="sources">' + "\n".join(source_card(s) for s in sources) + "</div>"


CSS = """
.refdesk-answer p.sentence { margin: 0.2em 0; }
.refdesk-answer .refusal { font-style: italic; }
.refdesk-answer .error { color: #a40000; }
.source-card { border: 1px solid #ccc; border-radius: 6px; padding: 0.5em 0.7em; margin: 0.4em 0; }
.source-n { font-weight: bold; }
.source-meta { font-size: 0.85em; color: #555; }
.source-snippet { font-size: 0.85em; white-space: pre-wrap; margin-top: 0.3em; }
"""

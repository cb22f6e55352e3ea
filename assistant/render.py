"""HTML for answers and source cards. Everything from sources or the model is escaped."""
from __future__ import annotations

import html
import re
from urllib.parse import urlparse

from assistant.types import Answer, Source

SOURCE_LABELS = {
    "text": "Text", "marc": "Catalogue record", "dc": "Catalogue record (Dublin Core)", "ead": "Finding-aid component", "pdf": "PDF page", "warc": "Archived page",
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
        shown = [s for s in answer.sentences if s.shown]
        for sentence in shown:
            if sentence.kind == "template":
                parts.append(f'<p class="lead">{_e(sentence.text)}</p>')
                continue
            ok = sentence.status == "supported"
            badge = ('<span class="badge ok" title="checked against the cited source">✓ verified</span>' if ok else
                     f'<span class="badge flag" title="{_e("; ".join(sentence.reasons))}">⚠ not verified</span>')
            parts.append(f'<p class="sentence {sentence.status}" data-status="{sentence.status}">'
                         f'{_sentence_html(sentence.text)} {badge}</p>')
        if not shown and answer.answer:
            parts.append(f"<p>{_e(answer.answer)}</p>")
    if answer.invalid_markers:
        parts.append(
            f'<p class="note">{answer.invalid_markers} citation marker(s) removed: they pointed to no stored source.</p>'
        )
    parts.append("</div>")
    return "\n".join(parts)


def plain_text(answer: Answer) -> str:
    """Answer with citations as plain text a librarian can paste into an e-mail."""
    lines = [answer.answer, ""]
    for s in answer.sources:
        where = "; ".join(x for x in (s.locator, s.date) if x)
        lines.append(f"[{s.n}] {s.title or s.record_id}" + (f" ({where})" if where else "") + (f" {s.link}" if s.link else ""))
    return "\n".join(lines).strip()


def source_card(source: Source) -> str:
    label = SOURCE_LABELS.get(source.source_type, source.source_type)
    link = safe_link(source.link)
    title = _e(source.title or source.record_id)
    title_html = f'<a href="{_e(link)}" target="_blank" rel="noopener noreferrer">{title}</a>' if link else title
    meta = " · ".join(_e(x) for x in (label, source.locator, source.date) if x)
    if len(source.captures) > 1:
        meta += " · also captured " + _e(", ".join(c[:10] for c in source.captures if c != source.date))
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
.badge { font-size: 0.75em; border-radius: 4px; padding: 0 0.3em; }
.badge.ok { background: #e3f4e1; color: #1d5e17; }
.badge.flag { background: #fdecc8; color: #7a4b00; }
.source-meta { font-size: 0.85em; color: #555; }
.source-snippet { font-size: 0.85em; white-space: pre-wrap; margin-top: 0.3em; }
"""

"""HTML for answers and source cards. Everything from sources or the model is escaped."""
from __future__ import annotations

import html
import re

from assistant.core.types import Answer, Source, public_link

SOURCE_LABELS = {
    "text": "Text", "marc": "Catalogue record", "dc": "Catalogue record (Dublin Core)", "ead": "Finding-aid component", "pdf": "PDF page", "warc": "Archived page",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def display_link(source: Source) -> str:
    return public_link(source.link, source.chunk_id)


def _sentence_html(text: str, anchor: str = "source-") -> str:
    escaped = _e(text)
    return re.sub(r"\[(\d+)\]", lambda m: f'<a class="cite" href="#{anchor}{m.group(1)}">[{m.group(1)}]</a>', escaped)


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


def highlight(text: str, terms: list[str]) -> str:
    """Escaped text with the question's key terms wrapped in <mark> (matching is done on the escaped text,
    so no markup from the source can come through)."""
    escaped = _e(text)
    words = sorted({t for t in terms if len(t) >= 3}, key=len, reverse=True)
    if not words:
        return escaped
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(_e(w)) for w in words) + r")(?![\w-])", re.I)
    return pattern.sub(lambda m: f"<mark>{m.group(1)}</mark>", escaped)


def cited_numbers(answer: Answer) -> set[int]:
    return {n for s in answer.sentences if s.shown for n in s.citations}


def source_card(source: Source, terms: list[str] | None = None, cited: bool = True) -> str:
    label = SOURCE_LABELS.get(source.source_type, source.source_type)
    link = display_link(source)
    title = _e(source.title or source.record_id)
    title_html = f'<a href="{_e(link)}" target="_blank" rel="noopener noreferrer">{title}</a>' if link else title
    meta = " · ".join(_e(x) for x in (label, source.locator, source.date) if x)
    if len(source.captures) > 1:
        meta += " · also captured " + _e(", ".join(c[:10] for c in source.captures if c != source.date))
    text = source.text[:400] + ("…" if len(source.text) > 400 else "")
    snippet = highlight(text, terms or [])
    status = "cited" if cited else "uncited"
    open_link = (f'<a class="source-link" href="{_e(link)}" target="_blank" rel="noopener noreferrer">'
                 f'{"Open the archived copy" if source.source_type == "warc" else "Open the record"}</a>') if link else ""
    return (
        f'<div class="source-card {status}" id="source-{source.n}" data-chunk-id="{_e(source.chunk_id)}" '
        f'data-record-id="{_e(source.record_id)}" data-source-type="{_e(source.source_type)}">'
        f'<div class="source-head"><span class="source-n">[{source.n}]</span> {title_html}'
        f'{"" if cited else " <span class=not-cited>(retrieved, not cited)</span>"}</div>'
        f'<div class="source-meta">{meta} · record {_e(source.record_id)} · score {source.score:.2f}</div>'
        f'<div class="source-snippet">{snippet}</div>{open_link}</div>'
    )


def sources_html(sources: list[Source], answer: Answer | None = None, show_uncited: bool = True,
                 terms: list[str] | None = None) -> str:
    """Cards for the cited sources (all sources when there is no answer yet); retrieved-but-not-cited
    ones only when show_uncited."""
    if not sources:
        return '<div class="sources"><p>No sources retrieved.</p></div>'
    cited = cited_numbers(answer) if answer is not None and answer.sentences else {s.n for s in sources}
    cards = [source_card(s, terms, s.n in cited) for s in sources if s.n in cited or show_uncited]
    hidden = sum(1 for s in sources if s.n not in cited) if not show_uncited else 0
    note = f'<p class="uncited-note">{hidden} more source(s) retrieved but not cited.</p>' if hidden else ""
    return '<div class="sources">' + "\n".join(cards) + note + "</div>"


def chat_html(turns: list[dict], library_name: str) -> str:
    """The widget's conversation: each turn {question, answer (Answer dict)}; all text escaped."""
    parts = ['<div class="chat-log">']
    if not turns:
        parts.append(f'<p class="hint">Ask {_e(library_name)} about its catalogue, archives and archived web pages.</p>')
    for number, turn in enumerate(turns, 1):
        anchor = f"w{number}-source-"  # one conversation, several answers: numbers repeat, ids must not
        parts.append(f'<div class="msg patron"><span class="who">You</span><p>{_e(turn["question"])}</p></div>')
        answer = Answer.model_validate(turn["answer"])
        body = [f"<p class=\"{'refusal' if answer.refused else 'reply'}\">" + _sentence_html(line, anchor) + "</p>"
                for line in (answer.answer or "").splitlines() if line.strip()]
        cited = cited_numbers(answer)
        links = []
        for src in answer.sources:
            if src.n not in cited:
                continue
            link = display_link(src)
            label = _e(f"[{src.n}] {src.title or src.record_id}") + (f" — {_e(src.locator)}" if src.locator else "")
            links.append(f'<li id="{anchor}{src.n}">' + (f'<a href="{_e(link)}" target="_blank" rel="noopener noreferrer">{label}</a>'
                                             if link else label) + "</li>")
        sources = f'<ul class="w-sources" aria-label="Sources">{"".join(links)}</ul>' if links else ""
        parts.append(f'<div class="msg library"><span class="who">Library</span>{"".join(body)}{sources}</div>')
    parts.append("</div>")
    return "\n".join(parts)


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
.source-snippet mark { background: #fff3a3; }
.source-card.uncited { opacity: 0.75; border-style: dashed; }
.not-cited, .uncited-note { font-size: 0.85em; color: #666; }
.source-link { font-size: 0.85em; }
"""

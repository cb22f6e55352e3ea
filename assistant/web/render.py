"""HTML for answers, source cards and the widget's conversation, from the templates in templates/. Everything
from sources, patrons or the model is escaped there."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from assistant.core.types import Answer, Source, public_link
from assistant.web.templates import render

SOURCE_LABELS = {
    "text": "Text",
    "marc": "Catalogue record",
    "dc": "Catalogue record (Dublin Core)",
    "ead": "Finding-aid component",
    "pdf": "PDF page",
    "warc": "Archived page",
}


def display_link(source: Source) -> str:
    return public_link(source.link, source.chunk_id)


def answer_html(answer: Answer) -> str:
    return render("answer.html", answer=answer, shown=[s for s in answer.sentences if s.shown])


def message_html(text: str, role: str = "status", cls: str = "") -> str:
    """A one-line notice (role status or alert) in the console or the widget."""
    return render("message.html", text=text, role=role, cls=cls)


def plain_text(answer: Answer) -> str:
    """Answer with citations as plain text a librarian can paste into an e-mail."""
    lines = [answer.answer, ""]
    for s in answer.sources:
        where = "; ".join(x for x in (s.locator, s.date) if x)
        lines.append(
            f"[{s.n}] {s.title or s.record_id}" + (f" ({where})" if where else "") + (f" {s.link}" if s.link else "")
        )
    return "\n".join(lines).strip()


def highlight(text: str, terms: list[str]) -> Markup:
    """Escaped text with the question's key terms wrapped in <mark> (matching is done on the escaped text,
    so no markup from the source can come through)."""
    escaped = str(escape(text))
    words = sorted({t for t in terms if len(t) >= 3}, key=len, reverse=True)
    if not words:
        return Markup(escaped)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(str(escape(w))) for w in words) + r")(?![\w-])", re.I)
    return Markup(pattern.sub(lambda m: f"<mark>{m.group(1)}</mark>", escaped))


def cited_numbers(answer: Answer) -> set[int]:
    return {n for s in answer.sentences if s.shown for n in s.citations}


SNIPPET_CHARS = 400


def source_card(source: Source, terms: list[str] | None = None, cited: bool = True) -> str:
    text = source.text[:SNIPPET_CHARS] + ("…" if len(source.text) > SNIPPET_CHARS else "")
    also = ", ".join(c[:10] for c in source.captures if c != source.date) if len(source.captures) > 1 else ""
    return render(
        "source_card.html",
        source=source,
        cited=cited,
        link=display_link(source),
        meta=[x for x in (SOURCE_LABELS.get(source.source_type, source.source_type), source.locator, source.date) if x],
        also_captured=also,
        snippet=highlight(text, terms or []),
    )


def sources_html(
    sources: list[Source], answer: Answer | None = None, show_uncited: bool = True, terms: list[str] | None = None
) -> str:
    """Cards for the cited sources (all sources when there is no answer yet); retrieved-but-not-cited
    ones only when show_uncited."""
    cited = cited_numbers(answer) if answer is not None and answer.sentences else {s.n for s in sources}
    cards = [Markup(source_card(s, terms, s.n in cited)) for s in sources if s.n in cited or show_uncited]
    hidden = sum(1 for s in sources if s.n not in cited) if not show_uncited else 0
    return render("sources.html", cards=cards, hidden=hidden)


def chat_html(turns: list[dict], library_name: str) -> str:
    """The widget's conversation: each turn {question, answer (Answer dict)}; all text escaped."""
    shown = []
    for number, turn in enumerate(turns, 1):
        answer = Answer.model_validate(turn["answer"])
        cited = cited_numbers(answer)
        shown.append(
            {
                "question": turn["question"],
                "anchor": f"w{number}-source-",  # one conversation, several answers: numbers repeat, ids must not
                "refused": answer.refused,
                "pending": not answer.final,  # the evidence is shown; the model's lead may still follow
                "lines": [line for line in (answer.answer or "").splitlines() if line.strip()],
                "sources": [
                    {
                        "n": src.n,
                        "title": src.title or src.record_id,
                        "locator": src.locator,
                        "link": display_link(src),
                    }
                    for src in answer.sources
                    if src.n in cited
                ],
            }
        )
    return render("chat.html", turns=shown, library_name=library_name)


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

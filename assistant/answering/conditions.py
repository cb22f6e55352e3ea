"""Conditions a question sets on what it asks for, checked against each record: a year, a format, a title in
quotes, a part or a sequel, a first edition, a signed copy. The records that meet a condition answer; when
none does, the answer says so first ("None of the records we found is from 1950") and the closest records
follow under their own titles, never presented as the asked work. When the records are silent (few say
whether a copy is signed) the answer says that, and offers a librarian.

CONDITION_RULES is tried by priority; each row is unit-tested (tests/test_conditions.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from assistant.answering.questions import Question, asked_part
from assistant.core.text import fold
from assistant.core.types import Source

# Record types whose format field is a carrier (book, sound recording, map); a finding aid's folder of
# photographs has the format "archival component" and is not "not a photograph".
CATALOGUE_TYPES = frozenset({"marc", "dc"})
QUOTED_TITLE_MIN_MATCH = 0.8  # share of the quoted title's words a record's title must hold
YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10"}

# What a condition's outcome makes refdesk say (a prompt template each, see prompts/).
Outcome = Literal["met", "not_met", "not_found", "silent"]


@dataclass(frozen=True)
class ConditionRule:
    name: str
    priority: int  # lower is tried first
    stated: Callable[[Question], bool]
    met: Callable[[Question, Source], bool | None]  # None: the record does not say
    phrase: Callable[[Question], str]  # completes "None of the records we found is …"
    applies_to: frozenset[str] | None = None  # source types whose records can show it (None: all)
    not_met: Outcome = "not_met"  # what is said when no record meets it
    # The words that state it; when a candidate's title holds them all, they are the title's own words
    # ("Innovation during 1998-2000", "… : a novel"), not a condition.
    stated_by: Callable[[Question], list[str]] = lambda q: []


@dataclass(frozen=True)
class ConditionResult:
    rule: str
    outcome: Outcome
    phrase: str


def _years(source: Source) -> list[int]:
    found = [int(y) for y in YEAR.findall(source.date)]
    return found + ([source.year] if source.year is not None else [])


def _year_met(q: Question, source: Source) -> bool | None:
    years = _years(source)
    if not years or q.years is None:
        return None
    # A record's dates are a span (a collection of 1927-1967); it meets a condition it overlaps.
    return min(years) <= q.years[1] and max(years) >= q.years[0]


def _year_phrase(q: Question) -> str:
    assert q.years is not None
    a, b = q.years
    if a == b:
        return f"from {a}"
    if a == 0:
        return f"from before {b + 1}"
    if b == 9999:
        return f"from {a} or later"
    return f"from {a}–{b}"


def _format_phrase(q: Question) -> str:
    word = q.format_words[0] if q.format_words else "of that format"
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _title_met(q: Question, source: Source) -> bool:
    from assistant.answering.evidence import title_match

    wanted, title = fold(q.quoted_title), fold(source.title)
    return wanted in title or title_match(source.title, q.quoted_title) >= QUOTED_TITLE_MIN_MATCH


def _part_met(q: Question, source: Source) -> bool:
    part = asked_part(q.text)
    if not part:  # "the sequel to X": no record says it is one; the asked work is not found by its name
        return False
    wanted = {part, ROMAN.get(part, part)}
    # The title only: a locator's call number ("PR4034 .A7") or box number is not a part of the work.
    title_words = set(re.findall(r"[^\W_]+", fold(source.title)))
    return bool(title_words & wanted) or any(ROMAN.get(w) in wanted for w in title_words)


def _edition_statement(source: Source) -> str:
    return " ".join(v for k, v in source.record_fields() if k == "Edition")


def _first_edition_met(q: Question, source: Source) -> bool | None:
    edition = fold(_edition_statement(source))
    if not edition:
        return None
    return re.search(r"\b(1st|first)\b", edition) is not None


def _signed_met(q: Question, source: Source) -> bool | None:
    return True if re.search(r"\b(signed|autographed|inscribed)\b", fold(source.text)) else None


CONDITION_RULES: tuple[ConditionRule, ...] = (
    ConditionRule("year", 10, lambda q: q.years is not None, _year_met, _year_phrase,
                  stated_by=lambda q: YEAR.findall(q.year_text)),
    ConditionRule("format", 20, lambda q: bool(q.formats), lambda q, s: s.format in q.formats, _format_phrase,
                  applies_to=CATALOGUE_TYPES, stated_by=lambda q: list(q.format_words[:1])),
    ConditionRule("quoted title", 30, lambda q: bool(q.quoted_title), _title_met,
                  lambda q: f"a work titled “{q.quoted_title}”", not_met="not_found"),
    ConditionRule("part", 40, lambda q: bool(q.parts), _part_met,
                  lambda q: f"part {asked_part(q.text)} of this work" if asked_part(q.text) else "the sequel you asked for",
                  not_met="not_found"),
    ConditionRule("first edition", 50, lambda q: "first edition" in q.copy_conditions, _first_edition_met,
                  lambda q: "a first edition", applies_to=CATALOGUE_TYPES),
    ConditionRule("signed", 60, lambda q: "signed" in q.copy_conditions, _signed_met, lambda q: "a signed copy"),
)  # fmt: skip


def _in_a_title(words: list[str], sources: list[Source]) -> bool:
    wanted = [fold(w) for w in words]
    return bool(wanted) and any(all(re.search(rf"\b{re.escape(w)}", fold(s.title)) for w in wanted) for s in sources)


def apply_conditions(
    q: Question, sources: list[Source], candidates: set[int]
) -> tuple[set[int], list[ConditionResult]]:
    """The candidate sources (by n) that meet every condition that some candidate meets, and what to say about
    each stated condition. A condition no candidate meets keeps the candidates (the closest records) and is
    reported, so the answer says it first."""
    by_n = {s.n: s for s in sources}
    results: list[ConditionResult] = []
    for rule in sorted(CONDITION_RULES, key=lambda r: r.priority):
        if not rule.stated(q):
            continue
        checked = {n for n in candidates if rule.applies_to is None or by_n[n].source_type in rule.applies_to}
        if not checked or _in_a_title(rule.stated_by(q), [by_n[n] for n in candidates]):
            continue
        verdicts = {n: rule.met(q, by_n[n]) for n in checked}
        meeting = {n for n, v in verdicts.items() if v}
        if meeting:
            candidates = (candidates - checked) | meeting if rule.applies_to else meeting
            results.append(ConditionResult(rule.name, "met", rule.phrase(q)))
        elif all(v is None for v in verdicts.values()):
            results.append(ConditionResult(rule.name, "silent", rule.phrase(q)))
        else:
            results.append(ConditionResult(rule.name, rule.not_met, rule.phrase(q)))
    return candidates, results

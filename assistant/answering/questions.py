"""Question analysis as data: what a question asks for (INTENT_RULES), its key terms and the names it is about.

INTENT_RULES is read top to bottom by priority (lowest first). Every matching rule adds its intent; the first
one decides routing: a rule-routed intent (an identifier, a location, a capture date) is answered from the
record alone, without the LLM. Each rule names the record fields (the labels the readers write, see
core.text.FIELD_LINE) that answer it. tests/test_rule_tables.py holds a question per rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.core.text import STOPWORDS, fold, hyphenated, without_hyphenated, words


@dataclass(frozen=True)
class IntentRule:
    name: str
    priority: int  # lower is tried first; the first intent found decides routing
    pattern: re.Pattern[str]
    fields: tuple[str, ...]  # record field labels that answer it
    rule_routed: bool = False  # the record answers it; the LLM adds nothing


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


INTENT_RULES: tuple[IntentRule, ...] = (
    IntentRule("issn", 10, _rx(r"\bissn\b"), ("ISSN",), rule_routed=True),
    IntentRule("isbn", 20, _rx(r"\bisbn\b"), ("ISBN",), rule_routed=True),
    IntentRule(
        "call_number",
        30,
        _rx(r"\bcall ?numbers?\b|\bshelf ?mark\b|\bwhere (is|are|can i find) .* shel"),
        ("Call number",),
        rule_routed=True,
    ),
    IntentRule(
        "container",
        40,
        _rx(
            r"\bwhich (box|folder)\b|\b(box|folder|container)\b"
            r"|\bwhere (is|are)\b.*\b(papers|files|photographs|letters|records)\b"
        ),
        ("Location", "Container", "Box", "Folder"),
        rule_routed=True,
    ),
    IntentRule(
        "capture", 50, _rx(r"\b(captured|archived|crawled|snapshot|wayback)\b"), ("captured",), rule_routed=True
    ),
    IntentRule(
        "holding",
        55,
        _rx(
            r"\bdo you (have|hold|own|keep)\b|\bin your (catalogu?e?|collections?|library)\b|\bcan i (borrow|see|get)\b"
            r"|\b(does|do) the library (have|hold)\b|\bi(?:'m| am) looking for\b|\bhave you got\b|\ba copy of\b"
        ),
        # What a librarian reads out for a known item: the edition, its date and publisher, where it stands.
        ("Published", "Edition", "Year", "Dates", "Call number", "Location", "ISBN", "ISSN"),
    ),
    IntentRule(
        "author",
        60,
        _rx(r"\bwho (wrote|is the author|authored|created|composed|made|edited)\b|\bauthor|\bcreator\b|\bby whom\b"),
        ("Author", "Corporate author", "Creator", "Other contributor", "Performers"),
    ),
    IntentRule("publisher", 70, _rx(r"\bpublish(ed|er|ing)?\b|\bimprint\b"), ("Published", "Publisher", "Edition")),
    IntentRule("edition", 80, _rx(r"\beditions?\b"), ("Edition", "Published", "Year")),
    IntentRule(
        "date",
        90,
        _rx(r"\bwhen\b|\bwhat year\b|\bdates?\b|\byears?\b"),
        ("Year", "Date", "Dates", "Published", "Dates of publication"),
    ),
    IntentRule(
        "subject", 100, _rx(r"\babout\b|\bsubjects?\b|\btopics?\b"), ("Summary", "Subject", "Scope and content")
    ),
    IntentRule(
        "extent",
        110,
        _rx(r"\bhow (many|long|big|thick|large)\b|\bpages?\b|\bsize\b|\bextent\b|\bphysical"),
        ("Physical description", "Extent"),
    ),
    IntentRule(
        "contents",
        120,
        _rx(
            r"\bcontents?\b|\bwhat(?:'s| is| are)? in\b|\bwhich \w+ (are|is) (in|included)\b|\bincluded\b"
            r"|\btracks?\b|\bsongs?\b|\bchapters?\b"
        ),
        ("Contents", "Scope and content"),
    ),
)
INTENTS_BY_NAME = {rule.name: rule for rule in INTENT_RULES}

# Words a question uses to ask, not to say what it is about.
QUESTION_STOPWORDS = STOPWORDS | frozenset(
    """
have hold held holds find show tell give list need want looking look anything something materials material item items
library libraries catalogue catalog collections collection copy copies available there please whose which wrote write
written kind sort type""".split()
)
MIN_KEY_TERM_CHARS = 3  # "of", "to" and the like are never key terms, even when not stop words


@dataclass(frozen=True)
class Question:
    text: str
    intents: tuple[str, ...]  # by priority
    key_terms: tuple[str, ...]  # hyphenated labels first, then content words, folded
    names: tuple[str, ...]  # capitalised words after the first, folded

    @property
    def rule_routed(self) -> bool:
        return bool(self.intents) and INTENTS_BY_NAME[self.intents[0]].rule_routed

    @property
    def wanted_fields(self) -> list[str]:
        return [label for name in self.intents for label in INTENTS_BY_NAME[name].fields]


def analyse(question: str) -> Question:
    found = intents(question)
    if "date" not in found and _states_years(question):
        found.append("date")  # "editions before 1900": each record's own date answers the condition
    return Question(question, tuple(found), tuple(key_terms(question)), tuple(names(question)))


def _states_years(question: str) -> bool:
    from assistant.answering.query import year_range

    return year_range(question)[0] is not None


def intents(question: str) -> list[str]:
    return [rule.name for rule in sorted(INTENT_RULES, key=lambda r: r.priority) if rule.pattern.search(question)]


def rule_routed(question: str) -> bool:
    return analyse(question).rule_routed


def key_terms(question: str) -> list[str]:
    """Content words of the question, plus hyphenated labels such as "A-C" (a folder range)."""
    folded = fold(question)
    content = [
        w
        for w in words(without_hyphenated(folded), folded=True)
        if len(w) >= MIN_KEY_TERM_CHARS and w not in QUESTION_STOPWORDS
    ]
    return hyphenated(folded, folded=True) + content


def names(question: str) -> list[str]:
    """Capitalised words after the first one: the names a question is about ("maps of Paris")."""
    raw = [re.sub(r"['’]s$", "", w) for w in re.findall(r"[^\W\d_][\w'’-]*", question)[1:]]
    return [fold(w) for w in raw if w[0].isupper() and fold(w) not in QUESTION_STOPWORDS and len(w) > 1]

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
    IntentRule(
        "publisher", 70, _rx(r"\bpublish(ed|er|ing)?\b|\bimprint\b|\bissued\b"), ("Published", "Publisher", "Edition")
    ),
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
have hold held holds find show tell give get list need want big large looking look anything something materials material item items
library libraries catalogue catalog collections collection copy copies available there please whose which wrote write
written kind sort type citation cite publisher published publish issued author authored edition editions version
versions printing borrow borrowing""".split()
)
MIN_KEY_TERM_CHARS = 3  # "of", "to" and the like are never key terms, even when not stop words


# --- What a question asks beyond facts: a service, a copy with a property the records may not state, a
# collection as a whole, or a work by a part or sequel number. Each table is tried row by row; all rows count.


@dataclass(frozen=True)
class PatternRule:
    name: str
    pattern: re.Pattern[str]


# Services a librarian provides; refdesk answers what it can from the records and offers the hand-off.
SERVICE_RULES: tuple[PatternRule, ...] = (
    PatternRule("scan", _rx(r"\b(scan|scans|scanned|digiti[sz]e|digiti[sz]ation)\b")),
    PatternRule("copy", _rx(r"\b(photocopy|photocopies|reproduction|make (me )?a copy|send (me )?a copy)\b")),
    PatternRule("visit", _rx(r"\b(visit|reading room|appointment|come in|see it in person|in person)\b")),
    PatternRule("hours", _rx(r"\b(opening hours|open(ing)? times|when (are|is) (you|the library) open|hours)\b")),
)

# Properties of a copy that catalogue records rarely state: checked against the record's text, and when the
# record is silent refdesk says so rather than guessing.
COPY_CONDITION_RULES: tuple[PatternRule, ...] = (
    PatternRule("first edition", _rx(r"\bfirst (edition|printing)\b|\b1st ed(ition)?\b")),
    PatternRule("signed", _rx(r"\b(signed|autographed|inscribed)\b")),
)

# A question about a collection as a whole: its collection-level record answers before any folder.
COLLECTION_LEVEL = _rx(
    r"\b(what(?:'s| is| are)? in|how (big|large|many)|extent|overview|scope|about|describe|size)\b"
    r".*\b(collection|records|papers|fonds|archives?)\b"
    r"|\b(collection|records|papers|fonds)\b.*\b(how (big|large|many)|extent|size|scope|cover|contain)"
)

# A work asked for by a part, volume or sequel: held only if a record's title names that part.
PART_RULES: tuple[PatternRule, ...] = (
    PatternRule("sequel", _rx(r"\b(sequel|prequel|follow-up novel|next book|second book)\b")),
    PatternRule("numbered part", _rx(r"\b(?:vol(?:ume)?\.?|part|book|no\.?)\s*(\d{1,3}|[ivx]{1,5})\b")),
    PatternRule("numbered title", re.compile(r"\b[A-Z][\w'’]+ (\d{1,2})\b(?!\s*(?:edition|ed\b|copies|pages))")),
)
QUOTED_TITLE = re.compile(r"[\"“]([^\"”]{3,120})[\"”]")


PART_CONTEXT_WORDS = frozenset("box folder series page pages item room floor level chapter number no".split())


def asked_part(question: str) -> str:
    """The part or volume number a question asks for ("Summerland 2", "volume 3"), folded; "" if none.
    Container words ("Box 3", "Folder 21") are locations, not parts of a work."""
    for rule in PART_RULES:
        if rule.name == "sequel":
            continue
        for match in rule.pattern.finditer(question):
            before = question[: match.start(1)].split()
            if before and fold(before[-1]).strip(".") in PART_CONTEXT_WORDS and rule.name == "numbered title":
                continue
            return match.group(1).lower()
    return ""


def _names_of(rules: tuple[PatternRule, ...], question: str) -> tuple[str, ...]:
    return tuple(rule.name for rule in rules if rule.pattern.search(question))


@dataclass(frozen=True)
class Question:
    text: str
    intents: tuple[str, ...]  # by priority
    key_terms: tuple[str, ...]  # hyphenated labels first, then content words, folded
    names: tuple[str, ...]  # capitalised words after the first, folded
    years: tuple[int, int] | None = None  # a date condition ("a 1950 edition", "before 1900")
    year_rule: str = ""
    year_text: str = ""  # the words that state it ("from 1998-2000"), to tell it from a title's own years
    formats: frozenset[str] = frozenset()  # format values a format word asks for ("audiobook" -> sound)
    format_words: tuple[str, ...] = ()  # the words themselves, to say which one is not held
    copy_conditions: tuple[str, ...] = ()  # COPY_CONDITION_RULES names
    services: tuple[str, ...] = ()  # SERVICE_RULES names
    collection_level: bool = False
    parts: tuple[str, ...] = ()  # PART_RULES names: the question asks for one part or a sequel of a work
    quoted_title: str = ""  # a title given in quotes
    subject_terms: tuple[str, ...] = ()  # key terms without the words that state conditions or services

    @property
    def conditions_stated(self) -> bool:
        return bool(self.years or self.formats or self.copy_conditions or self.parts or self.quoted_title)

    @property
    def rule_routed(self) -> bool:
        return bool(self.intents) and INTENTS_BY_NAME[self.intents[0]].rule_routed

    @property
    def wanted_fields(self) -> list[str]:
        return [label for name in self.intents for label in INTENTS_BY_NAME[name].fields]


def analyse(question: str) -> Question:
    from assistant.answering.query import format_words, formats, year_range, year_span

    found = intents(question)
    years, year_rule = year_range(question)
    span = year_span(question)
    if "date" not in found and years is not None:
        found.append("date")  # "editions before 1900": each record's own date answers the condition
    quoted = QUOTED_TITLE.search(question)
    return Question(
        question,
        tuple(found),
        tuple(key_terms(question)),
        tuple(names(question)),
        years=years,
        year_rule=year_rule,
        year_text=question[span[0] : span[1]] if span else "",
        formats=formats(question),
        format_words=format_words(question),
        copy_conditions=_names_of(COPY_CONDITION_RULES, question),
        services=_names_of(SERVICE_RULES, question),
        collection_level=COLLECTION_LEVEL.search(question) is not None,
        parts=_names_of(PART_RULES, question)
        if asked_part(question) or "sequel" in _names_of(PART_RULES, question)
        else (),
        quoted_title=quoted.group(1).strip() if quoted else "",
        subject_terms=tuple(key_terms(without_conditions(question))),
    )


def without_conditions(question: str) -> str:
    """The question less what states a condition or a service (years, formats, "signed", "a scan", "sequel",
    a part number): what is left names the work or collection it is about."""
    from assistant.answering.query import FORMAT_WORDS, year_span

    span = year_span(question)
    text = question[: span[0]] + " " + question[span[1] :] if span else question
    for rule in (*SERVICE_RULES, *COPY_CONDITION_RULES):
        text = rule.pattern.sub(" ", text)
    for rule in PART_RULES:
        text = rule.pattern.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] if m.groups() else " ", text)
    for word in FORMAT_WORDS:
        text = re.sub(rf"\b{re.escape(word)}\b", " ", text, flags=re.I)
    return text


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

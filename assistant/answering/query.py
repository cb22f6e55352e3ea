"""Query understanding without an LLM: the preferences a question states about what it wants, as data.

Years and ranges ("before 1900", "in 1995", "1950s", "March 2017") become a year preference; format words
(paperback, journal, map, score, recording, photograph …) a format preference; "archived / captured / web
page" prefers web archives, "finding aid / box / folder / papers" archival components; "in Hebrew",
"French books" a language. These are preferences (a boost in ranking), never hard filters: only the filters a
person sets explicitly exclude anything. Each table below is unit-tested row by row (tests/test_query.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pycountry

MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"

# (pattern, (from, to) as a function of the match): tried in order, the first that matches wins.
YEAR_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("between", re.compile(r"\b(?:between|from)\s+(1[5-9]\d\d|20\d\d)\s*(?:and|to|-|–)\s*(1[5-9]\d\d|20\d\d)\b", re.I)),
    ("range", re.compile(r"\b(1[5-9]\d\d|20\d\d)\s*(?:-|–|to)\s*(1[5-9]\d\d|20\d\d)\b", re.I)),
    ("decade", re.compile(r"\b(?:the\s+)?(1[5-9]\d|20\d)0'?s\b", re.I)),
    ("century", re.compile(r"\b(1[5-9]|20|21)(?:th|st)[\s-]century\b", re.I)),
    ("before", re.compile(r"\b(?:before|earlier than|prior to|until|up to|pre-?)\s*(1[5-9]\d\d|20\d\d)\b", re.I)),
    # "from 1915 on": onwards; "an edition from 1915" is one year (the "in" rule below).
    (
        "after",
        re.compile(
            r"\b(?:after|since|later than|post-?)\s*(1[5-9]\d\d|20\d\d)\b"
            r"|\bfrom\s+(1[5-9]\d\d|20\d\d)\s*(?:on\b|onwards?\b|or later\b)",
            re.I,
        ),
    ),
    ("edition", re.compile(r"\b(1[5-9]\d\d|20\d\d)\s+(?:edition|printing|issue|version|copy|one|release)\b", re.I)),
    ("in", re.compile(rf"\b(?:in|of|from|during|dated|(?:{MONTHS}))\s+(1[5-9]\d\d|20\d\d)\b", re.I)),
)

# format word -> the format values readers write (MARC leader formats, WARC/PDF formats). Archival components
# are not mapped: "photographs" in a finding aid is a folder's subject, and every folder of a collection
# would otherwise outrank the collection record.
FORMAT_WORDS: dict[str, tuple[str, ...]] = {
    "book": ("book",),
    "books": ("book",),
    "paperback": ("book",),
    "novel": ("book",),
    "journal": ("serial",),
    "journals": ("serial",),
    "periodical": ("serial",),
    "magazine": ("serial",),
    "serial": ("serial",),
    "map": ("map",),
    "maps": ("map",),
    "atlas": ("map",),
    "score": ("score",),
    "scores": ("score",),
    "sheet music": ("score",),
    "audiobook": ("sound",),
    "audio book": ("sound",),
    "recording": ("music recording", "sound"),
    "recordings": ("music recording", "sound"),
    "album": ("music recording",),
    "cd": ("music recording",),
    "lp": ("music recording",),
    "record album": ("music recording",),
    "video": ("video",),
    "film": ("video",),
    "dvd": ("video",),
    "photograph": ("image",),
    "photographs": ("image",),
    "photos": ("image",),
    "manuscript": ("manuscript",),
    "letters": ("manuscript",),
    "web page": ("web page",),
    "website": ("web page",),
}

# words -> the source types they prefer
SOURCE_TYPE_WORDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\b(archived|captured|crawled|wayback|web ?(page|site)s?|websites?|snapshot)\b", re.I), ("warc",)),
    (re.compile(r"\b(finding aids?|box(es)?|folders?|papers|fonds|archival|collection of)\b", re.I), ("ead", "pdf")),
    (
        re.compile(r"\b(isbn|issn|call number|catalogue record|catalog record|edition|published)\b", re.I),
        ("marc", "dc"),
    ),
)

LANGUAGE_PATTERN = re.compile(
    r"\b(?:in|into)\s+([A-Z][a-z]+)\b|\b([A-Z][a-z]+)[- ](?:language|books|titles|editions|translations?)\b"
)


@dataclass(frozen=True)
class QueryPreferences:
    years: tuple[int, int] | None = None
    year_rule: str = ""
    formats: frozenset[str] = field(default_factory=frozenset)
    source_types: frozenset[str] = field(default_factory=frozenset)
    language: str = ""  # an English language name, as the readers store it ("German")

    def __bool__(self) -> bool:
        return bool(self.years or self.formats or self.source_types or self.language)

    def as_filters(self) -> list:
        """The preferences as retrieval filters (used for one extra candidate list, never to exclude)."""
        from assistant.answering.filters import Filter

        out = []
        if self.years:
            out += [Filter("year", ">=", self.years[0]), Filter("year", "<=", self.years[1])]
        if self.formats:
            out.append(Filter("format", "in", tuple(sorted(self.formats))))
        if self.source_types:
            out.append(Filter("source_type", "in", tuple(sorted(self.source_types))))
        if self.language:
            out.append(Filter("language", "=", self.language))
        return out

    def met_by(self, meta: dict) -> int:
        """How many of the stated preferences a chunk's metadata meets (0 when none is stated)."""
        met = 0
        if self.years:
            year = meta.get("year")
            if isinstance(year, int) and self.years[0] <= year <= self.years[1]:
                met += 1
        if self.formats and str(meta.get("format", "")) in self.formats:
            met += 1
        if self.source_types and str(meta.get("source_type", "")) in self.source_types:
            met += 1
        if self.language and str(meta.get("language", "")) == self.language:
            met += 1
        return met


def year_span(question: str) -> tuple[int, int] | None:
    """Where in the question its year condition is stated (to tell the condition from what it is about)."""
    for _name, pattern in YEAR_RULES:
        match = pattern.search(question)
        if match:
            return match.span()
    return None


def year_range(question: str) -> tuple[tuple[int, int] | None, str]:
    for name, pattern in YEAR_RULES:
        match = pattern.search(question)
        if not match:
            continue
        if name in ("between", "range"):
            a, b = int(match.group(1)), int(match.group(2))
            return (min(a, b), max(a, b)), name
        if name == "decade":
            start = int(match.group(1)) * 10
            return (start, start + 9), name
        if name == "century":
            start = (int(match.group(1)) - 1) * 100
            return (start, start + 99), name
        year = int(next(g for g in match.groups() if g))
        if name == "before":
            return (0, year - 1), name
        if name == "after":
            return (year + 1, 9999) if "from" not in match.group(0).lower() else (year, 9999), name
        return (year, year), name
    return None, ""


def format_words(question: str) -> tuple[str, ...]:
    low = question.lower()
    return tuple(word for word in FORMAT_WORDS if re.search(rf"\b{re.escape(word)}\b", low))


def formats(question: str) -> frozenset[str]:
    return frozenset(value for word in format_words(question) for value in FORMAT_WORDS[word])


def source_types(question: str) -> frozenset[str]:
    found: set[str] = set()
    for pattern, types in SOURCE_TYPE_WORDS:
        if pattern.search(question):
            found.update(types)
    return frozenset(found)


def language(question: str) -> str:
    """An English language name the question asks for ("in Hebrew", "French books"), as readers store it."""
    for match in LANGUAGE_PATTERN.finditer(question):
        word = match.group(1) or match.group(2)
        if len(word) < 4:
            continue
        try:
            lang = pycountry.languages.lookup(word)
        except LookupError:
            continue
        if str(lang.name).lower() == word.lower():  # a name, not a code that happens to match
            return str(lang.name)
    return ""


def understand(question: str) -> QueryPreferences:
    from assistant.answering.questions import COLLECTION_LEVEL

    years, rule = year_range(question)
    # "What is in the X records, how big is it?" prefers the collection-level record to its folders.
    collection = frozenset({"collection"}) if COLLECTION_LEVEL.search(question) else frozenset()
    return QueryPreferences(
        years=years,
        year_rule=rule,
        formats=formats(question) | collection,
        source_types=source_types(question),
        language=language(question),
    )

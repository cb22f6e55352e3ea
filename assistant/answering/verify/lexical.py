"""Lexical support: the checkable facts of a sentence must appear in the text it cites.

Numbers, years and dates, quoted strings, identifiers (ISBN, call numbers) and capitalised
names are the things a small model gets wrong; each must be found in the cited chunk(s)
after normalisation (case, diacritics, digit grouping, ISBN hyphens, month names).
"""

from __future__ import annotations

import re
import unicodedata

from assistant.answering.verify.base import SentenceCheck
from assistant.core.text import STOPWORDS, fold, word_set, words  # noqa: F401 - fold is this module's API too

MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        1,
    )
}
MONTHS.update({k[:3]: v for k, v in list(MONTHS.items())})
MONTHS["sept"] = 9

QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{3,200})[\"“”«»]")
NUMBER = re.compile(r"(?<![\w.])\d[\d,.\-–/]*\d(?![\w])|(?<![\w.])\d(?![\w])")
IDENTIFIER = re.compile(r"\b(?=[\w.\-]*\d)(?=[\w.\-]*[A-Za-z])[A-Za-z0-9][\w.\-]*[A-Za-z0-9]\b")
CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*\w")


def strip_marks(text: str) -> str:
    """Diacritics off, case kept: romanised names carry combining marks (MARC-8's "k̲h̲") that break words."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def alnum(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", fold(text))


def numbers_in(text: str) -> set[str]:
    """Every digit run, and digit runs joined across grouping/ISBN punctuation, leading zeros dropped."""
    # Bare digit runs too: "c2002", "v.427", "p1985" hold numbers glued to letters.
    out: set[str] = {run.lstrip("0") or "0" for run in re.findall(r"\d+", text)}
    for match in NUMBER.finditer(text):
        token = match.group(0)
        for part in re.split(r"[^\d]", token):
            if part:
                out.add(part.lstrip("0") or "0")
        joined = re.sub(r"[,\-–]", "", token)  # 1,000 -> 1000 ; 0-7868-0877-2 -> 0786808772
        if joined.isdigit():
            out.add(joined.lstrip("0") or "0")
    return out


class LexicalVerifier:
    name = "lexical"

    def __init__(self, min_coverage: float = 0.5):
        self.min_coverage = min_coverage

    def reasons(self, check: SentenceCheck) -> list[str]:
        source = " \n ".join(c.text for c in check.cited)
        folded = fold(source)
        source_words = word_set(folded, folded=True)
        source_numbers = numbers_in(source)
        source_alnum = alnum(source)
        missing: list[str] = []
        sentence = strip_marks(check.text)

        for quoted in QUOTED.findall(sentence):
            if alnum(quoted) and alnum(quoted) not in source_alnum:
                missing.append(f'"{quoted}"')
        for ident in IDENTIFIER.findall(sentence):
            if alnum(ident) not in source_alnum:
                missing.append(ident)
        checked_spans = [m.span() for m in IDENTIFIER.finditer(sentence)]
        for match in NUMBER.finditer(sentence):
            if any(a <= match.start() < b for a, b in checked_spans):
                continue
            token = match.group(0).strip(".,-–/")
            joined = re.sub(r"\D", "", token).lstrip("0") or "0"
            runs = {p.lstrip("0") or "0" for p in re.split(r"\D", token) if p}
            if joined not in source_numbers and not runs <= source_numbers:
                missing.append(token)
        for match in CAPITALISED.finditer(sentence):
            word = match.group(0)
            key = fold(re.sub(r"['’]s$", "", word))
            if key in STOPWORDS or any(a <= match.start() < b for a, b in checked_spans):
                continue
            if key in MONTHS:
                if key in source_words or str(MONTHS[key]) in source_numbers:
                    continue
                missing.append(word)
                continue
            if not all(part in source_words for part in words(key, folded=True)):
                missing.append(word)
        out = []
        if missing:
            unique = list(dict.fromkeys(missing))
            out.append("not in the cited source: " + ", ".join(unique[:8]))
        content = [w for w in words(sentence) if len(w) >= 4 and w.isalpha() and w not in STOPWORDS]
        if content:
            # Prefix match tolerates inflection ("published" ~ "publisher") without a stemmer.
            found = sum(
                1 for w in content if w in source_words or any(s.startswith(w[:5]) for s in source_words if len(s) >= 4)
            )
            if found / len(content) < self.min_coverage:
                out.append(f"only {found} of {len(content)} content words found in the cited source")
        return out

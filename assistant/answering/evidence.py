"""Evidence-first answers: the fields and sentences of the retrieved records that answer the question.

Each evidence sentence quotes its source and cites it, so it is supported by construction
(it still goes through the citation checker like any other sentence). Question types that a
rule recognises reliably (identifier look-ups, "which box", "when was it captured") are routed
here without the LLM.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from assistant.answering.query import FORMAT_WORDS
from assistant.answering.questions import (  # noqa: F401 - intents/rule_routed are this module's API too
    INTENTS_BY_NAME,
    Question,
    analyse,
    intents,
    key_terms,
    names,
    rule_routed,
)
from assistant.core.text import fold, stem, word_set
from assistant.core.types import Source

# Fields quoted when the question names none of a record's fields.
DEFAULT_FIELDS = ("Author", "Creator", "Published", "Edition", "Date", "Dates", "Location", "Call number", "Summary")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")


@dataclass(frozen=True)
class EvidenceThresholds:
    """The numbers the evidence rules use, named (tests/test_rule_tables.py)."""

    min_coverage: float = 0.5  # share of the question's key terms a source must hold to be evidence at all
    min_names_share: float = 0.5  # share of the names the question is about that a source must name
    prefix_chars: int = 5  # "photograph" ~ "photographic": words agreeing on this many first letters match
    title_words: int = 6  # a title's first content words compared with the question
    full_title_words: int = 2  # a title shorter than this says less about which record is meant
    max_fields: int = 3  # fields quoted from one record
    max_sources: int = 3  # records quoted in one answer
    best_sentences: int = 2  # sentences quoted from a record without fields
    min_sentence_words: int = 4
    window_words: int = 40  # an unpunctuated page's "sentence" is cut to this many words …
    window_lead_words: int = 5  # … starting this many before the first word the question asks about
    known_item_title: float = 0.75  # title_share from which a question names a work (its conditions apply to it)


THRESHOLDS = EvidenceThresholds()


@dataclass
class Evidence:
    n: int
    text: str  # a sentence quoting the source, without its marker


@dataclass(frozen=True)
class Held:
    """A text folded once, with its words and their stems, asked many times whether it holds a term."""

    folded: str
    words: frozenset[str]
    stems: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Held:
        folded = fold(text)
        words = frozenset(word_set(folded, folded=True))
        return cls(folded, words, frozenset(stem(w) for w in words))

    def holds(self, term: str, t: EvidenceThresholds = THRESHOLDS) -> bool:
        """Exactly, by stem, or by a long prefix; a hyphenated label as a phrase."""
        if "-" in term:
            return re.search(rf"(?<![^\W_]){re.escape(term)}(?![^\W_])", self.folded) is not None
        if term in self.words or stem(term) in self.stems:
            return True
        n = t.prefix_chars
        return len(term) >= n and any(w.startswith(term[:n]) for w in self.words if len(w) >= n)


def coverage(question: str | Question, source: Source, t: EvidenceThresholds = THRESHOLDS) -> float:
    """Share of the question's key terms found in the source (title, locator and text); 0 when the
    source names too few of the names the question is about, or only names where a kind of material is asked for."""
    q = question if isinstance(question, Question) else analyse(question)
    if not q.key_terms:
        return 0.0
    held = Held.of(f"{source.title}\n{source.locator}\n{source.text}")
    if q.names and sum(held.holds(n) for n in q.names) < len(q.names) * t.min_names_share:
        return 0.0
    covered = {term for term in q.key_terms if held.holds(term)}
    kinds = [term for term in q.key_terms if term in FORMAT_WORDS and term not in q.names]
    if kinds and not covered.intersection(kinds) and covered <= set(q.names) and not _names_title(q, source):
        # The question asks for a kind of material (maps, photographs, recordings …) and the source matches
        # only its names: "maps of Paris" is not a book by B. J. Paris. A record whose title is those names
        # ("Summerland as an audiobook") is the work asked for, in another format: a condition, checked later.
        return 0.0
    # Words that state a condition ("signed", "audiobook", "1950") are checked as conditions, not counted here.
    subject = q.subject_terms or q.key_terms
    return sum(term in covered or held.holds(term) for term in subject) / len(subject)


def _names_title(q: Question, source: Source) -> bool:
    held = Held.of(source.title)
    return bool(q.names) and all(held.holds(n) for n in q.names)


def title_share(q: Question, title: str) -> float:
    """Share of what the question is about that a title holds: "Pride and Prejudice from the 1930s" names
    every "Pride and prejudice : a novel", not "The Jane Austen collection"."""
    terms = q.subject_terms or q.key_terms
    if not terms:
        return 0.0
    held = Held.of(title)
    return sum(held.holds(term) for term in terms) / len(terms)


def subject_share(q: Question, text: str, t: EvidenceThresholds = THRESHOLDS) -> float:
    """Share of what the question is about that a record's text holds anywhere (title, contents, notes): the
    1932 "The novels of Jane Austen" holds "Pride and prejudice" in its contents; a 2005 "Pride and
    prejudice" does not hold "Readings on Pride and prejudice"."""
    terms = q.subject_terms or q.key_terms
    if not terms:
        return 0.0
    held = Held.of(text)
    return sum(held.holds(term, t) for term in terms) / len(terms)


def title_match(question: str, title: str, t: EvidenceThresholds = THRESHOLDS) -> float:
    """Share of a title's first content words that the question names: known-item questions
    ("the call number of Programming Python") name their title."""
    folded_q, q = _question_words(question)
    title_terms = _title_terms(title)[: t.title_words]
    if not title_terms:
        return 0.0
    found = sum(
        (re.search(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", folded_q) is not None) if "-" in w else stem(w) in q
        for w in title_terms
    )
    # A one-word title ("Photographs") says less about which record is meant than a full one.
    return found / len(title_terms) * min(1.0, len(title_terms) / t.full_title_words)


# Retrieval scores every candidate's title against one question: both sides are computed once.
@lru_cache(maxsize=256)
def _question_words(question: str) -> tuple[str, frozenset[str]]:
    folded = fold(question)
    return folded, frozenset(stem(w) for w in word_set(folded, folded=True))


@lru_cache(maxsize=65536)
def _title_terms(title: str) -> tuple[str, ...]:
    return tuple(key_terms(title))


def _label(source: Source) -> str:
    return source.title.strip().rstrip(".") or source.record_id


def _cap(sentence: str, terms: set[str] | None = None, t: EvidenceThresholds = THRESHOLDS) -> str:
    """Pages without punctuation (navigation, lists) make 'sentences' of hundreds of words: keep a window
    of them, starting a little before the first word the question asks about."""
    parts = sentence.split()
    size = t.window_words
    if len(parts) <= size:
        return sentence
    start = 0
    for i, part in enumerate(parts):
        held = Held.of(part)
        if terms and any(held.holds(term) for term in terms):
            start = max(0, min(i - t.window_lead_words, len(parts) - size))
            break
    window = " ".join(parts[start : start + size])
    return ("… " if start else "") + window + (" …" if start + size < len(parts) else "")


def _best_sentences(q: Question, text: str, t: EvidenceThresholds = THRESHOLDS) -> list[str]:
    terms = set(q.key_terms)
    scored = []
    for i, sentence in enumerate(SENTENCE.split(re.sub(r"\s*\n\s*", " ", text))):
        sentence = sentence.strip()
        if len(sentence.split()) < t.min_sentence_words:
            continue
        held = Held.of(sentence)
        overlap = sum(held.holds(term) for term in terms)
        if overlap:
            scored.append((-overlap, i, sentence))
    return [_cap(s, terms, t) for _, _, s in sorted(scored)[: t.best_sentences]]


# --- The evidence rules: tried in priority order, the first that finds something answers for the source. ---


def _capture_date(q: Question, source: Source, t: EvidenceThresholds) -> list[str]:
    """'When was … captured?': the capture date and address of an archived page."""
    if "capture" not in q.intents or not source.captured:
        return []
    return [f"{_label(source)} was captured {source.captured} ({source.url or source.locator})"]


def _quote_fields(source: Source, chosen: list[tuple[str, str]], fields: list[tuple[str, str]], t) -> list[str]:
    # A component's own title ("Title: A-C") says which part of the collection the field belongs to.
    own = next((v for k, v in fields if k == "Title"), "")
    if own and chosen and fold(own) not in fold(_label(source)):
        chosen.insert(0, ("Title", own))
    seen, picked = set(), []
    for k, v in chosen:
        if (k, v) not in seen:
            seen.add((k, v))
            picked.append(f"{k}: {v}")
        if len(picked) >= t.max_fields:
            break
    return [f"{_label(source)} — " + "; ".join(picked)] if picked else []


def _fields(source: Source) -> list[tuple[str, str]]:
    return source.record_fields()


# A collection as a whole: what a reference archivist reads out first, in this order.
COLLECTION_OVERVIEW_FIELDS = (
    "Extent", "Dates", "Abstract", "Scope and content", "Access restrictions", "Digital object", "Creator",
)  # fmt: skip
MAX_OVERVIEW_FIELDS = 4


def _collection_overview(q: Question, source: Source, t: EvidenceThresholds) -> list[str]:
    """'What is in the X records, how big is it?': the collection record's extent, dates, scope, access."""
    if not q.collection_level or source.format != "collection":
        return []
    fields = dict(reversed(_fields(source)))  # the first value of each label
    order = [k for k in q.wanted_fields if k in COLLECTION_OVERVIEW_FIELDS] + list(COLLECTION_OVERVIEW_FIELDS)
    picked = list(dict.fromkeys(k for k in order if k in fields))[:MAX_OVERVIEW_FIELDS]
    return [f"{_label(source)} — " + "; ".join(f"{k}: {fields[k]}" for k in picked)] if picked else []


def _fields_asked_for(q: Question, source: Source, t: EvidenceThresholds) -> list[str]:
    """The record's fields that the question's intents name ("Who wrote …" -> Author)."""
    wanted = q.wanted_fields
    fields = _fields(source)
    # In the order the intents name them ("a 1999 edition": the date before a second ISBN), each label's
    # values in record order.
    chosen = sorted(((k, v) for k, v in fields if k in wanted), key=lambda kv: wanted.index(kv[0]))
    return _quote_fields(source, chosen, fields, t) if wanted else []


def _fields_in_question_words(q: Question, source: Source, t: EvidenceThresholds) -> list[str]:
    """No field named by an intent: fields that use the question's own words ("Who founded…" -> "Note:
    Founded and … edited by …"), then the usual ones."""
    fields = _fields(source)
    label_terms = _field_words(_label(source))
    terms = [term for term in q.key_terms if term not in label_terms]
    chosen = [(k, v) for k, v in fields if k != "Title" and any(term in _field_words(v) for term in terms)]
    chosen += [(k, v) for k, v in fields if k in DEFAULT_FIELDS]
    return _quote_fields(source, chosen, fields, t)


def _field_words(value: str) -> set[str]:
    """Words of a field value, a hyphenated label ("A-C") as one word."""
    return set(re.findall(r"[^\W_]+(?:-[^\W_]+)*", fold(value)))


def _best_sentences_quoted(q: Question, source: Source, t: EvidenceThresholds) -> list[str]:
    """Sentences of the record's text that hold the most key terms (pages, PDF pages, text sections, and
    records whose fields answered nothing)."""
    body = source.text
    if source.title and body.startswith(source.title):
        body = body[len(source.title) :]  # chunks repeat their record's title as a first line
    best = _best_sentences(q, body, t)
    if source.source_type == "warc" and source.captured:
        # Archived pages speak for the day they were captured.
        return [f"As of {source.captured}, {_label(source)} said: “{s.rstrip('.')}”" for s in best]
    return [f"{_label(source)}: “{s.rstrip('.')}”" for s in best]


@dataclass(frozen=True)
class EvidenceRule:
    name: str
    priority: int  # lower is tried first
    build: Callable[[Question, Source, EvidenceThresholds], list[str]]


EVIDENCE_RULES: tuple[EvidenceRule, ...] = (
    EvidenceRule("capture_date", 10, _capture_date),
    EvidenceRule("collection_overview", 15, _collection_overview),
    EvidenceRule("fields_asked_for", 20, _fields_asked_for),
    EvidenceRule("fields_in_question_words", 30, _fields_in_question_words),
    EvidenceRule("best_sentences", 40, _best_sentences_quoted),
)


def evidence_rule_for(question: str | Question, source: Source, t: EvidenceThresholds = THRESHOLDS):
    """(name of the rule that answered, its sentences), or ("", []) when none did."""
    q = question if isinstance(question, Question) else analyse(question)
    for rule in sorted(EVIDENCE_RULES, key=lambda r: r.priority):
        found = rule.build(q, source, t)
        if found:
            return rule.name, found
    return "", []


def evidence_for(question: str | Question, source: Source, t: EvidenceThresholds = THRESHOLDS) -> list[str]:
    """Sentences quoting this source that answer the question (empty if nothing fits)."""
    return evidence_rule_for(question, source, t)[1]


@dataclass
class Gathered:
    """What the records say for a question: quoted evidence, and what to say about its conditions."""

    evidence: list[Evidence]
    conditions: list  # conditions.ConditionResult, by priority


def select_evidence(question: str, sources: list[Source], t: EvidenceThresholds = THRESHOLDS) -> list[Evidence]:
    return gather(question, sources, t).evidence


def gather(question: str | Question, sources: list[Source], t: EvidenceThresholds = THRESHOLDS) -> Gathered:
    from assistant.answering.conditions import apply_conditions

    q = question if isinstance(question, Question) else analyse(question)
    out: list[Evidence] = []
    used_records: set[str] = set()
    seen_texts: set[str] = set()
    covered = {s.n: coverage(q, s, t) for s in sources}
    # Key-term coverage first, the title the question names second.
    match = {
        s.n: (round(covered[s.n], 6), round(title_match(q.text, s.title, t), 6))
        for s in sources
        if covered[s.n] >= t.min_coverage
    }
    whole_record = False
    collections = [s for s in sources if s.n in match and s.format == "collection"]
    if q.collection_level and collections:
        # "What is in the X records, how big is it?": the collection record answers before any folder, from
        # all its retrieved chunks (its summary fields and its scope note are chunked apart).
        top = max(collections, key=lambda s: match[s.n])
        match = {s.n: match[top.n] for s in collections if s.record_id == top.record_id}
        whole_record = True
    # Conditions (a year, a format, a part …): only the records that meet them answer, when any does. When the
    # question names a work, they are checked on that work's records: a DVD of another title does not make
    # "The novels of Jane Austen on DVD" held.
    candidates = set(match)
    if q.conditions_stated:
        # The work's own records (its title named) and records that hold all of it (a collected edition
        # whose contents list it); another work by the same author is neither.
        named = {
            s.n
            for s in sources
            if s.n in match and (covered[s.n] >= 1.0 or title_share(q, s.title) >= t.known_item_title)
        }
        candidates = named or candidates
    meeting, conditions = apply_conditions(q, sources, candidates)
    match = {n: m for n, m in match.items() if n in meeting}
    best = max(match.values(), default=(0.0, 0.0))
    for source in sources:
        if len(used_records) >= t.max_sources:
            break
        # Only the records that match the question best (key terms, then the title it names): a near
        # miss (another edition, a sibling folder) is not evidence for this question.
        if (source.record_id in used_records and not whole_record) or match.get(source.n) != best:
            continue
        if whole_record and source.record_id in used_records:
            found = _collection_overview(q, source, t)  # further chunks add overview fields, nothing else
        else:
            found = evidence_for(q, source, t)
        texts = [text for text in found if text not in seen_texts]
        if texts:
            used_records.add(source.record_id)
            seen_texts.update(texts)
            out.extend(Evidence(source.n, text) for text in texts)
    return Gathered(out, conditions if out else [])

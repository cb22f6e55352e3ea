"""Evidence-first answers: the fields and sentences of the retrieved records that answer the question.

Each evidence sentence quotes its source and cites it, so it is supported by construction
(it still goes through the citation checker like any other sentence). Question types that a
rule recognises reliably (identifier look-ups, "which box", "when was it captured") are routed
here without the LLM.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.core.types import Source
from assistant.answering.verify.lexical import STOPWORDS, fold

# Question intent -> field labels (as the readers write them) that answer it.
INTENTS: list[tuple[str, re.Pattern, tuple[str, ...]]] = [
    ("issn", re.compile(r"\bissn\b", re.I), ("ISSN",)),
    ("isbn", re.compile(r"\bisbn\b", re.I), ("ISBN",)),
    ("call_number", re.compile(r"\bcall ?numbers?\b|\bshelf ?mark\b|\bwhere (is|are|can i find) .* shel", re.I), ("Call number",)),
    ("container", re.compile(r"\bwhich (box|folder)\b|\b(box|folder|container)\b|\bwhere (is|are)\b.*\b(papers|files|photographs|letters|records)\b", re.I),
     ("Location", "Container", "Box", "Folder")),
    ("capture", re.compile(r"\b(captured|archived|crawled|snapshot|wayback)\b", re.I), ("captured",)),
    ("author", re.compile(r"\bwho (wrote|is the author|authored|created|composed|made|edited)\b|\bauthor|\bcreator\b|\bby whom\b", re.I),
     ("Author", "Corporate author", "Creator", "Other contributor", "Performers")),
    ("publisher", re.compile(r"\bpublish(ed|er|ing)?\b|\bimprint\b", re.I), ("Published", "Publisher", "Edition")),
    ("edition", re.compile(r"\beditions?\b", re.I), ("Edition", "Published", "Year")),
    ("date", re.compile(r"\bwhen\b|\bwhat year\b|\bdates?\b|\byears?\b", re.I), ("Year", "Date", "Dates", "Published",
                                                                              "Dates of publication")),
    ("subject", re.compile(r"\babout\b|\bsubjects?\b|\btopics?\b", re.I), ("Summary", "Subject", "Scope and content")),
    ("extent", re.compile(r"\bhow (many|long|big|thick|large)\b|\bpages?\b|\bsize\b|\bextent\b|\bphysical", re.I),
     ("Physical description", "Extent")),
    ("contents", re.compile(r"\bcontents?\b|\bwhat(?:'s| is| are)? in\b|\bwhich \w+ (are|is) (in|included)\b|\bincluded\b|"
                            r"\btracks?\b|\bsongs?\b|\bchapters?\b", re.I), ("Contents", "Scope and content")),
]
# Identifier look-ups and locations: the record answers them, the LLM adds nothing.
RULE_ROUTED = {"issn", "isbn", "call_number", "container", "capture"}
DEFAULT_FIELDS = ("Author", "Creator", "Published", "Edition", "Date", "Dates", "Location", "Call number", "Summary")
LINE = re.compile(r"^\s*([A-Z][\w /()-]{1,40}?)\s*:\s*(.+?)\s*$")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")
QUESTION_STOPWORDS = STOPWORDS | set("""
have hold held holds find show tell give list need want looking look anything something materials material item items
library libraries catalogue catalog collections collection copy copies available there please whose which wrote write
written kind sort type""".split())


@dataclass
class Evidence:
    n: int
    text: str  # a sentence quoting the source, without its marker


def intents(question: str) -> list[str]:
    return [name for name, pattern, _ in INTENTS if pattern.search(question)]


def rule_routed(question: str) -> bool:
    found = intents(question)
    return bool(found) and found[0] in RULE_ROUTED


def key_terms(question: str) -> list[str]:
    """Content words of the question, plus hyphenated labels such as "A-C" (a folder range)."""
    folded = fold(question)
    hyphenated = re.findall(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b", folded)
    words = [w for w in re.findall(r"[a-z0-9]{3,}", re.sub(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b", " ", folded))
             if w not in QUESTION_STOPWORDS]
    return hyphenated + words


def _stem(word: str) -> str:
    """Crude English suffix stripping, enough for "dates" ~ "date", "published" ~ "publish"."""
    for suffix in ("ings", "ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _covers(term: str, words: set[str], text: str) -> bool:
    if "-" in term:
        return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", text) is not None
    if term in words or _stem(term) in {_stem(w) for w in words}:
        return True
    return len(term) >= 5 and any(w.startswith(term[:5]) for w in words if len(w) >= 5)


def names(question: str) -> list[str]:
    """Capitalised words after the first one: the names a question is about ("maps of Paris")."""
    words = [re.sub(r"['’]s$", "", w) for w in re.findall(r"[A-Za-z][\w'’-]*", question)[1:]]
    return [fold(w) for w in words if w[0].isupper() and fold(w) not in QUESTION_STOPWORDS and len(w) > 1]


def coverage(question: str, source: Source) -> float:
    """Share of the question's key terms found in the source (title, locator and text); 0 when the
    source names none of the names the question is about (half of them at least)."""
    terms = key_terms(question)
    if not terms:
        return 0.0
    text = fold(f"{source.title}\n{source.locator}\n{source.text}")
    words = set(re.findall(r"[a-z0-9]+", text))
    named = names(question)
    if named and sum(_covers(n, words, text) for n in named) < len(named) / 2:
        return 0.0
    return sum(_covers(t, words, text) for t in terms) / len(terms)


def title_match(question: str, title: str) -> float:
    """Share of a title's first content words that the question names: known-item questions
    ("the call number of Programming Python") name their title."""
    folded_q = fold(question)
    q = {_stem(w) for w in re.findall(r"[a-z0-9]+", folded_q)}
    words = key_terms(title)[:6]
    if not words:
        return 0.0
    found = sum((re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", folded_q) is not None) if "-" in w
                else _stem(w) in q for w in words)
    # A one-word title ("Photographs") says less about which record is meant than a full one.
    return found / len(words) * min(1.0, len(words) / 2)



def _fields(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            out.append((match.group(1).strip(), match.group(2).strip().rstrip(".")))
    return out


def _best_sentences(question: str, text: str, limit: int = 2) -> list[str]:
    terms = set(key_terms(question))
    scored = []
    for i, sentence in enumerate(SENTENCE.split(re.sub(r"\s*\n\s*", " ", text))):
        sentence = sentence.strip()
        if len(sentence.split()) < 4:
            continue
        folded = fold(sentence)
        words = set(re.findall(r"[a-z0-9]+", folded))
        overlap = sum(_covers(t, words, folded) for t in terms)
        if overlap:
            scored.append((-overlap, i, sentence))
    return [_cap(s, terms) for _, _, s in sorted(scored)[:limit]]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", fold(text)))


def _cap(sentence: str, terms: set[str] | None = None, words: int = 40) -> str:
    """Pages without punctuation (navigation, lists) make 'sentences' of hundreds of words: keep
    `words` of them, starting a little before the first word the question asks about."""
    parts = sentence.split()
    if len(parts) <= words:
        return sentence
    start = 0
    for i, part in enumerate(parts):
        folded = fold(part)
        if terms and any(_covers(t, set(re.findall(r"[a-z0-9]+", folded)), folded) for t in terms):
            start = max(0, min(i - 5, len(parts) - words))
            break
    window = " ".join(parts[start:start + words])
    return ("… " if start else "") + window + (" …" if start + words < len(parts) else "")


def _label(source: Source) -> str:
    return source.title.strip().rstrip(".") or source.record_id


def evidence_for(question: str, source: Source, max_fields: int = 3) -> list[str]:
    """Sentences quoting this source that answer the question (empty if nothing fits)."""
    wanted: list[str] = []
    for name in intents(question):
        wanted.extend(next(f for n, _, f in INTENTS if n == name))
    if "captured" in wanted and source.locator.startswith("captured"):
        return [f"{_label(source)} was {source.locator.split(' — ')[0]} ({source.locator.split(' — ')[-1]})"]
    fields = _fields(source.text)
    if fields:
        chosen = [(k, v) for k, v in fields if k in wanted] if wanted else []
        if not chosen:
            # No field named by the question's intent: fields that use the question's own words
            # ("Who founded…" -> "Note: Founded and … edited by …"), then the usual ones.
            label_terms = set(_words(_label(source)))
            terms = [t for t in key_terms(question) if t not in label_terms]
            chosen = [(k, v) for k, v in fields if k != "Title" and any(t in _words(v) for t in terms)]
            chosen += [(k, v) for k, v in fields if k in DEFAULT_FIELDS]
        # A component's own title ("Title: A-C") says which part of the collection the field belongs to.
        own = next((v for k, v in fields if k == "Title"), "")
        if own and chosen and fold(own) not in fold(_label(source)):
            chosen.insert(0, ("Title", own))
        seen, picked = set(), []
        for k, v in chosen:
            if (k, v) not in seen:
                seen.add((k, v))
                picked.append(f"{k}: {v}")
            if len(picked) >= max_fields:
                break
        if picked:
            return [f"{_label(source)} — " + "; ".join(picked)]
    body = source.text
    if source.title and body.startswith(source.title):
        body = body[len(source.title):]  # chunks repeat their record's title as a first line
    best = _best_sentences(question, body)
    if source.source_type == "warc" and source.locator.startswith("captured "):
        # Archived pages speak for the day they were captured.
        as_of = source.locator[len("captured "):].split(" — ")[0]
        return [f"As of {as_of}, {_label(source)} said: “{s.rstrip('.')}”" for s in best]
    return [f"{_label(source)}: “{s.rstrip('.')}”" for s in best]


def select_evidence(question: str, sources: list[Source], max_sources: int = 3) -> list[Evidence]:
    out: list[Evidence] = []
    used_records: set[str] = set()
    seen_texts: set[str] = set()
    covered = {s.n: coverage(question, s) for s in sources}
    # Key-term coverage first, the title the question names second.
    match = {s.n: (round(covered[s.n], 6), round(title_match(question, s.title), 6))
             for s in sources if covered[s.n] >= 0.5}
    best = max(match.values(), default=(0.0, 0.0))
    for source in sources:
        if len(used_records) >= max_sources:
            break
        # Only the records that match the question best (key terms, then the title it names): a near
        # miss (another edition, a sibling folder) is not evidence for this question.
        if source.record_id in used_records or match.get(source.n) != best:
            continue
        texts = [t for t in evidence_for(question, source) if t not in seen_texts]
        if texts:
            used_records.add(source.record_id)
            seen_texts.update(texts)
            out.extend(Evidence(source.n, t) for t in texts)
    return out

"""The catalogue as the reference checker sees it: one entry per catalogue record (and per finding-aid
collection), rebuilt from the stored chunks, with an identifier index and a title-word index."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath

from assistant.core.text import STOPWORDS, fold, words
from assistant.core.text import record_fields as fields_in_text
from assistant.core.types import fields_from_metadata, public_link, structured_provenance
from assistant.refcheck.parse import YEAR_RE, normalise_isbn

ARTICLES = {"the", "a", "an", "le", "la", "les", "l", "der", "die", "das", "el", "los", "las", "il", "lo", "de"}
SUBTITLE_SEP = re.compile(r"\s*[:;]\s+|\s+[:;=]\s*|\s+[-–—]\s+|\s*[.]\s+(?=[a-z])")
AUTHOR_FIELDS = ("Author", "Corporate author", "Creator", "Other contributor", "Performers")


def norm_title(text: str) -> str:
    title_words = words(fold(text).replace("&", " and "), folded=True)  # any script: Cyrillic, Greek, CJK too
    while title_words and title_words[0] in ARTICLES and len(title_words) > 1:
        title_words = title_words[1:]
    return " ".join(title_words)


def split_title(title: str) -> tuple[str, str]:
    """Main title and subtitle: "Rereading George Eliot : changing responses…" -> both parts."""
    title = re.split(r"\s+/\s*", title)[0]  # statement of responsibility
    parts = SUBTITLE_SEP.split(title, maxsplit=1)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def name_words(name: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]+", fold(name)) if len(w) >= 2}


def surname(name: str) -> set[str]:
    """Words of the family name: "Chabon, Michael" -> {chabon}; "Michael Chabon" -> {chabon}."""
    name = name.strip()
    if "," in name:
        return name_words(name.split(",")[0])
    words = [w for w in re.findall(r"[^\W\d_][\w'-]*", name) if len(w) > 1 or not w.isupper()]
    return name_words(words[-1]) if words else set()


@dataclass
class CatalogueRecord:
    key: str  # source_file + record id: unique across files
    source_type: str
    record_id: str
    title: str
    alt_titles: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    years: set[int] = field(default_factory=set)  # every year the record gives (008, imprint, copyright)
    publisher: str = ""
    isbns: set[str] = field(default_factory=set)
    issns: set[str] = field(default_factory=set)
    call_number: str = ""
    link: str = ""  # a public link: the configured catalogue URL, else refdesk's /record page
    source_file: str = ""  # the file's base name, never the server's path
    edition: str = ""

    def as_dict(self) -> dict:
        return {
            "source_type": self.source_type,
            "record_id": self.record_id,
            "title": self.title,
            "authors": self.authors,
            "year": self.year,
            "publisher": self.publisher,
            "edition": self.edition,
            "call_number": self.call_number,
            "link": self.link,
            "isbns": sorted(self.isbns),
            "source_file": self.source_file,
        }


def _record_from_chunks(chunks: list) -> CatalogueRecord | None:
    chunks.sort(key=lambda c: int(c.metadata.get("position", 0) or 0))
    meta = chunks[0].metadata
    fields: dict[str, list[str]] = defaultdict(list)
    for chunk in chunks:
        stored = fields_from_metadata(chunk.metadata)
        for label, value in fields_in_text(chunk.text) if stored is None else stored:
            value = value.strip().rstrip(".").strip()
            if value and value not in fields[label]:
                fields[label].append(value)
    source_type = str(meta.get("source_type", ""))
    if source_type == "ead":
        if not fields.get("Collection number") and not fields.get("Collection"):
            return None
        title = fields.get("Collection", [str(meta.get("title", ""))])[0]
        if "(" in title and fields.get("Title"):  # a component repeats "Collection: X (ID)"
            return None
    else:
        title = (fields.get("Title") or [str(meta.get("title", ""))])[0]
    if not title:
        return None
    year = meta.get("year")
    texts = fields.get("Year", []) + fields.get("Published", []) + fields.get("Dates", []) + [str(meta.get("date", ""))]
    years = {int(y) for y in YEAR_RE.findall(" ".join(texts))}
    if not isinstance(year, int):
        year = min(years) if years else None
    if year:
        years.add(year)
    published = (fields.get("Published") or [""])[0]
    publisher = re.sub(r"^[^:]*:\s*", "", published) if ":" in published else published
    publisher = YEAR_RE.sub("", re.sub(r",?\s*[cp]?(?=\d{4})", " ", publisher)).strip(" ,.[]")
    call = (fields.get("Call number") or [""])[0] or structured_provenance(meta)["call_number"]
    return CatalogueRecord(
        key=f"{meta.get('source_file', '')}\x1f{meta.get('record_id', '')}",
        source_type=source_type,
        record_id=str(meta.get("record_id", "")),
        title=title,
        alt_titles=fields.get("Variant title", []) + fields.get("Uniform title", []),
        authors=[a for f in AUTHOR_FIELDS for a in fields.get(f, [])],
        year=year,
        years=years,
        publisher=publisher,
        isbns={n for v in fields.get("ISBN", []) if (n := normalise_isbn(v.split()[0] if v.split() else v))},
        issns={v.split()[0] for v in fields.get("ISSN", []) if v.split()},
        call_number=call,
        link=public_link(str(meta.get("link", "")), chunks[0].id),
        source_file=PurePath(str(meta.get("source_file", ""))).name,
        edition=(fields.get("Edition") or [""])[0],
    )


class Catalogue:
    """Built once from the store (a few seconds for tens of thousands of chunks), then queried in memory."""

    def __init__(self, records: list[CatalogueRecord]):
        self.records = {r.key: r for r in records}
        self.by_isbn: dict[str, set[str]] = defaultdict(set)
        self.by_issn: dict[str, set[str]] = defaultdict(set)
        self.by_word: dict[str, set[str]] = defaultdict(set)
        for r in records:
            for n in r.isbns:
                self.by_isbn[n].add(r.key)
            for n in r.issns:
                self.by_issn[n].add(r.key)
            for title in [r.title, *r.alt_titles]:
                for word in self.title_words(title):
                    self.by_word[word].add(r.key)
        total = max(len(records), 1)
        self.idf = {w: math.log(1 + total / len(keys)) for w, keys in self.by_word.items()}

    @staticmethod
    def title_words(title: str) -> set[str]:
        return {w for w in norm_title(title).split() if len(w) >= 3 and w not in STOPWORDS}

    @classmethod
    def from_store(cls, store) -> Catalogue:
        grouped: dict[str, list] = defaultdict(list)
        for chunk in store.iter_chunks(where={"source_type": {"$in": ["marc", "ead"]}}):
            meta = chunk.metadata
            if meta.get("source_type") == "ead" and not _collection_level(meta):
                continue
            grouped[f"{meta.get('source_file', '')}\x1f{meta.get('record_id', '')}"].append(chunk)
        records = [r for chunks in grouped.values() if (r := _record_from_chunks(chunks))]
        return cls(records)

    def by_title_words(self, title: str, limit: int = 200) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for word in self.title_words(title):
            for key in self.by_word.get(word, ()):
                scores[key] += self.idf[word]
        return [k for k, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:limit]]


def _collection_level(meta: dict) -> bool:
    """The finding aid's own record (its id is the file name), not one of its components."""
    return str(meta.get("record_id", "")) == PurePath(str(meta.get("source_file", ""))).name

"""Typed records shared by ingest, the store, answering and the front ends."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import Literal
from urllib.parse import quote, urlparse

from pydantic import BaseModel, Field

from assistant.core.text import record_fields as fields_in_text

SOURCE_TYPES = ("text", "marc", "ead", "pdf", "warc")
# Source types whose readers keep labelled fields (RecordField). An archived page's "Windows: download …" or a
# text file's "Note: …" is prose that happens to hold a colon, not a catalogue field.
FIELDED_SOURCE_TYPES = frozenset({"marc", "dc", "ead"})


class Provenance(BaseModel):
    """Where a chunk comes from, in the words a librarian cites it with."""

    source_type: str
    record_id: str
    title: str = ""
    locator: str = ""  # "Box 3, Folder 12", "p. 14", "captured 2008-04-30"
    link: str = ""  # OPAC record / finding aid / replay URL
    date: str = ""
    source_file: str = ""
    # Structured, so that no rule parses them back out of the locator:
    captured: str = ""  # web archives: when the page was captured ("2008-04-30 20:50 UTC")
    container: str = ""  # finding aids: "Box 3, Folder 12"
    call_number: str = ""  # catalogue records: the first call number

    def metadata(self) -> dict[str, str]:
        return self.model_dump()


# Fielded search text a reader takes from the record's own structure (MARC tags, EAD elements, page titles),
# for the lexical index: "title", "names", "subjects", "identifiers" (one per line, as written). The body is
# the chunk's text; "collection" holds the series and collection a component or page sits in (weighed less than
# its own title, so a collection-level question finds the collection record, not its thousand folders).
# Stored with every chunk as search_<field> metadata, so the index can be rebuilt.
SEARCH_FIELDS = ("title", "names", "subjects", "identifiers", "collection")

FilterValue = str | int | float
Filters = dict[str, FilterValue]  # chunk metadata a retrieval filter can test (year, format, language …)

# A record's labelled fields as its reader read them from the record's structure, in record order:
# ("Author", "Chabon, Michael"), ("Published", "New York : Random House, 2000"), ("Extent", "47.25 linear feet").
# The text shows them as "Label: value" lines; answers read them from here, never back out of the text.
RecordField = tuple[str, str]


def fielded_text(fields: list[RecordField]) -> str:
    """The display text of labelled fields, one "Label: value" line each."""
    return "\n".join(f"{label}: {value}" for label, value in fields)


def fields_from_metadata(meta: dict) -> list[RecordField] | None:
    """A stored chunk's fields; None for a chunk stored before fields were kept (its text is all there is)."""
    raw = meta.get("fields")
    if not isinstance(raw, str) or not raw:
        return None
    return [(str(label), str(value)) for label, value in json.loads(raw)]


class SourceRecord(BaseModel):
    """One catalogue record, finding-aid component, PDF page, archived page or text section."""

    provenance: Provenance
    text: str
    extra: dict[str, str] = Field(default_factory=dict)  # attribution and the like, not stored per chunk
    # Stored with every chunk as metadata usable as a retrieval filter (format, year, language...).
    filters: Filters = Field(default_factory=dict)
    search: dict[str, str] = Field(default_factory=dict)  # SEARCH_FIELDS -> text
    fields: list[RecordField] = Field(default_factory=list)  # catalogue records and finding aids: see RecordField


class SkippedRecord(BaseModel):
    """A record a reader could not read; the rest of the file goes on."""

    path: str
    record: str  # position or id of the record, "" for the whole file
    reason: str

    def line(self) -> str:
        where = f"{self.path}" + (f" [{self.record}]" if self.record else "")
        return f"{where}: {self.reason}"


PROVENANCE_KEYS = frozenset(Provenance.model_fields) | {"content_hash", "position", "fields"}


class Ignored(BaseModel):
    """A record a reader deliberately leaves out (redirect, image, robots.txt…): counted by reason, not an error."""

    reason: str


class AlsoCaptured(BaseModel):
    """The same content seen again (a WARC revisit or an identical payload): one more capture date."""

    record_id: str
    date: str
    via: str = "revisit"  # "revisit" record, or "duplicate" payload of a response
    source_file: str = ""  # the file whose record holds the content, when not this file
    record_here: str = ""  # this sighting's own record id (a re-read file's old chunks for it are stale)


def structured_provenance(meta: dict) -> dict[str, str]:
    """captured / container / call_number / collection / url of a stored chunk's metadata.

    Stores written before these fields existed hold them only inside the locator, in the form the readers
    wrote it ("captured <when> — <uri>", "<title> — call number <n>"); this is the one place that reads them
    back from there, so old stores keep working until their files are ingested again."""
    out = {key: str(meta.get(key) or "") for key in ("captured", "container", "call_number", "collection")}
    out["url"] = str(meta.get("uri") or "")
    locator = str(meta.get("locator") or "")
    if not out["captured"] and meta.get("source_type") == "warc" and locator.startswith("captured "):
        out["captured"] = locator[len("captured ") :].split(" — ")[0]
    if not out["call_number"] and meta.get("source_type") == "marc" and " — call number " in locator:
        out["call_number"] = locator.split(" — call number ", 1)[1]
    return out


def public_link(link: str, chunk_id: str) -> str:
    """The link a browser (anyone's) may follow: an http(s) catalogue, finding-aid or replay URL as it is;
    anything else (a file:// link, which would show the server's paths) becomes refdesk's own record page."""
    if link and urlparse(link).scheme in ("http", "https"):
        return link
    if chunk_id and not chunk_id.startswith("context-"):
        return f"/record?chunk={quote(chunk_id)}"
    return ""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Chunk(BaseModel):
    """A piece of a record as stored: its id is a hash of where it came from and what it says."""

    id: str
    text: str
    content_hash: str
    provenance: Provenance
    position: int = 0  # index of the chunk within its record
    filters: Filters = Field(default_factory=dict)
    search: dict[str, str] = Field(default_factory=dict)
    # The record's fields whose line starts in this chunk ([] for a chunk of a fielded record that starts none);
    # None for text without fields (pages, PDF pages).
    fields: list[RecordField] | None = None

    @classmethod
    def make(
        cls,
        text: str,
        provenance: Provenance,
        position: int = 0,
        filters: Filters | None = None,
        search: dict[str, str] | None = None,
        fields: list[RecordField] | None = None,
    ) -> Chunk:
        digest = content_hash(text)
        key = "\x1f".join((provenance.source_file, provenance.source_type, provenance.record_id, digest))
        chunk_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return cls(
            id=chunk_id,
            text=text,
            content_hash=digest,
            provenance=provenance,
            position=position,
            filters=dict(filters or {}),
            search={k: v for k, v in (search or {}).items() if k in SEARCH_FIELDS and v},
            fields=None if fields is None else list(fields),
        )

    def metadata(self) -> Filters:
        meta: Filters = {k: v for k, v in self.filters.items() if k not in PROVENANCE_KEYS}
        meta.update(self.provenance.metadata())
        meta["content_hash"] = self.content_hash
        meta["position"] = self.position
        for key, value in self.search.items():
            meta[f"search_{key}"] = value
        if self.fields is not None:
            # Chroma metadata values are scalars: the fields travel as one JSON list of [label, value] pairs.
            meta["fields"] = json.dumps(self.fields, ensure_ascii=False)
        return meta


class Source(BaseModel):
    """A retrieved chunk as shown to the user, numbered [n] in the prompt and the answer."""

    n: int
    chunk_id: str
    source_type: str
    record_id: str
    title: str = ""
    locator: str = ""
    link: str = ""
    date: str = ""
    source_file: str = ""
    score: float = 0.0
    text: str = ""
    content_hash: str = ""
    captures: list[str] = Field(default_factory=list)  # archived content: every capture time it was seen
    captured: str = ""  # see Provenance
    container: str = ""
    call_number: str = ""
    collection: str = ""  # the finding aid's or web collection's title
    url: str = ""  # an archived page's own address (its link is the replay)
    matched_by: str = ""  # retrieval: "identifier", "lexical", "dense", or "lexical+dense"
    year: int | None = None  # the record's year, as a filter holds it
    format: str = ""  # book, serial, sound, collection, archival component, web page … as a filter holds it
    files: list[str] = Field(default_factory=list)  # every file this record was read from (MARC and MARCXML)
    # The record's labelled fields (RecordField); None when its chunks were stored before fields were kept.
    fields: list[RecordField] | None = None

    def record_fields(self) -> list[RecordField]:
        """The record's labelled fields as its reader stored them. A chunk stored before fields were kept has
        them only as its text's "Label: value" lines, read back here until its file is ingested again."""
        if self.source_type not in FIELDED_SOURCE_TYPES:
            return []
        if self.fields is None:
            return fields_in_text(self.text)
        return [(label, value.strip().rstrip(".")) for label, value in self.fields]  # as fields_in_text reads them

    # The whole record's chunks (id, content hash) in order, when text holds all of them (answering/records.py)
    record_chunks: list[tuple[str, str]] = Field(default_factory=list)


SentenceStatus = Literal["supported", "unsupported"]
# generated: written by the LLM; evidence: quoted from a record by refdesk; template: a plain lead with no claim.
SentenceKind = Literal["generated", "evidence", "template"]


class Sentence(BaseModel):
    text: str  # with its valid [n] markers only
    citations: list[int] = Field(default_factory=list)  # valid [n] only
    status: SentenceStatus = "unsupported"
    reasons: list[str] = Field(default_factory=list)  # why it is unsupported (or which markers were dropped)
    dropped_markers: list[int] = Field(default_factory=list)
    shown: bool = False  # supported, or unsupported but shown flagged (verify.unsupported = "flag")
    kind: SentenceKind = "generated"


class Answer(BaseModel):
    question: str
    resolved_question: str = ""  # a follow-up read with its conversation ("Who published it? (summerland)")
    answer: str = ""
    final: bool = True  # False for the evidence answer streamed before the model's lead may be added
    # What the answer says before its evidence, as data: "year:not_met", "part:not_found", "signed:silent",
    # "service:scan" (answering/conditions.py); evaluations score these, not the wording.
    notices: list[str] = Field(default_factory=list)
    refused: bool = False
    error: str = ""  # e.g. the LLM server is down; sources are still shown
    sentences: list[Sentence] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    invalid_markers: int = 0
    handoff_offered: bool = False  # refused or nothing supported: offer "Ask a librarian"
    # Set by a front end when it offers the hand-off: the one-use token "Ask a librarian" spends (never public).
    handoff_token: str = ""
    timings: dict[str, float] = Field(default_factory=dict)

    def public_dict(self, web: bool = False) -> dict:
        """The `refdesk ask --json` contract. web=True (the HTTP API): links anyone may follow (the
        configured catalogue URL, else refdesk's /record page) and files by base name, never a server path."""

        def link(source: Source) -> str:
            return public_link(source.link, source.chunk_id) if web else source.link

        return {
            "answer": self.answer,
            **({"resolved_question": self.resolved_question} if self.resolved_question else {}),
            **({"notices": self.notices} if self.notices else {}),
            "refused": self.refused,
            "error": self.error,
            "invalid_markers": self.invalid_markers,
            "handoff_offered": self.handoff_offered,
            "sentences": [
                {
                    "text": s.text,
                    "citations": s.citations,
                    "status": s.status,
                    "reasons": s.reasons,
                    "kind": s.kind,
                    "shown": s.shown,
                }
                for s in self.sentences
            ],
            "sources": [
                {
                    "n": s.n,
                    "chunk_id": s.chunk_id,
                    "source_type": s.source_type,
                    "record_id": s.record_id,
                    "title": s.title,
                    "locator": s.locator,
                    "link": link(s),
                    "source_file": PurePath(s.source_file).name,
                    **({"files": [PurePath(f).name for f in s.files]} if len(s.files) > 1 else {}),
                    "date": s.date,
                    "score": round(s.score, 4),
                    "text": s.text,
                    **({"captures": s.captures} if s.captures else {}),
                }
                for s in self.sources
            ],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

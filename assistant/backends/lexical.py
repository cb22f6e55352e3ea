"""The fielded lexical index beside Chroma: SQLite FTS5 with per-field BM25 weights, plus exact identifiers.

Why SQLite FTS5 (README: Retrieval): it is in Python's standard library, persistent and incremental (a chunk
is added or deleted by itself, so a million records are never re-indexed from scratch), it weighs fields
in bm25() the way a catalogue's search spec does, and it needs no server. bm25s would hold the index in
memory and rebuild it on change.

The index is written by ChunkStore.add/delete, so it holds exactly the chunk ids the store holds, in the
same ingest. It also keeps each chunk's text and metadata, which retrieval reads for its ~100 candidates:
Chroma answers the nearest ids and vectors in ~2 ms but their metadata in ~20 ms (its key-value rows plus
llama-index's copy of the node), a primary-key read here takes ~1 ms. When its file is missing (a new app host beside a Chroma server, or an upgrade) it is rebuilt
from the store's metadata (search_<field>), which every chunk carries."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.core.text import STOPWORDS, fold, hyphenated, words
from assistant.core.types import SEARCH_FIELDS

INDEXED = (*SEARCH_FIELDS, "body")
SCHEMA_VERSION = "4"  # 2: the collection field; 3: each chunk's text and metadata, and its facets
# The metadata stated preferences filter on (answering/query.py), in columns of their own so that checking
# hundreds of candidates decodes nothing.
FACET_KEYS = ("year", "format", "language", "source_type")
# Keys llama-index adds to what Chroma stores: not the chunk's own metadata.
NODE_KEYS = frozenset({"_node_content", "_node_type", "document_id", "doc_id", "ref_doc_id"})
# Words a question uses to ask: never worth a lexical match (they match every record).
QUERY_STOPWORDS = STOPWORDS | frozenset(
    """do does have hold holds held find need want looking look tell give show any copy copies available please
    who what which where when how wrote written write published publisher isbn issn call number box folder
    anything something library libraries""".split()
)
MAX_QUERY_TERMS = 24
# With a rank budget, a long question (a dataset's whole description pasted in) scores its rarest words
# only: they carry nearly all of the BM25 weight, and each scored word is one more posting list to walk.
MAX_SCORED_TERMS = 12
# (chunk id, source type, search fields, body text, the chunk's metadata as stored in Chroma)
IndexRow = tuple[str, str, dict[str, str], str, dict]


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    source_type: str
    score: float  # higher is better (negated bm25)


def normalise_identifier(value: str) -> str:
    """ISBN-10 and -13 to ISBN-13 digits, ISSN to its 8 characters, anything else folded to letters and digits."""
    from stdnum import isbn, issn

    compact = re.sub(r"[\s\-.:]", "", value).upper()
    if len(compact) in (10, 13) and isbn.is_valid(compact):
        return "isbn" + isbn.to_isbn13(compact).replace("-", "")
    if len(compact) == 8 and issn.is_valid(compact):
        return "issn" + compact
    return re.sub(r"[^0-9a-z]", "", fold(value))


def identifier_candidates(text: str) -> list[str]:
    """Strings in a question that may be identifiers: ISBN/ISSN-shaped numbers, call-number and unitid-like
    tokens (letters with digits), URLs. Normalised as the index stores them."""
    found = re.findall(r"\b(?:97[89][\d\- ]{10,14}|\d[\d\- ]{8,11}[\dXx])\b", text)  # ISBN-10/13
    found += re.findall(r"\b\d{4}-\d{3}[\dXx]\b", text)  # ISSN
    found += re.findall(r"https?://\S+", text)
    found += re.findall(r"\b(?=[A-Za-z.]*\d)(?=[\d.]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9.\-]{2,}\b", text)
    # Call numbers are several tokens ("PR4034 .P7 1996"): every run of 2-4 tokens holding a digit is tried as
    # one identifier too. Only exact equality with a stored identifier counts, so extra tries cost nothing.
    tokens = text.split()
    for size in (2, 3, 4):
        for i in range(len(tokens) - size + 1):
            span = " ".join(tokens[i : i + size])
            if any(ch.isdigit() for ch in span):
                found.append(span)
    out = []
    for value in found:
        key = normalise_identifier(value.strip(" .,;?"))
        if len(key) >= 3 and key not in out:
            out.append(key)
    return out


class LexicalIndex:
    def __init__(self, path: Path, weights: dict[str, float] | None = None, rank_budget: int = 0):
        self.path = path
        self.weights = {field: 1.0 for field in INDEXED} | (weights or {})
        self.rank_budget = rank_budget  # 0: every chunk with any of the words is ranked
        # Per term, capped past the budget: emptied on every write here. Writes by another process (an ingest
        # beside the app) leave them a little stale, which only moves the line between rare and common words.
        self.doc_counts: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not path.exists()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()  # the store thread writes while the app reads
        self.db.execute("PRAGMA journal_mode=WAL")
        if not self.created:
            row = None
            try:
                row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            except sqlite3.OperationalError:
                pass
            if row is None or row[0] != SCHEMA_VERSION:
                # An index of another layout: dropped here, rebuilt from the store when the store opens it.
                self.db.executescript(
                    "DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS idents; DROP TABLE IF EXISTS docs; "
                    "DROP TABLE IF EXISTS meta;"
                )
        self.db.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS docs(rowid INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, source_type TEXT,
                year INTEGER, format TEXT, language TEXT, document TEXT, metadata TEXT);
            CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5({", ".join(INDEXED)},
                tokenize="unicode61 remove_diacritics 2");
            CREATE TABLE IF NOT EXISTS idents(key TEXT, rowid INTEGER);
            CREATE INDEX IF NOT EXISTS idents_key ON idents(key);
            CREATE INDEX IF NOT EXISTS idents_rowid ON idents(rowid);
            INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');
            """
        )

    def close(self) -> None:
        self.db.close()

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM docs").fetchone()[0])

    def add(self, rows: Iterable[IndexRow]) -> None:
        """A chunk id already indexed is replaced."""
        rows = list(rows)
        if not rows:
            return
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self._delete([r[0] for r in rows])
                for chunk_id, source_type, fields, body, metadata in rows:
                    cur = self.db.execute(
                        "INSERT INTO docs(chunk_id, source_type, year, format, language, document, metadata) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (chunk_id, source_type, *_facet_values(metadata), body, _metadata_json(metadata)),
                    )
                    rowid = cur.lastrowid
                    values = [fields.get(f, "") for f in SEARCH_FIELDS] + [body]
                    self.db.execute(
                        f"INSERT INTO fts(rowid, {', '.join(INDEXED)}) VALUES (?, {', '.join('?' * len(INDEXED))})",
                        (rowid, *values),
                    )
                    keys = {normalise_identifier(v) for v in fields.get("identifiers", "").splitlines() if v.strip()}
                    self.db.executemany("INSERT INTO idents VALUES (?, ?)", [(k, rowid) for k in keys if len(k) >= 3])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def delete(self, chunk_ids: Sequence[str]) -> None:
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self._delete(chunk_ids)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _delete(self, chunk_ids: Sequence[str]) -> None:
        self.doc_counts.clear()
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ", ".join("?" * len(part))
            rowids = [r[0] for r in self.db.execute(f"SELECT rowid FROM docs WHERE chunk_id IN ({marks})", part)]
            if not rowids:
                continue
            rmarks = ", ".join("?" * len(rowids))
            self.db.execute(f"DELETE FROM fts WHERE rowid IN ({rmarks})", rowids)
            self.db.execute(f"DELETE FROM idents WHERE rowid IN ({rmarks})", rowids)
            self.db.execute(f"DELETE FROM docs WHERE rowid IN ({rmarks})", rowids)

    def records(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        """(text, metadata) of the given chunks that are indexed."""
        out: dict[str, tuple[str, dict]] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ", ".join("?" * len(part))
            for chunk_id, document, metadata in self.db.execute(
                f"SELECT chunk_id, document, metadata FROM docs WHERE chunk_id IN ({marks})", part
            ):
                out[chunk_id] = (document or "", json.loads(metadata or "{}"))
        return out

    def facets(self, chunk_ids: Sequence[str]) -> dict[str, dict]:
        """The FACET_KEYS (those set) of the given chunks that are indexed."""
        out: dict[str, dict] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            marks = ", ".join("?" * len(part))
            for chunk_id, *values in self.db.execute(
                f"SELECT chunk_id, year, format, language, source_type FROM docs WHERE chunk_id IN ({marks})", part
            ):
                out[chunk_id] = {k: v for k, v in zip(FACET_KEYS, values, strict=True) if v is not None}
        return out

    def update_metadata(self, metadata_by_id: dict[str, dict]) -> None:
        """Replaces stored chunks' metadata (ChunkStore.add_captures changes Chroma's the same way)."""
        with self.lock:
            self.db.executemany(
                "UPDATE docs SET year = ?, format = ?, language = ?, metadata = ? WHERE chunk_id = ?",
                [(*_facet_values(meta), _metadata_json(meta), cid) for cid, meta in metadata_by_id.items()],
            )

    def exact(self, question: str, limit: int = 20) -> list[LexicalHit]:
        """Chunks holding an identifier the question names (ISBN, ISSN, call number, unitid, URL)."""
        keys = identifier_candidates(question)
        if not keys:
            return []
        marks = ", ".join("?" * len(keys))
        rows = self.db.execute(
            f"SELECT DISTINCT d.chunk_id, d.source_type FROM idents i JOIN docs d ON d.rowid = i.rowid "
            f"WHERE i.key IN ({marks}) LIMIT ?",
            (*keys, limit),
        ).fetchall()
        return [LexicalHit(cid, stype, float("inf")) for cid, stype in rows]

    def search(self, question: str, limit: int = 50) -> list[LexicalHit]:
        """BM25 over the fields, weighted; any of the question's content words may match (OR)."""
        terms = [w for w in words(question) if w not in QUERY_STOPWORDS and (len(w) > 1 or w.isdigit())]
        # A hyphenated label ("A-C", "1939-1945") is a phrase of its parts: single letters alone match nothing.
        terms += [" ".join(words(label, folded=True)) for label in hyphenated(question)]
        terms = list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]
        if not terms:
            return []
        if self.rank_budget:
            terms, rare = self._budgeted(terms)
            if not terms:
                return []  # no word is in the index, or every one is in more chunks than the budget
            match = _any_of(terms)
            if len(rare) < len(terms):
                # Every term still scores (bm25 sees them all), but only chunks holding a rarer one are ranked.
                match = f"({_any_of(rare)}) AND ({match})"
        else:
            match = _any_of(terms)
        weights = ", ".join(str(float(self.weights[f])) for f in INDEXED)
        rows = self.db.execute(
            f"SELECT d.chunk_id, d.source_type, bm25(fts, {weights}) AS rank FROM fts JOIN docs d ON d.rowid = fts.rowid "
            "WHERE fts MATCH ? ORDER BY rank LIMIT ?",
            (match, limit),
        ).fetchall()
        return [LexicalHit(cid, stype, -float(rank)) for cid, stype, rank in rows]

    def _budgeted(self, terms: list[str]) -> tuple[list[str], list[str]]:
        """(the terms to score, the rarest of them to rank chunks by). A term in more than rank_budget chunks
        is left out (its BM25 weight is next to nothing, its posting list long); a term in none is of no use.
        The rarest are taken while together they are in at most rank_budget chunks, at least one."""
        for term in terms:
            if term not in self.doc_counts:
                # Counting stops past the budget: a term in most chunks costs no more to count than a rare one.
                row = self.db.execute(
                    "SELECT count(*) FROM (SELECT rowid FROM fts WHERE fts MATCH ? LIMIT ?)",
                    (_any_of([term]), self.rank_budget + 1),
                ).fetchone()
                self.doc_counts[term] = int(row[0])
        useful = [t for t in terms if 0 < self.doc_counts[t] <= self.rank_budget]
        if len(useful) > MAX_SCORED_TERMS:
            kept = set(sorted(useful, key=lambda t: self.doc_counts[t])[:MAX_SCORED_TERMS])
            useful = [t for t in useful if t in kept]
        rare: list[str] = []
        total = 0
        for term in sorted(useful, key=lambda t: self.doc_counts[t]):
            total += self.doc_counts[term]
            if rare and total > self.rank_budget:
                break
            rare.append(term)
        return useful, rare

    def rebuild(self, chunks: Iterable) -> int:
        """Index every stored chunk (StoredChunk: id, text, metadata) again; returns how many."""
        with self.lock:
            self.db.executescript("DELETE FROM fts; DELETE FROM idents; DELETE FROM docs;")
        return self.index_stored(chunks)

    def copies(self, page: int = 1000) -> Iterator[tuple[str, str, dict]]:
        """Every indexed chunk as it was stored: (id, text, metadata with its search_<field> values put back
        from the index's columns; a chunk with no title of its own has the record title it was searched by), in
        the order indexed. Pages by rowid (no offset scans); for `store repair`, which embeds them again when
        Chroma's vector index is lost."""
        columns = ", ".join(f"f.{name}" for name in SEARCH_FIELDS)
        after = 0
        while True:
            with self.lock:
                rows = self.db.execute(
                    f"SELECT d.rowid, d.chunk_id, d.document, d.metadata, {columns} FROM docs d "
                    "JOIN fts f ON f.rowid = d.rowid WHERE d.rowid > ? ORDER BY d.rowid LIMIT ?",
                    (after, page),
                ).fetchall()
            if not rows:
                return
            for _rowid, chunk_id, document, metadata, *fields in rows:
                meta = json.loads(metadata or "{}")
                meta.update(
                    {f"search_{name}": value for name, value in zip(SEARCH_FIELDS, fields, strict=True) if value}
                )
                yield chunk_id, document or "", meta
            after = rows[-1][0]

    def ids(self) -> set[str]:
        with self.lock:
            return {row[0] for row in self.db.execute("SELECT chunk_id FROM docs")}

    def index_stored(self, chunks: Iterable) -> int:
        """Indexes chunks read back from the store (StoredChunk); returns how many."""
        n, batch = 0, []
        for chunk in chunks:
            meta = chunk.metadata
            fields = {f: str(meta.get(f"search_{f}") or "") for f in SEARCH_FIELDS}
            fields["title"] = fields["title"] or str(meta.get("title") or "")
            if meta.get("source_type") == "ead" and "\n" in fields["title"] and not fields["collection"]:
                # Chunks stored by a reader of schema 1 held "own title \n series \n collection" as the title.
                fields["title"], _, fields["collection"] = fields["title"].partition("\n")
            batch.append((chunk.id, str(meta.get("source_type") or ""), fields, chunk.text, meta))
            if len(batch) >= 1000:
                self.add(batch)
                n += len(batch)
                batch = []
        self.add(batch)
        return n + len(batch)


def copied_metadata(meta: dict) -> dict:
    """What the index keeps of a chunk's stored metadata: not llama-index's node keys, not the search_<field>
    values (the index's own columns hold them; a rebuild reads them from the store)."""
    return {k: v for k, v in meta.items() if k not in NODE_KEYS and not k.startswith("search_")}


def _metadata_json(meta: dict) -> str:
    return json.dumps(copied_metadata(meta), ensure_ascii=False)


def _facet_values(meta: dict) -> tuple:
    year = meta.get("year")
    return (
        year if isinstance(year, int) and not isinstance(year, bool) else None,
        *(str(meta[k]) if meta.get(k) is not None else None for k in ("format", "language")),
    )


def _any_of(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of the terms, each a quoted phrase."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def rows_for(chunks) -> list[IndexRow]:
    """Index rows for Chunks about to be stored; a chunk with no title field is searched by its record title."""
    rows = []
    for chunk in chunks:
        fields = dict(chunk.search)
        fields.setdefault("title", chunk.provenance.title)
        rows.append((chunk.id, chunk.provenance.source_type, fields, chunk.text, chunk.metadata()))
    return rows

"""Hybrid retrieval: exact identifiers first, then reciprocal-rank fusion of the fielded lexical index
(backends/lexical.py) and the embedding (Chroma's nearest ids, their records read from the lexical index's
copy), with the question's stated
preferences (answering/query.py) and a known-item title boost, balanced so that no source type crowds out
the rest by its count. Every candidate gets its cosine to the question, whichever list found it, so the
refusal threshold means the same thing for all of them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from assistant.answering.evidence import subject_share, title_match
from assistant.answering.query import understand, year_span
from assistant.answering.questions import analyse
from assistant.core.settings import RetrievalSettings
from assistant.core.types import FIELDED_SOURCE_TYPES, Source, fields_from_metadata, structured_provenance

IDENTIFIER_BONUS = 10.0  # above any fused score: a named identifier is the record asked for


@dataclass
class Candidate:
    chunk_id: str
    text: str = ""
    meta: dict = field(default_factory=dict)
    cosine: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None
    preferred_rank: int | None = None  # rank among the chunks meeting the question's stated preferences
    identifier: bool = False
    score: float = 0.0
    files: list[str] = field(default_factory=list)  # every file the same record's same text came from

    @property
    def matched_by(self) -> str:
        if self.identifier:
            return "identifier"
        return "+".join(n for n, r in (("lexical", self.lexical_rank), ("dense", self.dense_rank)) if r is not None)


class Retriever:
    def __init__(self, store, embedder, settings: RetrievalSettings | None = None):
        self.store = store
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    @property
    def lexical(self):
        return getattr(self.store, "lexical", None) if self.settings.hybrid else None

    def retrieve(self, question: str, k: int, timings: dict[str, float] | None = None, filters=None) -> list[Source]:
        """filters: a list of assistant.answering.filters.Filter, all of which must hold."""
        timings = timings if timings is not None else {}
        t0 = time.perf_counter()
        # Embedded here (not inside the retriever) so the stages are timed apart.
        embedding = self.embedder.get_query_embedding(question)
        t1 = time.perf_counter()
        timings["embed_query"] = t1 - t0
        wide = max(k * 3, self.settings.candidates)
        prefs = understand(question)
        preferring = bool(prefs) and self.lexical is not None
        pool = self._nearest(embedding, self.settings.preference_pool if preferring else wide, filters)
        candidates = self._candidates(pool[:wide])
        if self.lexical is not None:
            self._lexical(question, embedding, wide, filters, candidates)
            if preferring:
                # The records that meet what the question states (a decade, a format, a language) as a third
                # ranked list: they may be far down both others among hundreds of editions of one title.
                merge_preferred(candidates, self._preferred(pool, wide, prefs.as_filters()))
        timings["retrieve"] = time.perf_counter() - t1
        ranked = one_per_record(self._fuse(question, list(candidates.values()), prefs))
        chosen = self._balanced(ranked, k)
        timings["fuse"] = time.perf_counter() - t1 - timings["retrieve"]
        return [
            make_source(n, c.chunk_id, c.text, c.meta, c.cosine or 0.0).model_copy(
                update={"matched_by": c.matched_by, "files": c.files}
            )
            for n, c in enumerate(chosen, 1)
        ]

    def _nearest(self, embedding, n: int, filters) -> list[tuple[str, float]]:
        from assistant.answering.filters import to_chroma_where

        return self.store.query(embedding, n, to_chroma_where(filters or []))

    def _candidates(self, nearest: list[tuple[str, float]]) -> dict[str, Candidate]:
        """Dense candidates, ranked in the order given, with their stored text and metadata."""
        stored = self.store.get([cid for cid, _ in nearest])
        ranked = [(cid, cosine) for cid, cosine in nearest if cid in stored]  # deleted between the two reads
        return {
            cid: Candidate(cid, stored[cid].text, stored[cid].metadata, cosine, dense_rank=rank)
            for rank, (cid, cosine) in enumerate(ranked, 1)
        }

    def _preferred(self, pool: list[tuple[str, float]], wide: int, preferences: list) -> dict[str, Candidate]:
        """The `wide` nearest of the pool that meet every preference, in dense order."""
        facets = self.store.facets([cid for cid, _ in pool])
        meeting = [(cid, cos) for cid, cos in pool if all(f.matches(facets.get(cid, {})) for f in preferences)]
        return self._candidates(meeting[:wide])

    def _lexical(self, question: str, embedding, wide: int, filters, candidates: dict[str, Candidate]) -> None:
        exact = self.lexical.exact(question)
        # A stated year ("a 1950 edition") is a preference, not a word to match: as a term it finds every call
        # number and imprint with "1950" in it, above the title the question names.
        span = year_span(question)
        hits = self.lexical.search(question[: span[0]] + " " + question[span[1] :] if span else question, wide)
        for hit in exact:
            candidates.setdefault(hit.chunk_id, Candidate(hit.chunk_id)).identifier = True
        for rank, hit in enumerate(hits, 1):
            candidates.setdefault(hit.chunk_id, Candidate(hit.chunk_id)).lexical_rank = rank
        missing = [c.chunk_id for c in candidates.values() if c.cosine is None]
        if missing:
            stored, (found, matrix) = self.store.get(missing), self.store.vectors(missing)
            for chunk_id, cosine in zip(found, _cosines(embedding, matrix), strict=True):
                if chunk_id in stored:
                    c = candidates[chunk_id]
                    c.text, c.meta, c.cosine = stored[chunk_id].text, stored[chunk_id].metadata, cosine
        for chunk_id in [c.chunk_id for c in candidates.values() if c.cosine is None]:
            del candidates[chunk_id]  # deleted between the index read and the store read
        if filters:
            for chunk_id in [cid for cid, c in candidates.items() if not all(f.matches(c.meta) for f in filters)]:
                del candidates[chunk_id]

    def _fuse(self, question: str, candidates: list[Candidate], prefs) -> list[Candidate]:
        s = self.settings
        stated = sum(bool(x) for x in (prefs.years, prefs.formats, prefs.source_types, prefs.language))
        first = 1.0 / (s.rrf_k + 1)
        asked = analyse(question)
        for c in candidates:
            title = str(c.meta.get("title", ""))
            title_named = title_match(question, title)
            score = 0.0
            if c.dense_rank is not None:
                score += s.dense_weight / (s.rrf_k + c.dense_rank)
            if c.lexical_rank is not None:
                score += s.lexical_weight / (s.rrf_k + c.lexical_rank)
            # A question that names a record's title should find that record even when look-alikes rank higher.
            score += s.title_boost * first * title_named
            met = prefs.met_by(c.meta) if stated else 0
            # The preferences rank records of what the question is about: a 2005 "Pride and prejudice" meets
            # "from 2005" but is not "Readings on Pride and prejudice", and must not outrank it for the year.
            if (c.preferred_rank is not None or met) and (
                subject_share(asked, work_text(c)) >= s.preference_min_subject
            ):
                if c.preferred_rank is not None:
                    # Found only among the records that meet the preferences, that list is its dense list too.
                    lists = 2 if c.dense_rank is None else 1
                    score += lists * s.dense_weight / (s.rrf_k + c.preferred_rank)
                score *= 1.0 + s.preference_boost * met / stated
            if c.identifier:
                score += IDENTIFIER_BONUS
            c.score = score
        return sorted(candidates, key=lambda c: (-c.score, -(c.cosine or 0.0)))

    def _balanced(self, ranked: list[Candidate], k: int) -> list[Candidate]:
        """The top k by fused score, except that a source type already holding max_type_share of them gives
        its next place to another type's candidate that scores nearly as well (balance_min_ratio of it):
        17k finding-aid folders must not push out 600 catalogue records by their count alone, but a type
        that clearly matches better keeps its places."""
        s = self.settings
        cap = max(1, math.ceil(k * s.max_type_share))
        chosen: list[Candidate] = []
        per_type: dict[str, int] = {}
        queue = list(ranked)
        while queue and len(chosen) < k:
            c = queue[0]
            kind = str(c.meta.get("source_type", ""))
            if per_type.get(kind, 0) >= cap and not c.identifier:
                rival = next(
                    (d for d in queue[1:] if str(d.meta.get("source_type", "")) != kind),
                    None,
                )
                if rival is not None and rival.score >= s.balance_min_ratio * c.score:
                    c = rival
                    kind = str(c.meta.get("source_type", ""))
            queue.remove(c)
            per_type[kind] = per_type.get(kind, 0) + 1
            chosen.append(c)
        return sorted(chosen, key=lambda c: (-c.score, -(c.cosine or 0.0)))

    def sources_by_id(self, chunk_ids: list[str]) -> list[Source]:
        """Numbers given chunks [1].. in order (for checking an answer against chosen sources)."""
        stored = self.store.get(chunk_ids)
        missing = [c for c in chunk_ids if c not in stored]
        if missing:
            from assistant.backends.store import StoreError

            raise StoreError(f"not in the store: {', '.join(missing)}")
        return [make_source(n, cid, stored[cid].text, stored[cid].metadata, 1.0) for n, cid in enumerate(chunk_ids, 1)]


# A catalogue record names the works it holds in these fields; its author, notes and subjects name others
# ("based on the novel by Jane Austen" is not the novel).
WORK_FIELDS = frozenset({"Title", "Uniform title", "Variant title", "Contents", "Series"})
CATALOGUE_SOURCE_TYPES = frozenset({"marc", "dc"})


def work_text(c: Candidate) -> str:
    """What a candidate holds, for "is it about what the question asks": a catalogue record's title and
    work-naming fields; any other source's title and text."""
    title = str(c.meta.get("title", ""))
    fields = fields_from_metadata(c.meta) if c.meta.get("source_type") in CATALOGUE_SOURCE_TYPES else None
    if fields is None:
        return f"{title}\n{c.text}"
    return "\n".join([title, *(value for label, value in fields if label in WORK_FIELDS)])


def merge_preferred(candidates: dict[str, Candidate], preferred: dict[str, Candidate]) -> None:
    """The chunks meeting the stated preferences, as a third ranked list. A chunk only this list found has no
    dense rank (its rank among the filtered chunks is not one among all of them); _fuse credits it twice
    when it is about what the question asks (the five 1930s editions among 383 of Pride and Prejudice)."""
    for rank, (chunk_id, c) in enumerate(preferred.items(), 1):
        if chunk_id not in candidates:
            c.dense_rank = None
        candidates.setdefault(chunk_id, c).preferred_rank = rank


def one_per_record(ranked: list[Candidate]) -> list[Candidate]:
    """One source per record: the same record read from several files (a MARC file and its MARCXML, an ARC
    and its WARC: one record id) takes one place and lists its files. A fielded record (catalogue, finding
    aid) takes one place however many of its chunks match, as the answer reads it whole
    (answering/records.py); a long page or PDF page keeps a place per distinct passage. Editions have their
    own ids and stay apart."""
    kept: dict[tuple[str, str, str], Candidate] = {}
    for c in ranked:
        source_type = str(c.meta.get("source_type", ""))
        passage = "" if source_type in FIELDED_SOURCE_TYPES else c.text
        key = (source_type, str(c.meta.get("record_id", "")) or c.chunk_id, passage)
        first = kept.setdefault(key, c)
        source_file = str(c.meta.get("source_file", ""))
        if source_file and source_file not in first.files:
            first.files.append(source_file)
    return list(kept.values())


def _cosines(query, matrix) -> list[float]:
    """Cosine of the query to each row of the matrix, in one product."""
    import numpy as np

    if len(matrix) == 0:
        return []
    q = np.asarray(query, dtype=np.float32)
    rows = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1) * float(np.linalg.norm(q))
    return [float(x) for x in np.where(norms > 0, rows @ q / np.where(norms > 0, norms, 1.0), 0.0)]


def make_source(n: int, chunk_id: str, text: str, meta: dict, score: float) -> Source:
    return Source(
        n=n,
        chunk_id=chunk_id,
        source_type=str(meta.get("source_type", "")),
        record_id=str(meta.get("record_id", "")),
        title=str(meta.get("title", "")),
        locator=str(meta.get("locator", "")),
        link=str(meta.get("link", "")),
        date=str(meta.get("date", "")),
        source_file=str(meta.get("source_file", "")),
        score=score,
        text=text,
        content_hash=str(meta.get("content_hash", "")),
        captures=[d for d in str(meta.get("captures", "")).split(",") if d],
        year=meta["year"] if isinstance(meta.get("year"), int) else None,
        format=str(meta.get("format", "")),
        fields=fields_from_metadata(meta),
        **structured_provenance(meta),
    )

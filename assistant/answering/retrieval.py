"""Top-k retrieval through llama-index (VectorStoreIndex over ChromaVectorStore)."""

from __future__ import annotations

import math
import time

from assistant.answering.evidence import title_match
from assistant.core.types import Source, structured_provenance

TITLE_BOOST = 0.25  # added to the cosine when every leading content word of a record's title is in the question


class Retriever:
    def __init__(self, store, embedder):
        from llama_index.core import VectorStoreIndex

        self.store = store
        self.embedder = embedder
        self.index = VectorStoreIndex.from_vector_store(store.vector_store(), embed_model=embedder)

    def retrieve(self, question: str, k: int, timings: dict[str, float] | None = None, filters=None) -> list[Source]:
        """filters: a list of assistant.answering.filters.Filter, all of which must hold."""
        from llama_index.core.schema import QueryBundle

        timings = timings if timings is not None else {}
        t0 = time.perf_counter()
        # Embedded here (not inside the retriever) so the two stages are timed apart.
        embedding = self.embedder.get_query_embedding(question)
        t1 = time.perf_counter()
        kwargs = {}
        if filters:
            from assistant.answering.filters import to_metadata_filters

            kwargs["filters"] = to_metadata_filters(filters)
        # A wider candidate set, re-ranked with a known-item boost: a question that names a record's
        # title should find that record even when the embedding ranks look-alikes higher.
        wide = max(k * 3, 20)
        nodes = self.index.as_retriever(similarity_top_k=wide, **kwargs).retrieve(
            QueryBundle(question, embedding=embedding)
        )
        timings["embed_query"] = t1 - t0
        # ChromaVectorStore reports exp(-distance); with cosine space, 1 - distance is the cosine.
        hits = [(1.0 + math.log(h.score) if h.score and h.score > 0 else 0.0, h) for h in nodes]
        ranked = sorted(
            hits,
            key=lambda sh: -(sh[0] + TITLE_BOOST * title_match(question, str(sh[1].node.metadata.get("title", "")))),
        )
        timings["retrieve"] = time.perf_counter() - t1
        return [
            make_source(n, h.node.node_id, h.node.get_content(), h.node.metadata, score)
            for n, (score, h) in enumerate(ranked[:k], 1)
        ]

    def sources_by_id(self, chunk_ids: list[str]) -> list[Source]:
        """Numbers given chunks [1].. in order (for checking an answer against chosen sources)."""
        stored = self.store.get(chunk_ids)
        missing = [c for c in chunk_ids if c not in stored]
        if missing:
            from assistant.backends.store import StoreError

            raise StoreError(f"not in the store: {', '.join(missing)}")
        return [make_source(n, cid, stored[cid].text, stored[cid].metadata, 1.0) for n, cid in enumerate(chunk_ids, 1)]


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
        **structured_provenance(meta),
    )

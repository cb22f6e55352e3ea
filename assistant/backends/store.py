"""The Chroma store of chunks: embedded PersistentClient or a Chroma server, chosen by settings."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass

from assistant.core.errors import RefdeskError
from assistant.core.settings import Settings, StoreSettings
from assistant.core.types import Chunk

PAGE = 1000  # ids per Chroma get/delete call
REBUILDING = "rebuilding"  # collection metadata key, set while store repair embeds the lexical copies again
ID_PAGE = 100_000  # ids per call when listing every id (ids only: a page costs a scan up to its offset)


class StoreError(RefdeskError):
    pass


class StoreDamaged(StoreError):
    """Chroma cannot load the collection's vector index: a process killed while Chroma saved it (kill -9, the
    OOM killer, a power cut) can leave its files cut short, and Chroma has no repair for them. Or a repair
    that makes them again was stopped part-way."""

    def __init__(self, collection: str, location: str, state: str):
        super().__init__(
            f"the vector index of collection {collection!r} at {location} {state}. "
            "Run `refdesk store repair --yes`: it drops that collection and makes its vectors again from the "
            "lexical index's copy of every chunk the manifest lists (no source file is read); a stopped repair "
            "goes on where it was. Then `refdesk ingest` on the same paths stores whatever the copy lacked"
        )


def damaged_index_errors() -> tuple[type[BaseException], ...]:
    from chromadb.errors import InternalError

    return (InternalError,)


def is_damaged_index(exc: BaseException) -> bool:
    """Chroma's words when an HNSW segment's files cannot be read (a cut-off index_metadata.pickle says
    "Error constructing hnsw segment reader: ... Error deserializing pickle file")."""
    return "hnsw" in str(exc).lower()


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """What a Chroma server that went away (or restarts) raises through its HTTP client: no connection, a
    timeout, or the server's own 5xx. A 4xx (a bad filter, a missing collection) is a bug or a setup error
    and surfaces as one, not as "the catalogue is not reachable"."""
    import httpx
    from chromadb.errors import InternalError

    return (httpx.TransportError, InternalError, ConnectionError)


@dataclass
class Rebuilt:
    """What `store repair` stored again from the lexical index's copies."""

    chunks: int = 0  # embedded again and stored
    already: int = 0  # stored by the same repair before it was stopped
    dropped: int = 0  # copies the manifest does not list: dropped from the index
    seconds: float = 0.0


@dataclass
class StoredChunk:
    id: str
    text: str
    metadata: dict


def _own(meta) -> dict:
    """A chunk's metadata as it was stored, without the keys llama-index adds."""
    from assistant.backends.lexical import NODE_KEYS

    return {k: v for k, v in dict(meta or {}).items() if k not in NODE_KEYS}


def store_location(settings: Settings) -> str:
    """Where the store is, for messages."""
    if settings.store.mode == "server":
        return f"http://{settings.store.host}:{settings.store.port}"
    return str(settings.chroma_path)


def make_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.store.mode == "server":
        try:
            client = chromadb.HttpClient(host=settings.store.host, port=settings.store.port, settings=chroma_settings)
            client.heartbeat()
        except Exception as exc:  # chromadb raises several types for a refused connection
            raise StoreError(
                f"Chroma server at http://{settings.store.host}:{settings.store.port} is not reachable "
                f"(start it with `chroma run --path DIR --port {settings.store.port}`): {exc}"
            ) from exc
        return client
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def _node(chunk_id: str, text: str, meta: dict, vector: Sequence[float]):
    from llama_index.core.schema import TextNode

    return TextNode(
        id_=chunk_id,
        text=text,
        metadata=meta,
        embedding=list(vector),
        excluded_embed_metadata_keys=list(meta),
        excluded_llm_metadata_keys=list(meta),
    )


class ChunkStore:
    def __init__(
        self,
        client,
        collection_name: str,
        embedder_name: str,
        location: str = "",
        lexical=None,
        graph: StoreSettings | None = None,
        rebuilding: bool = False,
    ):
        self.client = client
        self.location = location
        self.lexical = lexical  # a backends.lexical.LexicalIndex kept in step with every add and delete
        self.embedder_name = embedder_name
        graph = graph or StoreSettings()
        # A collection made for a rebuild says so from its first moment, so a stopped rebuild is never taken
        # for a finished store (whose lexical index would then be trimmed to it).
        self.collection = client.get_or_create_collection(
            collection_name,
            metadata={"embedder": embedder_name, **({REBUILDING: "from the lexical index"} if rebuilding else {})},
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "ef_construction": graph.hnsw_ef_construction,
                    "max_neighbors": graph.hnsw_max_neighbors,
                    "ef_search": graph.hnsw_ef_search,
                }
            },
        )
        hnsw = (self.collection.configuration_json or {}).get("hnsw") or {}
        if hnsw.get("ef_search") != graph.hnsw_ef_search:
            # A collection made before (or with other settings): search effort can change in place.
            self.collection.modify(configuration={"hnsw": {"ef_search": graph.hnsw_ef_search}})
        stored_embedder = (self.collection.metadata or {}).get("embedder")
        if stored_embedder and stored_embedder != embedder_name and self.collection.count() == 0:
            # No vectors to mix: an empty collection (one whose chunks were all removed, say) takes the model
            # that fills it. An unprepared refined model never gets here: its name cannot be made.
            self.collection.modify(metadata={"embedder": embedder_name})
        elif stored_embedder and stored_embedder != embedder_name:
            # Mixing vectors of two models silently ruins retrieval.
            raise StoreError(
                f"collection {collection_name!r} at {location} holds vectors from {stored_embedder}, "
                f"not {embedder_name}: use another data dir or store.collection"
            )

    @classmethod
    def from_settings(cls, settings: Settings, embedder_name: str) -> ChunkStore:
        location = store_location(settings)
        from assistant.backends.lexical import LexicalIndex

        lexical = LexicalIndex(
            settings.lexical_path, settings.retrieval.field_weights, settings.retrieval.lexical_rank_budget
        )
        store = cls(make_client(settings), settings.collection, embedder_name, location, lexical, settings.store)
        try:
            stored = store.count()  # the first read that loads the vector index
        except damaged_index_errors() as exc:
            if is_damaged_index(exc):
                raise StoreDamaged(settings.collection, location, f"cannot be loaded ({exc})") from exc
            raise
        if store.rebuilding:
            raise StoreDamaged(settings.collection, location, f"is being made again ({stored} chunks so far)")
        if lexical.count() != stored:
            # A new app host beside a Chroma server, a store written before the index existed, or an ingest
            # killed between its Chroma write and its index write: the store is the truth.
            store.repair_lexical()
        return store

    def repair_lexical(self) -> dict[str, int]:
        """Brings the lexical index in step with the store: chunks it lacks are indexed, chunks the store no
        longer holds are dropped; an empty index is filled. Reads only the chunks that differ (a 630k-chunk
        store lists its ids in ~20 s here; reading every chunk page by page took over half an hour)."""
        assert self.lexical is not None
        stored = self.ids()
        indexed = self.lexical.ids()
        missing = sorted(set(stored) - indexed)
        extra = sorted(indexed - set(stored))
        if extra:
            self.lexical.delete(extra)
        self.lexical.index_stored(self.iter_chunks(ids=missing))
        return {"indexed": len(missing), "dropped": len(extra)}

    def ids(self) -> list[str]:
        """Every stored chunk id (Chroma pages by offset, so large pages of ids only: each costs a scan)."""
        found: list[str] = []
        while True:
            res = self.collection.get(include=[], limit=ID_PAGE, offset=len(found))
            if not res["ids"]:
                return found
            found += res["ids"]

    def vector_store(self):
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return ChromaVectorStore(chroma_collection=self.collection)

    def count(self) -> int:
        return self.collection.count()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), PAGE):
            found.update(self.collection.get(ids=list(ids[start : start + PAGE]), include=[])["ids"])
        return found

    def add(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        """Adds chunks through llama-index's ChromaVectorStore (so retrieval rebuilds the same nodes)."""
        nodes = [_node(c.id, c.text, c.metadata(), v) for c, v in zip(chunks, embeddings, strict=True)]
        if nodes:
            self.vector_store().add(nodes)
            if self.lexical is not None:
                from assistant.backends.lexical import rows_for

                self.lexical.add(rows_for(chunks))

    def add_copies(self, copies: Sequence[tuple[str, str, dict]], embeddings: Sequence[Sequence[float]]) -> None:
        """Stores chunks the lexical index holds, (id, text, metadata) as LexicalIndex.copies gives them, with
        vectors made again: the vector side only (store repair)."""
        nodes = [_node(cid, text, meta, v) for (cid, text, meta), v in zip(copies, embeddings, strict=True)]
        if nodes:
            self.vector_store().add(nodes)

    @property
    def rebuilding(self) -> bool:
        """A rebuild from the lexical index (`store repair`) began and has not finished."""
        return bool((self.collection.metadata or {}).get(REBUILDING))

    def rebuild_from_lexical(
        self, embed: Callable[[list[str]], list], listed: Container[str], progress, batch_size: int = 256
    ) -> Rebuilt:
        """Stores with vectors made again every chunk the lexical index holds a copy of and the manifest lists
        (`listed`); copies the manifest does not list (a delete stopped between the store and the index) are
        dropped from the index, not brought back. Chunks already stored (a rebuild stopped part-way) are not
        embedded again. Marks the collection finished at the end."""
        assert self.lexical is not None
        started = time.perf_counter()
        done = Rebuilt()
        unlisted: list[str] = []
        batch: list[tuple[str, str, dict]] = []

        def store_batch() -> None:
            stored = self.existing_ids([cid for cid, _, _ in batch])
            new = [copy for copy in batch if copy[0] not in stored]
            if new:
                self.add_copies(new, embed([text for _, text, _ in new]))
            done.chunks += len(new)
            done.already += len(batch) - len(new)
            progress.advance(len(batch))
            batch.clear()

        for copy in self.lexical.copies():
            if copy[0] not in listed:
                unlisted.append(copy[0])
                continue
            batch.append(copy)
            if len(batch) >= batch_size:
                store_batch()
        store_batch()
        progress.advance(len(unlisted))
        self.lexical.delete(unlisted)
        done.dropped = len(unlisted)
        self.collection.modify(metadata={"embedder": self.embedder_name})  # finished: no REBUILDING key
        done.seconds = time.perf_counter() - started
        return done

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        for start in range(0, len(ids), PAGE):
            self.collection.delete(ids=ids[start : start + PAGE])
        if self.lexical is not None:
            self.lexical.delete(ids)
        return len(ids)

    def add_captures(self, groups: Sequence[tuple[Sequence[str], Sequence[str]]]) -> int:
        """Records more capture dates of archived content in its chunks' metadata ("captures").
        groups: (chunk ids of one record, capture dates seen for it). Returns the dates added, counted
        per record. One read and one write for all of them; chunks that already list the dates are left."""
        import json

        wanted: dict[str, set[str]] = {}
        for ids, dates in groups:
            for chunk_id in ids:
                wanted.setdefault(chunk_id, set()).update(d for d in dates if d)
        wanted = {c: d for c, d in wanted.items() if d}
        if not wanted:
            return 0
        new_by_chunk: dict[str, int] = {}
        ids_out, metas_out = [], []
        chunk_ids = sorted(wanted)
        for start in range(0, len(chunk_ids), PAGE):
            res = self.collection.get(ids=chunk_ids[start : start + PAGE], include=["metadatas"])
            for chunk_id, meta in zip(res["ids"], res["metadatas"], strict=True):
                meta = dict(meta or {})
                known = {d for d in str(meta.get("captures") or meta.get("date") or "").split(",") if d}
                merged = known | wanted[chunk_id]
                new_by_chunk[chunk_id] = len(merged) - len(known)
                if len(merged) == len(known):
                    continue
                meta["captures"] = ",".join(sorted(merged))
                # llama-index rebuilds nodes from _node_content: keep the two views in step.
                if "_node_content" in meta:
                    node = json.loads(meta["_node_content"])
                    node.setdefault("metadata", {})["captures"] = meta["captures"]
                    meta["_node_content"] = json.dumps(node)
                ids_out.append(chunk_id)
                metas_out.append(meta)
        for start in range(0, len(ids_out), PAGE):
            self.collection.update(ids=ids_out[start : start + PAGE], metadatas=metas_out[start : start + PAGE])
        if self.lexical is not None and ids_out:
            from assistant.backends.lexical import NODE_KEYS

            self.lexical.update_metadata(
                {
                    cid: {k: v for k, v in meta.items() if k not in NODE_KEYS}
                    for cid, meta in zip(ids_out, metas_out, strict=True)
                }
            )
        return sum(max((new_by_chunk.get(c, 0) for c in ids), default=0) for ids, _ in groups)

    def get(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Stored chunks by id, read from the lexical index's copy (a primary-key read) where it has them and
        from Chroma otherwise; either way their metadata without the search_<field> values (iter_chunks has
        them) and llama-index's node keys (lexical.copied_metadata)."""
        from assistant.backends.lexical import copied_metadata

        out: dict[str, StoredChunk] = {}
        if self.lexical is not None:
            for cid, (doc, meta) in self.lexical.records(ids).items():
                out[cid] = StoredChunk(cid, doc, meta)
        rest = [cid for cid in ids if cid not in out]
        for start in range(0, len(rest), PAGE):
            res = self.collection.get(ids=list(rest[start : start + PAGE]), include=["documents", "metadatas"])
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
                out[cid] = StoredChunk(cid, doc or "", copied_metadata(dict(meta or {})))
        return out

    def facets(self, ids: Sequence[str]) -> dict[str, dict]:
        """The metadata preferences filter on (lexical.FACET_KEYS) of stored chunks."""
        from assistant.backends.lexical import FACET_KEYS

        if self.lexical is not None:
            found = self.lexical.facets(ids)
            if len(found) == len(ids):
                return found
        return {cid: {k: c.metadata[k] for k in FACET_KEYS if k in c.metadata} for cid, c in self.get(ids).items()}

    def vectors(self, ids: Sequence[str]):
        """(the ids found, their vectors as the rows of one float32 array): no per-number Python objects."""
        import numpy as np

        found: list[str] = []
        parts = []
        for start in range(0, len(ids), PAGE):
            res = self.collection.get(ids=list(ids[start : start + PAGE]), include=["embeddings"])
            found += res["ids"]
            parts.append(np.asarray(res["embeddings"], dtype=np.float32).reshape(len(res["ids"]), -1))
        return found, (np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32))

    def get_with_embeddings(self, ids: Sequence[str]) -> list[tuple[str, str, dict, list[float]]]:
        """(id, text, metadata, vector) of stored chunks."""
        chunks = self.get(ids)
        found, matrix = self.vectors(ids)
        return [
            (cid, chunks[cid].text, chunks[cid].metadata, row.tolist())
            for cid, row in zip(found, matrix, strict=True)
            if cid in chunks
        ]

    def query(self, embedding: Sequence[float], n: int, where: dict | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine) of the n chunks nearest to `embedding` that match `where`, nearest first. Ids and
        distances only: Chroma's HNSW answers them in ~2 ms, their metadata would take ten times that."""
        if n <= 0:
            return []
        res = self.collection.query(query_embeddings=[list(embedding)], n_results=n, where=where, include=["distances"])
        # The collection's space is cosine: distance = 1 - cosine.
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def iter_chunks(self, where: dict | None = None, ids: Sequence[str] | None = None):
        """Every stored chunk (matching `where`, a Chroma filter; or those of `ids`), page by page. Without a
        filter the ids are listed first and read by id: pages by offset get slower the further they go."""
        if where is None:
            ids = self.ids() if ids is None else ids
            for start in range(0, len(ids), PAGE):
                res = self.collection.get(ids=list(ids[start : start + PAGE]), include=["documents", "metadatas"])
                for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
                    yield StoredChunk(cid, doc or "", _own(meta))
            return
        offset = 0
        while True:
            res = self.collection.get(where=where, include=["documents", "metadatas"], limit=PAGE, offset=offset)
            if not res["ids"]:
                return
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
                yield StoredChunk(cid, doc or "", _own(meta))
            offset += len(res["ids"])

    def nearest(self, embedding: Sequence[float], n: int, where: dict | None = None) -> list[dict]:
        """Metadata of the n chunks closest to `embedding` (for look-ups that need no llama-index node)."""
        if self.count() == 0:
            return []
        res = self.collection.query(query_embeddings=[list(embedding)], n_results=n, where=where, include=["metadatas"])
        return [dict(m or {}) for m in res["metadatas"][0]]

    def iter_metadata(self):
        total = self.count()
        for offset in range(0, total, PAGE):
            res = self.collection.get(include=["metadatas"], limit=PAGE, offset=offset)
            yield from res["metadatas"]

    def counts(self) -> dict:
        chunks_by_type: Counter[str] = Counter()
        records: dict[str, set[str]] = {}
        files: set[str] = set()
        for meta in self.iter_metadata():
            files.add(str(meta.get("source_file", "")))
            source_type = str(meta.get("source_type", "?"))
            chunks_by_type[source_type] += 1
            records.setdefault(source_type, set()).add(f"{meta.get('source_file')}\x1f{meta.get('record_id')}")
        return {
            "chunks": sum(chunks_by_type.values()),
            "records": sum(len(v) for v in records.values()),
            "files": len(files - {""}),
            "by_type": {t: {"chunks": chunks_by_type[t], "records": len(records[t])} for t in sorted(chunks_by_type)},
        }

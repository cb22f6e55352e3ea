"""Chroma's HNSW graph as the settings ask for it: a new collection is built with them, and an existing one
gets the configured search effort when the store opens (real embedded Chroma)."""

import chromadb

from assistant.backends.store import ChunkStore
from assistant.core.settings import StoreSettings


def _hnsw(client, name):
    return client.get_collection(name).configuration_json["hnsw"]


def test_a_new_collection_is_built_with_the_configured_graph(tmp_path):
    client = chromadb.PersistentClient(str(tmp_path))
    graph = StoreSettings(hnsw_ef_search=321, hnsw_ef_construction=150, hnsw_max_neighbors=24)
    ChunkStore(client, "new_one", "fake:hash", graph=graph)
    hnsw = _hnsw(client, "new_one")
    assert (hnsw["space"], hnsw["ef_search"], hnsw["ef_construction"], hnsw["max_neighbors"]) == (
        "cosine",
        321,
        150,
        24,
    )


def test_an_existing_collection_gets_the_configured_search_effort(tmp_path):
    client = chromadb.PersistentClient(str(tmp_path))
    # As stores were made before the graph was configurable: Chroma's defaults.
    client.create_collection("old_one", metadata={"hnsw:space": "cosine", "embedder": "fake:hash"})
    assert _hnsw(client, "old_one")["ef_search"] == 100
    ChunkStore(client, "old_one", "fake:hash", graph=StoreSettings())
    reopened = chromadb.PersistentClient(str(tmp_path))
    hnsw = _hnsw(reopened, "old_one")
    assert hnsw["ef_search"] == StoreSettings().hnsw_ef_search
    assert (hnsw["space"], hnsw["max_neighbors"]) == ("cosine", 16)  # a built graph keeps its shape

"""Real parts: a `chroma run` server through HttpClient, and the bundled MiniLM embedder."""

import pytest

from assistant.core.settings import Settings
from assistant.services import Services
from tests.conftest import ingest

pytestmark = pytest.mark.integration


def test_chroma_server_mode_ingests_retrieves_and_is_idempotent(chroma_server, clean_env, tmp_path, demo_copy):
    settings = Settings.load(
        data_dir=str(tmp_path / "data"),
        store={
            "mode": "server",
            "host": chroma_server["host"],
            "port": chroma_server["port"],
            "collection": "server_test",
        },
        embedding={"backend": "fake", "model": "hash"},
        llm={"backend": "fake"},
        retrieval={"min_score": 0.0},
        verify={"semantic_threshold": 0.0},
    )
    services = Services(settings)
    first = ingest(services, [demo_copy])
    assert first.chunks_added > 0
    assert services.store.location == f"http://127.0.0.1:{chroma_server['port']}"
    assert not (tmp_path / "data" / "chroma").exists()  # nothing went to the embedded store
    assert services.store.collection.configuration_json["hnsw"]["ef_search"] == settings.store.hnsw_ef_search
    again = ingest(services, [demo_copy])
    assert again.chunks_added == 0 and again.chunks_unchanged == first.chunks_added
    answer = services.answers.ask("Summerland Chabon baseball fairies", k=3)
    assert answer.sources[0].record_id == "12883376"
    assert answer.sentences[0].status == "supported"
    # The lexical index lives on the app host beside the server's store, with the same chunk ids; a new app
    # host (a fresh data dir) rebuilds it from the server's chunk metadata.
    assert services.store.lexical.count() == services.store.count()
    fresh = Services(settings.model_copy(update={"data_dir": tmp_path / "other-host"}))
    assert fresh.store.lexical.count() == services.store.count()
    hit = fresh.retriever.retrieve("Which book has ISBN 0-7868-0877-2?", 1)[0]
    assert (hit.record_id, hit.matched_by) == ("12883376", "identifier")


def test_unreachable_chroma_server_is_a_clear_error(clean_env, tmp_path):
    from assistant.backends.store import StoreError
    from tests.conftest import free_port

    port = free_port()
    settings = Settings.load(
        data_dir=str(tmp_path), store={"mode": "server", "port": port}, embedding={"backend": "fake", "model": "hash"}
    )
    with pytest.raises(StoreError, match=f"127.0.0.1:{port} is not reachable.*chroma run"):
        _ = Services(settings).store


def test_real_minilm_retrieves_the_right_demo_records(real_embedder, clean_env, tmp_path, demo_copy):
    settings = Settings.load(data_dir=str(tmp_path / "data"), llm={"backend": "fake"})
    services = Services(settings, embedder=real_embedder)
    summary = ingest(services, [demo_copy])
    assert summary.chunks_added == services.store.count() > 0
    cases = {
        "Who wrote Summerland?": "12883376",
        "What is the ISSN of the journal Nature?": "417826",
        "Louis Armstrong sound recording of big band jazz": "2043308",
        "Which box has the A-C photographs of the Stanford marching band?": "aspace_f5907634fce75222081b9028db18b2fd",
    }
    for question, record_id in cases.items():
        top = [s.record_id for s in services.retriever.retrieve(question, 3)]
        assert record_id in top, (question, top)

"""The static embedding back-end: distilled here from the packaged MiniLM (model2vec's method), its own
collection, the same chunks as MiniLM's, and retrieval over a real demo ingest."""

import numpy as np
import pytest

from assistant.core.settings import Settings

STATIC = {"backend": "static"}


def test_each_back_end_has_its_own_collection_and_the_static_model_lives_under_the_data_dir(tmp_path, clean_env):
    torch = Settings.load(data_dir=str(tmp_path))
    static = Settings.load(data_dir=str(tmp_path), embedding=STATIC)
    assert torch.collection == "refdesk_chunks" and static.collection == "refdesk_chunks_static"
    assert static.embedder.static_dir == str(tmp_path.resolve() / "models" / "static-all-MiniLM-L6-v2")
    named = Settings.load(data_dir=str(tmp_path), embedding=STATIC, store={"collection": "mine"})
    assert named.collection == "mine"  # a collection named in the settings is used as it is


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    from assistant.backends.embeddings import resolve_model_path
    from assistant.backends.static_embedding import distill

    return distill(resolve_model_path("bundled:all-MiniLM-L6-v2"), tmp_path_factory.mktemp("static") / "model")


@pytest.mark.integration
def test_the_distilled_model_embeds_like_its_teacher_only_cheaper(static_dir):
    from assistant.backends.static_embedding import StaticEmbedding

    model = StaticEmbedding(static_dir)
    texts = ["Pride and prejudice by Jane Austen", "Austen's novel Pride and Prejudice", "Sailing ships of the navy"]
    v = np.asarray(model.get_text_embedding_batch(texts))
    assert v.shape == (3, 256)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2]
    again = np.asarray(StaticEmbedding(static_dir).get_text_embedding_batch(texts))
    assert np.allclose(v, again)  # loaded from disk: the same vectors


@pytest.mark.integration
def test_a_missing_static_model_is_an_error_not_a_download(tmp_path):
    from assistant.backends.static_embedding import StaticEmbedding

    with pytest.raises(FileNotFoundError, match="no static model here"):
        StaticEmbedding(tmp_path / "nothing")


@pytest.mark.integration
def test_static_ingest_cuts_minilms_chunks_and_finds_the_asked_record(static_dir, tmp_path, clean_env, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services
    from tests.conftest import catalogue_and_finding_aid, ingest

    settings = Settings.load(
        data_dir=str(tmp_path / "data"), embedding={"backend": "static", "static_dir": str(static_dir)}
    )
    services = Services(settings, llm=FakeChat())
    files = catalogue_and_finding_aid(demo_copy)
    summary = ingest(services, files)
    assert summary.files_failed == 0 and services.store.collection.name == "refdesk_chunks_static"
    static_ids = {c.id for c in services.store.iter_chunks()}
    # MiniLM's chunker (the same tokenizer) over the same files: the same chunk ids.
    minilm_chunker = Services(Settings.load(data_dir=str(tmp_path / "other"))).chunker()
    from ingest.registry import detect_format, get_reader

    expected = {
        chunk.id
        for path in files
        for record in get_reader(detect_format(path))(path)
        if hasattr(record, "provenance")
        for chunk in minilm_chunker.chunks(record)
    }
    assert static_ids == expected
    top = services.retriever.retrieve("Who wrote Summerland?", 3)
    assert top[0].title == "Summerland"

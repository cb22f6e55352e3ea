"""The onnx embedding back-end: the packaged MiniLM exported here to int8 ONNX, checked against the torch
model, in its own collection, with the same chunks, retrieving over a real demo ingest."""

import numpy as np
import pytest

from assistant.core.settings import Settings

ONNX = {"backend": "onnx"}


def test_the_onnx_back_end_has_its_own_collection_and_model_dir(tmp_path, clean_env):
    onnx = Settings.load(data_dir=str(tmp_path), embedding=ONNX)
    assert onnx.collection == "refdesk_chunks_onnx"
    assert onnx.embedder.onnx_dir == str(tmp_path.resolve() / "models" / "onnx-int8-all-MiniLM-L6-v2")
    assert Settings.load(data_dir=str(tmp_path)).embedder.onnx_dir == ""  # torch: nothing derived


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    from assistant.backends.embeddings import resolve_model_path
    from assistant.backends.onnx_embedding import export

    return export(resolve_model_path("bundled:all-MiniLM-L6-v2"), tmp_path_factory.mktemp("onnx") / "model")


@pytest.mark.integration
def test_the_int8_model_embeds_as_the_torch_model_does(onnx_dir):
    import json

    from sentence_transformers import SentenceTransformer

    from assistant.backends.embeddings import resolve_model_path
    from assistant.backends.onnx_embedding import READY, OnnxEmbedding

    texts = [
        "Pride and prejudice by Jane Austen",
        "Austen's novel Pride and Prejudice",
        "Sailing ships of the navy",
        "Box 3, Folder 12: correspondence " * 40,  # longer than the model's 256 tokens: truncated the same way
    ]
    model = OnnxEmbedding(onnx_dir, embed_batch_size=2)  # batches of 2: padding differs from batch to batch
    got = np.asarray(model.get_text_embedding_batch(texts))
    want = SentenceTransformer(resolve_model_path("bundled:all-MiniLM-L6-v2"), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert got.shape == (4, 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert (got * want).sum(axis=1).min() > 0.95
    assert got[0] @ got[1] > 0.6 > got[0] @ got[2]
    assert json.loads((onnx_dir / READY).read_text())["check_mean_cosine"] >= 0.97


@pytest.mark.integration
def test_a_missing_onnx_model_is_an_error_not_a_download(tmp_path):
    from assistant.backends.onnx_embedding import OnnxEmbedding

    with pytest.raises(FileNotFoundError, match="no ONNX model here"):
        OnnxEmbedding(tmp_path / "nothing")


@pytest.mark.integration
def test_onnx_ingest_finds_the_asked_record_in_its_own_collection(onnx_dir, tmp_path, clean_env, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services
    from tests.conftest import catalogue_and_finding_aid, ingest

    settings = Settings.load(data_dir=str(tmp_path / "data"), embedding={"backend": "onnx", "onnx_dir": str(onnx_dir)})
    services = Services(settings, llm=FakeChat())
    summary = ingest(services, catalogue_and_finding_aid(demo_copy))
    assert summary.files_failed == 0 and summary.chunks_added > 0
    assert services.store.collection.name == "refdesk_chunks_onnx"
    assert services.store.embedder_name == "onnx:bundled:all-MiniLM-L6-v2"
    top = services.retriever.retrieve("Who wrote Summerland?", 3)
    assert top[0].title == "Summerland"

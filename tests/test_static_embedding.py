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


def word_model(vocabulary: list[str], vectors: np.ndarray):
    """A small StaticModel over whole words (no model files needed)."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    return StaticModel(vectors=vectors.astype(np.float32), tokenizer=tokenizer, normalize=True)


def test_refining_brings_the_static_model_close_to_its_teacher_on_texts_it_never_saw():
    """The teacher's vector for a text is not a mean of word vectors the static model holds (it is one in
    another space, with its own weights): refined on one sample of texts, the static model's vectors for
    other texts come close to the teacher's, and closer than the mapping alone brings them."""
    from assistant.backends.static_embedding import refine, token_bags

    rng = np.random.default_rng(3)
    vocabulary = ["[UNK]"] + [f"w{i}" for i in range(60)]
    start = word_model(vocabulary, rng.normal(size=(61, 6)))
    teacher_words = rng.normal(size=(61, 10))

    def texts(n):
        return [" ".join(f"w{i}" for i in rng.integers(0, 60, size=rng.integers(3, 12))) for _ in range(n)]

    def teacher(sample):
        vectors = np.asarray(token_bags(start, sample) @ teacher_words)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def agreement(model, sample):
        return float(np.mean(np.sum(model.encode(sample) * teacher(sample), axis=1)))

    seen, unseen = texts(400), texts(200)
    refined = refine(start, seen, teacher(seen))
    mapped_only = refine(start, seen, teacher(seen), ridge=1e9)  # a ridge this strong leaves only the map
    assert refined.dim == 10
    assert agreement(refined, unseen) > 0.95
    assert agreement(refined, unseen) > agreement(mapped_only, unseen) + 0.05
    assert np.allclose(np.linalg.norm(refined.encode(unseen), axis=1), 1.0, atol=1e-4)


def test_the_teaching_sample_is_drawn_across_source_types():
    from assistant.backends.store import StoredChunk
    from eval.bench import balanced_sample

    chunks = [StoredChunk(f"ead-{i}", "folder", {"source_type": "ead"}) for i in range(900)]
    chunks += [StoredChunk(f"marc-{i}", "record", {"source_type": "marc"}) for i in range(40)]
    chunks += [StoredChunk(f"warc-{i}", "page", {"source_type": "warc"}) for i in range(60)]
    sample = balanced_sample(chunks, 150, seed=1)
    counts = {t: sum(c.metadata["source_type"] == t for c in sample) for t in ("ead", "marc", "warc")}
    assert counts == {"ead": 55, "marc": 40, "warc": 55}  # marc gives what it lacks to the others
    assert len({c.id for c in sample}) == 150
    assert balanced_sample(chunks, 150, seed=1) == sample  # the same seed, the same sample
    assert len(balanced_sample(chunks, 5000, seed=1)) == 1000

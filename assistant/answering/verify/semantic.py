"""Semantic check: sentence <-> cited text cosine similarity with the store's embedding model.

It only flags off-topic citations: similarity never certifies support on its own (the
lexical and, when configured, NLI verifiers do that part).
"""

from __future__ import annotations

import math

from assistant.answering.verify.base import SentenceCheck


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class SemanticVerifier:
    name = "semantic"

    def __init__(self, embedder, threshold: float):
        self.embedder = embedder
        self.threshold = threshold

    def reasons(self, check: SentenceCheck) -> list[str]:
        if not check.cited:
            return []
        vectors = self.embedder.get_text_embedding_batch([check.text] + [c.text for c in check.cited])
        best = max(cosine(vectors[0], v) for v in vectors[1:])
        if best < self.threshold:
            return [f"off-topic citation (similarity {best:.2f} < {self.threshold:.2f})"]
        return []

"""Evaluation metrics: retrieval, citations, refusals, correctness, latency, bootstrap CIs.

Every per-question metric is a pair (numerator, denominator); a set's value is sum(num) / sum(den),
so rates over citations or sentences weigh each citation or sentence equally, and a bootstrap that
resamples questions gives the confidence interval of exactly that ratio. A pair with den 0 means
"does not apply to this question" (e.g. correct refusal on an answerable question).
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

Pair = tuple[float, float]

# name -> what it means; the order is the report's order.
METRICS: dict[str, str] = {
    "hit@k": "a gold record is among the k retrieved sources (answerable questions with gold)",
    "recall@k": "share of gold records among the k retrieved sources",
    "mrr": "1 / rank of the first retrieved gold record",
    "ndcg@10": "nDCG of the first 10 retrieved records, binary relevance",
    "answer_correct": "answerable, not refused, and contains every key fact (else the normalised reference answer)",
    "token_f1": "token F1 between the answer and the reference answer (answerable)",
    "false_refusal": "answerable question refused",
    "correct_refusal": "unanswerable question refused",
    "citation_precision_checker": "citation markers that sit in a sentence the checker supports, of all markers written",
    "citation_recall_checker": "sentences (model-written or quoted) that the checker supports, of all such sentences",
    "citation_precision_gold": "citations shown to the user that point to a gold record",
    "citation_recall_gold": "gold records cited in the shown answer (answerable with gold)",
    "unsupported_sentence_rate": "model-written sentences the checker rejects",
    "unsupported_shown_rate": "sentences shown to the user that are unsupported (flag mode only)",
    "invalid_marker_rate": "citation markers that point to no retrieved, stored source",
}
RETRIEVAL_METRICS = ("hit@k", "recall@k", "mrr", "ndcg@10")


# ---------------------------------------------------------------- retrieval (ranked record keys)


def _dedupe(keys: Sequence) -> list:
    seen, out = set(), []
    for key in keys:
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def hit_at_k(ranked: Sequence, relevant: set, k: int) -> float:
    return 1.0 if any(key in relevant for key in _dedupe(ranked)[:k]) else 0.0


def recall_at_k(ranked: Sequence, relevant: set, k: int) -> float:
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedupe(ranked)[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence, relevant: set) -> float:
    for rank, key in enumerate(_dedupe(ranked), 1):
        if key in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence, relevant: set, k: int = 10) -> float:
    """Binary relevance; several chunks of one record count once (at the record's best rank)."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, key in enumerate(_dedupe(ranked)[:k], 1) if key in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# ---------------------------------------------------------------- answer text


def normalise(text: str) -> str:
    """SQuAD-style: lower case, no accents, punctuation or articles, single spaces."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers are not words of the answer
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_all(answer: str, needles: Iterable[str]) -> bool:
    hay = f" {normalise(answer)} "
    needles = [normalise(n) for n in needles]
    return bool(needles) and all(n and f" {n} " in hay for n in needles)


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalise(prediction).split(), normalise(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- aggregation


def ratio(pairs: Iterable[Pair]) -> float | None:
    num = den = 0.0
    for n, d in pairs:
        num += n
        den += d
    return num / den if den else None


def bootstrap_ci(
    pairs: Sequence[Pair], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap over questions of sum(num)/sum(den)."""
    pairs = [p for p in pairs if p[1]]
    if not pairs:
        return None
    rng = random.Random(seed)
    n = len(pairs)
    values = []
    for _ in range(samples):
        num = den = 0.0
        for _ in range(n):
            a, b = pairs[rng.randrange(n)]
            num += a
            den += b
        values.append(num / den)
    values.sort()
    lo = percentile(values, (1 - level) / 2)
    hi = percentile(values, 1 - (1 - level) / 2)
    return lo, hi


def paired_delta_ci(
    a: Sequence[Pair], b: Sequence[Pair], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """CI of ratio(b) - ratio(a) over the same questions (a[i] and b[i] are one question), resampled together."""
    idx = [i for i in range(len(a)) if a[i][1] or b[i][1]]  # the questions either run scored
    if not idx:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(samples):
        na = da = nb = db = 0.0
        for _ in idx:
            i = idx[rng.randrange(len(idx))]
            na, da = na + a[i][0], da + a[i][1]
            nb, db = nb + b[i][0], db + b[i][1]
        if da and db:  # a resample where one run has nothing to score says nothing about the difference
            values.append(nb / db - na / da)
    if not values:
        return None
    values.sort()
    return percentile(values, (1 - level) / 2), percentile(values, 1 - (1 - level) / 2)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(timings: Iterable[dict[str, float]]) -> dict[str, dict[str, float]]:
    by_stage: dict[str, list[float]] = {}
    for t in timings:
        for stage, seconds in t.items():
            by_stage.setdefault(stage, []).append(seconds)
    return {
        stage: {"n": len(v), "p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "p99": percentile(v, 0.99)}
        for stage, v in by_stage.items()
    }

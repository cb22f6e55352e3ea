"""Metric functions against values computed by hand."""

import math

import pytest

from eval import metrics as m

G = {"g1", "g2"}


def test_retrieval_metrics_by_hand():
    ranked = ["x", "g2", "g2", "y", "g1"]  # g2 twice: two chunks of one record count once
    assert m.hit_at_k(ranked, G, 1) == 0.0
    assert m.hit_at_k(ranked, G, 2) == 1.0
    assert m.recall_at_k(ranked, G, 2) == 0.5
    assert m.recall_at_k(ranked, G, 4) == 1.0  # deduped: x, g2, y, g1
    assert m.reciprocal_rank(ranked, G) == 0.5
    assert m.reciprocal_rank(["x", "y"], G) == 0.0
    # deduped ranks: g2 at 2, g1 at 4; ideal: ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m.ndcg_at_k(ranked, G, 10) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k(["g1"], {"g1"}, 10) == 1.0
    assert m.ndcg_at_k(ranked, G, 3) == pytest.approx((1 / math.log2(3)) / idcg)


def test_answer_text_metrics_by_hand():
    assert m.normalise("The Amazing  Adventures, of Kavalier & Clay [2]!") == "amazing adventures of kavalier clay"
    assert m.normalise("Brontë") == "bronte"
    assert m.contains_all("Written by Michael Chabon [1].", ["michael CHABON"])
    assert not m.contains_all("Written by Michael Chabonne [1].", ["Chabon"])  # whole words only
    assert not m.contains_all("anything", [])
    # pred: summerland is novel by michael chabon (6), ref: michael chabon (2): P 1/3, R 1
    assert m.token_f1("Summerland is a novel by Michael Chabon [1].", "Michael Chabon") == pytest.approx(0.5)
    assert m.token_f1("", "") == 1.0 and m.token_f1("x", "") == 0.0 and m.token_f1("a b", "c d") == 0.0


def test_ratio_and_percentiles():
    assert m.ratio([(1, 2), (0, 0), (2, 2)]) == 0.75
    assert m.ratio([(0, 0)]) is None
    assert m.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert m.percentile([1, 2, 3, 4], 0.95) == pytest.approx(3.85)
    lat = m.latency_summary([{"total": 1.0, "generate": 0.5}, {"total": 3.0}])
    assert lat["total"] == {"n": 2, "p50": 2.0, "p95": 2.9, "p99": pytest.approx(2.98)}
    assert lat["generate"]["n"] == 1


def test_bootstrap_ci_brackets_the_value_and_is_reproducible():
    pairs = [(1, 1)] * 30 + [(0, 1)] * 10
    lo, hi = m.bootstrap_ci(pairs, samples=500, seed=1)
    assert lo < 0.75 < hi and 0.55 < lo and hi < 0.9
    assert m.bootstrap_ci(pairs, samples=500, seed=1) == (lo, hi)
    assert m.bootstrap_ci([(1, 1)] * 5) == (1.0, 1.0)  # no spread, no interval
    assert m.bootstrap_ci([(0, 0)]) is None


def test_paired_delta_ci():
    a = [(0, 1)] * 20
    b = [(1, 1)] * 20
    assert m.paired_delta_ci(a, b) == (1.0, 1.0)
    a2 = [(1, 1), (0, 1)] * 20
    lo, hi = m.paired_delta_ci(a2, a2)
    assert lo == hi == 0.0  # the same run: paired resampling gives exactly no difference


def test_paired_delta_ci_uses_questions_scored_in_either_run():
    # Run B writes sentences on questions where A wrote none: those questions count in B's ratio.
    a = [(1, 1), (0, 0), (0, 0)] * 10
    b = [(1, 1), (0, 1), (0, 1)] * 10
    lo, hi = m.paired_delta_ci(a, b, samples=300)
    assert hi < 0 and lo < -0.4  # B = 1/3 vs A = 1: a clear drop, not [0, 0]

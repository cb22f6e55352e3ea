"""Scores one answered question of a test set: metric pairs, outcome and failure reasons."""

from __future__ import annotations

from assistant.core.types import Answer
from eval import metrics as m
from eval.testset import EvalItem

GOOD_OUTCOMES = {"correct", "correct_refusal", "correct_not_held", "hit"}
SNIPPET = 600


def _gold_index(item: EvalItem, source_type: str, record_id: str, source_file: str) -> int | None:
    for i, gold in enumerate(item.gold):
        if gold.matches(source_type, record_id, source_file):
            return i
    return None


def score_question(item: EvalItem, answer: Answer, k: int, retrieve_only: bool = False) -> dict:
    """A JSON-ready record for results.jsonl."""
    pairs: dict[str, tuple[float, float]] = {}
    failures: list[str] = []
    retrieved = []
    ranked = []
    for rank, s in enumerate(answer.sources, 1):
        g = _gold_index(item, s.source_type, s.record_id, s.source_file)
        retrieved.append(
            {
                "rank": rank,
                "n": s.n,
                "source_type": s.source_type,
                "record_id": s.record_id,
                "title": s.title,
                "source_file": s.source_file,
                "score": round(s.score, 4),
                "gold": g is not None,
            }
        )
        ranked.append(("gold", g) if g is not None else ("other", s.source_type, s.record_id))
    relevant = {("gold", i) for i in range(len(item.gold))}
    judged_retrieval = item.answerable and bool(item.gold) and not item.contexts
    if judged_retrieval:
        pairs["hit@k"] = (m.hit_at_k(ranked, relevant, k), 1)
        pairs["recall@k"] = (m.recall_at_k(ranked, relevant, k), 1)
        pairs["mrr"] = (m.reciprocal_rank(ranked, relevant), 1)
        pairs["ndcg@10"] = (m.ndcg_at_k(ranked, relevant, 10), 1)
        if not pairs["hit@k"][0]:
            failures.append(f"retrieval: no gold record in the top {k}")

    record = {
        "id": item.id,
        "question": item.question,
        "answerable": item.answerable,
        "tags": item.tags,
        "source_type": item.source_type,
        "reference_answer": item.reference_answer,
        "gold": [g.model_dump(exclude_none=True) for g in item.gold],
        "retrieved": retrieved,
        "timings": {k_: round(v, 4) for k_, v in answer.timings.items()},
    }
    if retrieve_only:
        record["outcome"] = ("hit" if pairs["hit@k"][0] else "miss") if judged_retrieval else "not judged"
        record.update(metrics=pairs, failures=failures)
        return record

    by_n = {s.n: s for s in answer.sources}
    claims = [s for s in answer.sentences if s.kind != "template"]
    generated = [s for s in claims if s.kind == "generated"]
    shown = [s for s in claims if s.shown]
    markers = sum(len(s.citations) + len(s.dropped_markers) for s in claims)
    supported = [s for s in claims if s.status == "supported"]
    pairs["citation_precision_checker"] = (sum(len(s.citations) for s in supported), markers)
    pairs["citation_recall_checker"] = (len(supported), len(claims))
    pairs["unsupported_sentence_rate"] = (sum(s.status != "supported" for s in generated), len(generated))
    pairs["unsupported_shown_rate"] = (sum(s.status != "supported" for s in shown), len(shown))
    pairs["invalid_marker_rate"] = (sum(len(s.dropped_markers) for s in claims), markers)

    shown_citations = [by_n[n] for s in shown for n in s.citations if n in by_n]
    if item.gold:
        good = [c for c in shown_citations if _gold_index(item, c.source_type, c.record_id, c.source_file) is not None]
        pairs["citation_precision_gold"] = (len(good), len(shown_citations))
        for c in shown_citations:
            if c not in good:
                failures.append(f"cites [{c.n}] {c.source_type} {c.record_id}, not a gold record")
        if item.answerable:
            cited_gold = {_gold_index(item, c.source_type, c.record_id, c.source_file) for c in good}
            pairs["citation_recall_gold"] = (len(cited_gold), len(item.gold))

    said_not_held = answer.refused or any(n.endswith((":not_met", ":not_found")) for n in answer.notices)
    if item.expect == "not_held":
        pairs["not_held_said"] = (float(said_not_held), 1)
        outcome = "correct_not_held" if said_not_held else ("error" if answer.error else "claimed_held")
        if not said_not_held:
            failures.append("did not say the asked edition, format or part is not held")
    elif item.answerable:
        pairs["false_refusal"] = (float(answer.refused), 1)
        pairs["false_not_held"] = (float(said_not_held and not answer.refused), 1)
        facts = item.key_facts or ([item.reference_answer] if item.reference_answer else [])
        if facts:
            correct = not answer.refused and m.contains_all(answer.answer, facts)
            pairs["answer_correct"] = (float(correct), 1)
        if item.reference_answer:
            pairs["token_f1"] = (0.0 if answer.refused else m.token_f1(answer.answer, item.reference_answer), 1)
        if answer.error:
            outcome = "error"
        elif answer.refused:
            outcome = "false_refusal"
        elif facts and not pairs["answer_correct"][0]:
            outcome = "incorrect"
            missing = [f for f in facts if not m.contains_all(answer.answer, [f])]
            failures.append("answer lacks: " + "; ".join(missing))
        else:
            outcome = "correct"
        if answer.refused:
            failures.append("refused an answerable question")
    else:
        pairs["correct_refusal"] = (float(answer.refused), 1)
        outcome = "correct_refusal" if answer.refused else ("error" if answer.error else "should_have_refused")
        if not answer.refused:
            failures.append("answered a question the collections cannot answer")
    if answer.error:
        failures.append(f"error: {answer.error}")
    for sentence in shown:
        if sentence.status != "supported":
            failures.append(f"shown unsupported sentence: {sentence.text!r}")

    record.update(
        outcome=outcome,
        failures=failures,
        metrics=pairs,
        answer=answer.answer,
        refused=answer.refused,
        error=answer.error,
        handoff_offered=answer.handoff_offered,
        sentences=[
            {
                "text": s.text,
                "kind": s.kind,
                "status": s.status,
                "shown": s.shown,
                "citations": s.citations,
                "dropped_markers": s.dropped_markers,
                "reasons": s.reasons,
            }
            for s in answer.sentences
        ],
        cited=[
            {
                "n": c.n,
                "source_type": c.source_type,
                "record_id": c.record_id,
                "title": c.title,
                "locator": c.locator,
                "link": c.link,
                "text": c.text[:SNIPPET],
            }
            for c in {c.n: c for c in shown_citations}.values()
        ],
    )
    return record

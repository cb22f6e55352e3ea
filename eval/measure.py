"""Measures the citation checker and evidence-first answers on a JSONL question set (one run).

    python -m eval.measure eval/sets/demo.jsonl [--data-dir DIR] [--json]

Two answer modes over the same store and model: "plain" (the LLM's own sentences, checked) and
"evidence" (evidence first, the default). For "plain" it also scores the model's sentences as they
were before checking. Citation precision is judged against the set's gold records.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.bench import percentile


def load_set(path: Path) -> list[dict]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            item["question"], item["answerable"]  # required keys
        except (json.JSONDecodeError, KeyError) as exc:
            print(f"{path}:{number}: bad line skipped: {exc}", file=sys.stderr)
            continue
        items.append(item)
    return items


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 3) if den else None


def score(items: list[dict], answers: list) -> dict:
    answerable = [(i, a) for i, a in zip(items, answers) if i["answerable"]]
    unanswerable = [(i, a) for i, a in zip(items, answers) if not i["answerable"]]

    def citations(answer, shown_only: bool):
        by_n = {s.n: s for s in answer.sources}
        out = []
        for s in answer.sentences:
            if s.kind == "template" or (shown_only and not s.shown):
                continue
            out.extend(by_n[n].record_id for n in s.citations if n in by_n)
        return out

    def precision(shown_only: bool):
        good = total = 0
        for item, answer in zip(items, answers):
            gold = {g["record_id"] for g in item.get("gold", [])}
            cited = citations(answer, shown_only)
            total += len(cited)
            good += sum(c in gold for c in cited)
        return _rate(good, total), total

    after_p, after_n = precision(True)
    before_p, before_n = precision(False)
    model_sentences = [s for a in answers for s in a.sentences if s.kind == "generated"]
    markers = sum(len(s.citations) + len(s.dropped_markers) for s in model_sentences)
    shown = [s for a in answers for s in a.sentences if s.shown and s.kind != "template"]
    by_type: dict[str, list[bool]] = {}
    for item, answer in answerable:
        kind = item["gold"][0]["source_type"] if item.get("gold") else "?"
        facts = item.get("key_facts", [])
        hit = (not answer.refused) and all(f.lower() in answer.answer.lower() for f in facts)
        by_type.setdefault(kind, []).append(hit)
    totals = [a.timings.get("total", 0.0) for a in answers]
    return {
        "questions": len(items),
        "answered_answerable": _rate(sum(not a.refused for _, a in answerable), len(answerable)),
        "correct_refusal_unanswerable": _rate(sum(a.refused for _, a in unanswerable), len(unanswerable)),
        "citation_precision_shown": after_p, "citations_shown": after_n,
        "citation_precision_before_check": before_p, "citations_before_check": before_n,
        "model_sentences": len(model_sentences),
        "model_sentences_unsupported": _rate(sum(s.status != "supported" for s in model_sentences), len(model_sentences)),
        "model_markers_invalid": _rate(sum(len(s.dropped_markers) for s in model_sentences), markers),
        "shown_sentences": len(shown),
        "shown_unsupported": _rate(sum(s.status != "supported" for s in shown), len(shown)),
        "key_fact_accuracy": {k: _rate(sum(v), len(v)) for k, v in sorted(by_type.items())},
        "latency_p50_s": round(percentile(totals, 0.5), 2), "latency_p95_s": round(percentile(totals, 0.95), 2),
    }


def run(services, items: list[dict]) -> dict:
    from tqdm import tqdm

    results = {}
    for mode, evidence in (("plain", False), ("evidence", True)):
        services.answers.evidence_first = evidence
        answers = [services.answers.ask(item["question"]) for item in tqdm(items, desc=mode, leave=False)]
        results[mode] = score(items, answers)
    services.answers.evidence_first = True
    return results


def main(argv=None) -> int:
    from assistant.services import Services
    from assistant.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.measure")
    parser.add_argument("set", type=Path)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    services = Services(Settings.load(data_dir=args.data_dir))
    result = run(services, load_set(args.set))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`refdesk bench answer`: per-stage latency and refdesk's own overhead, measured in one run."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

DEFAULT_QUESTIONS = Path(__file__).parent / "sets" / "bench_questions.txt"
STAGES = ("embed_query", "retrieve", "generate", "check", "total")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def bench_answer(services, n: int = 10, k: int | None = None, questions_file: str | None = None) -> dict:
    path = Path(questions_file) if questions_file else DEFAULT_QUESTIONS
    questions = [q.strip() for q in path.read_text(encoding="utf-8").splitlines() if q.strip() and not q.startswith("#")]
    if not questions:
        raise ValueError(f"{path}: no questions")
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    errors = refused = 0
    started = time.perf_counter()
    for i in range(n):
        answer = services.answers.ask(questions[i % len(questions)], k=k)
        errors += bool(answer.error)
        refused += answer.refused
        for stage in STAGES:
            per_stage[stage].append(answer.timings.get(stage, 0.0))
    total = sum(per_stage["total"])
    generate = sum(per_stage["generate"])
    return {
        "n": n,
        "wall_s": round(time.perf_counter() - started, 3),
        "errors": errors,
        "refused": refused,
        "stages": {
            s: {"p50": round(percentile(v, 0.5), 4), "p95": round(percentile(v, 0.95), 4),
                "mean": round(statistics.fmean(v), 4) if v else 0.0}
            for s, v in per_stage.items()
        },
        # refdesk's own share of the answer time: everything but the model's generation.
        "overhead": round((total - generate) / total, 4) if total else 0.0,
    }


def format_answer_bench(result: dict) -> str:
    lines = [f"{result['n']} questions, {result['wall_s']} s wall, {result['errors']} errors, {result['refused']} refused"]
    lines.append(f"{'stage':12} {'p50 s':>9} {'p95 s':>9} {'mean s':>9}")
    for stage, v in result["stages"].items():
        lines.append(f"{stage:12} {v['p50']:9.4f} {v['p95']:9.4f} {v['mean']:9.4f}")
    lines.append(f"overhead (total - generate) / total = {result['overhead']:.4f}")
    return "\n".join(lines)

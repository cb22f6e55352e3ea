"""`refdesk eval compare RUN_A RUN_B`: per-metric deltas (B − A) with paired bootstrap CIs, and the
questions whose outcome changed. Only questions present in both runs are compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.runner import RESULTS_FILE, read_results
from eval.scoring import GOOD_OUTCOMES


def _results(run: Path) -> dict[str, dict]:
    path = Path(run) / RESULTS_FILE if Path(run).is_dir() else Path(run)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results.jsonl (give a folder written by refdesk eval run)")
    return {r["id"]: r for r in read_results(path)}


def compare(run_a: Path, run_b: Path, samples: int = 1000) -> dict:
    a, b = _results(run_a), _results(run_b)
    common = [i for i in a if i in b]
    out_metrics = {}
    for name in m.METRICS:
        pa = [tuple(a[i]["metrics"].get(name, (0, 0))) for i in common]
        pb = [tuple(b[i]["metrics"].get(name, (0, 0))) for i in common]
        va, vb = m.ratio(pa), m.ratio(pb)
        if va is None and vb is None:
            continue
        entry: dict[str, Any] = {"a": None if va is None else round(va, 4), "b": None if vb is None else round(vb, 4)}
        if va is not None and vb is not None:
            ci = m.paired_delta_ci(pa, pb, samples=samples)
            entry["delta"] = round(vb - va, 4)
            entry["ci95"] = None if ci is None else [round(ci[0], 4), round(ci[1], 4)]
            entry["significant"] = ci is not None and (ci[0] > 0 or ci[1] < 0)
        out_metrics[name] = entry
    changed = []
    for i in common:
        oa, ob = a[i]["outcome"], b[i]["outcome"]
        if oa != ob:
            change = (
                "better"
                if ob in GOOD_OUTCOMES and oa not in GOOD_OUTCOMES
                else ("worse" if oa in GOOD_OUTCOMES and ob not in GOOD_OUTCOMES else "other")
            )
            changed.append({"id": i, "question": a[i]["question"], "a": oa, "b": ob, "change": change})
    return {
        "a": str(run_a),
        "b": str(run_b),
        "common": len(common),
        "only_a": sorted(set(a) - set(b)),
        "only_b": sorted(set(b) - set(a)),
        "metrics": out_metrics,
        "changed": changed,
    }


def format_compare(result: dict) -> str:
    lines = [
        f"A = {result['a']}",
        f"B = {result['b']}",
        f"{result['common']} questions in both runs"
        + (f"; only in A: {len(result['only_a'])}" if result["only_a"] else "")
        + (f"; only in B: {len(result['only_b'])}" if result["only_b"] else ""),
        "",
        f"{'metric':28} {'A':>7} {'B':>7} {'B−A':>8}  95 % CI of B−A",
    ]
    for name, e in result["metrics"].items():
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        ci = e.get("ci95")
        ci_text = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]{' *' if e.get('significant') else ''}" if ci else ""
        delta = f"{e['delta']:+.3f}" if "delta" in e else "–"
        lines.append(f"{name:28} {fmt(e['a']):>7} {fmt(e['b']):>7} {delta:>8}  {ci_text}")
    lines.append("(* the CI excludes 0)")
    lines.append("")
    lines.append(f"{len(result['changed'])} questions changed outcome:")
    for c in result["changed"]:
        lines.append(f"  {c['change']:6} {c['id']}: {c['a']} -> {c['b']}  ({c['question']})")
    return "\n".join(lines)

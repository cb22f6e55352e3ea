"""`refdesk eval run`: asks every question of a set, scores it, writes results, summary and report.

Results are appended one line per question as soon as it is answered, so an interrupted run resumes
where it stopped (ids already in results.jsonl are skipped) as long as the run's settings are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path

from assistant.core.errors import RefdeskError
from assistant.core.progress import progress_for
from eval import metrics as m
from eval.scoring import GOOD_OUTCOMES, score_question
from eval.testset import EvalItem, SetError, load_set
from ingest.manifest import file_sha256

RUN_FILE, RESULTS_FILE, SUMMARY_FILE, REPORT_FILE = "run.json", "results.jsonl", "summary.json", "report.html"
BREAKDOWN_METRICS = (
    "hit@k",
    "answer_correct",
    "false_refusal",
    "correct_refusal",
    "citation_precision_gold",
    "citation_recall_checker",
)


class RunMismatch(RefdeskError):
    """The output folder holds a run made with other settings: resuming it would mix two runs."""


def read_results(path: Path) -> list[dict]:
    """Complete lines only: a line cut by an interruption is dropped (and its question asked again)."""
    if not path.exists():
        return []
    records, good_bytes = [], 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                records.append(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_bytes)
    return records


class EvalRunner:
    def __init__(
        self,
        services,
        out_dir: Path,
        k: int | None = None,
        retrieve_only: bool = False,
        mode: str = "evidence",
        progress: bool = True,
        bootstrap_samples: int = 1000,
    ):
        self.services = services
        self.out_dir = Path(out_dir)
        self.k = k or services.settings.retrieval.top_k
        self.retrieve_only = retrieve_only
        self.mode = mode
        self.progress = progress
        self.bootstrap_samples = bootstrap_samples

    def config(self, set_path: Path) -> dict:
        s = self.services.settings
        return {
            "set": str(set_path),
            "set_sha256": file_sha256(set_path),
            "mode": self.mode,
            "k": self.k,
            "retrieve_only": self.retrieve_only,
            "llm_model": s.llm.model,
            "llm_backend": s.llm.backend,
            "embedder": self.services.embedder_name,
            "verifiers": list(s.verify.verifiers),
        }

    def _start(self, config: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        run_file = self.out_dir / RUN_FILE
        if run_file.exists():
            old = json.loads(run_file.read_text(encoding="utf-8"))
            differs = [key for key in config if old.get("config", {}).get(key) != config[key]]
            if differs:
                raise RunMismatch(
                    f"{self.out_dir} holds a run with other settings ({', '.join(differs)}); use another --out folder"
                )
            return
        run_file.write_text(
            json.dumps({"config": config, "started": dt.datetime.now(dt.UTC).isoformat()}, indent=2), encoding="utf-8"
        )

    def run(self, set_path: Path) -> dict:
        set_path = Path(set_path)
        items, errors = load_set(set_path)
        config = self.config(set_path)
        self._start(config)
        results_path = self.out_dir / RESULTS_FILE
        done = {r["id"] for r in read_results(results_path)}
        todo = [item for item in items if item.id not in done]
        answers = self.services.answers
        answers.evidence_first = self.mode == "evidence"
        started = time.perf_counter()
        with results_path.open("a", encoding="utf-8") as out:
            progress = progress_for(self.progress, len(items), len(done), desc="questions", unit="question")
            try:
                for item in todo:
                    out.write(json.dumps(self._one(answers, item), ensure_ascii=False) + "\n")
                    out.flush()
                    progress.advance()
            finally:
                progress.close()
        seconds = time.perf_counter() - started
        records = [r for r in read_results(results_path) if r["id"] in {i.id for i in items}]
        summary = summarize(records, config, errors, self.bootstrap_samples)
        summary["resumed_from"] = len(done)
        summary["seconds_this_invocation"] = round(seconds, 2)
        (self.out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        from eval.report import write_report

        write_report(self.out_dir / REPORT_FILE, summary, records)
        return summary

    def _one(self, answers, item: EvalItem) -> dict:
        try:
            answer = answers.ask(
                item.question,
                k=self.k,
                retrieve_only=self.retrieve_only,
                contexts=item.contexts or None,
                history=item.history or None,
            )
        except Exception as exc:  # noqa: BLE001 - one question must not end the run; its record says why
            from assistant.core.types import Answer

            answer = Answer(question=item.question, error=f"{type(exc).__name__}: {exc}")
        return score_question(item, answer, self.k, self.retrieve_only)


def summarize(
    records: list[dict], config: dict | None = None, set_errors: list[SetError] | None = None, samples: int = 1000
) -> dict:
    metrics = {}
    for name in m.METRICS:
        pairs = [tuple(r["metrics"][name]) for r in records if name in r["metrics"]]
        value = m.ratio(pairs)
        if value is None:
            continue
        ci = m.bootstrap_ci(pairs, samples=samples)
        metrics[name] = {
            "value": round(value, 4),
            "ci95": None if ci is None else [round(ci[0], 4), round(ci[1], 4)],
            "n": sum(d for _, d in pairs),
            "questions": sum(1 for _, d in pairs if d),
        }
    return {
        "config": config or {},
        "questions": len(records),
        "set_errors": [e.text() for e in set_errors or []],
        "outcomes": dict(Counter(r["outcome"] for r in records)),
        "ok_rate": round(sum(r["outcome"] in GOOD_OUTCOMES for r in records) / len(records), 4) if records else None,
        "metrics": metrics,
        "latency_s": {
            stage: {k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()}
            for stage, p in m.latency_summary(r["timings"] for r in records).items()
        },
        "by_tag": _breakdown(records, lambda r: r["tags"] or ["(no tag)"]),
        "by_source_type": _breakdown(records, lambda r: [r["source_type"]]),
    }


def _breakdown(records: list[dict], keys) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in records:
        for key in keys(r):
            groups.setdefault(key, []).append(r)
    out = {}
    for key, group in sorted(groups.items()):
        values = {}
        for name in BREAKDOWN_METRICS:
            value = m.ratio(tuple(r["metrics"][name]) for r in group if name in r["metrics"])
            if value is not None:
                values[name] = round(value, 4)
        out[key] = {
            "questions": len(group),
            "ok_rate": round(sum(r["outcome"] in GOOD_OUTCOMES for r in group) / len(group), 4),
            "metrics": values,
        }
    return out

"""report.html: one self-contained page (inline SVG plots, no scripts, nothing fetched)."""

from __future__ import annotations

import html
import io
from pathlib import Path

from eval.metrics import METRICS

FAIL_ROWS = 200  # the table stays readable; results.jsonl has every question


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no screen here or on CI
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text (small, searchable)
    return plt


def metrics_plot(summary: dict) -> str:
    plt = _plt()
    names = [n for n in METRICS if n in summary["metrics"]]
    values = [summary["metrics"][n]["value"] for n in names]
    lo = [v - summary["metrics"][n]["ci95"][0] for n, v in zip(names, values, strict=True)]
    hi = [summary["metrics"][n]["ci95"][1] - v for n, v in zip(names, values, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(names) + 1))
    ax.barh(names, values, xerr=[lo, hi], color="#3b6ea5", ecolor="#222", capsize=3)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("value (bars: 95 % bootstrap CI)")
    for y, v in enumerate(values):
        ax.text(min(v, 0.85) + 0.02, y, f"{v:.3f}", va="center", fontsize=8)
    return _svg(fig)


def latency_plot(records: list[dict]) -> str:
    plt = _plt()
    stages = sorted({s for r in records for s in r["timings"]}, key=lambda s: (s == "total", s))
    data = [[r["timings"][s] for r in records if s in r["timings"]] for s in stages]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(stages) + 1))
    if stages:
        ax.boxplot(data, orientation="horizontal", tick_labels=stages, showfliers=True)
        ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("seconds per question")
    return _svg(fig)


def breakdown_plot(groups: dict, title: str) -> str:
    plt = _plt()
    names = list(groups)
    values = [groups[n]["ok_rate"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(names) + 1))
    ax.barh([f"{n} ({groups[n]['questions']})" for n in names], values, color="#5a9e6f")
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(f"share of questions with a good outcome, by {title}")
    return _svg(fig)


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _breakdown_table(groups: dict) -> str:
    names = sorted({k for g in groups.values() for k in g["metrics"]}, key=list(METRICS).index)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{_e(key)}</td><td>{g['questions']}</td><td>{g['ok_rate']:.3f}</td>"
        + "".join(f"<td>{g['metrics'][n]:.3f}</td>" if n in g["metrics"] else "<td>–</td>" for n in names)
        + "</tr>"
        for key, g in groups.items()
    )
    return f"<table><tr><th></th><th>questions</th><th>good outcome</th>{head}</tr>{rows}</table>"


def _failure_rows(records: list[dict]) -> tuple[str, int]:
    failed = [r for r in records if r["failures"]]
    rows = []
    for r in failed[:FAIL_ROWS]:
        cited = "".join(
            f"<li>[{c['n']}] {_e(c['source_type'])} {_e(c['record_id'])}: {_e(c['text'][:300])}</li>"
            for c in r.get("cited", [])
        )
        why = "".join(f"<li>{_e(f)}</li>" for f in r["failures"])
        rejected = "".join(
            f"<li>{_e(s['text'])} — {_e('; '.join(s['reasons']))}</li>"
            for s in r.get("sentences", [])
            if s["status"] != "supported"
        )
        rows.append(
            f"<tr><td>{_e(r['id'])}</td><td>{_e(r['outcome'])}</td><td>{_e(r['question'])}</td>"
            f"<td class=pre>{_e(r.get('answer', ''))}</td><td><ul>{cited}</ul></td>"
            f"<td><ul>{why}</ul>{'<details><summary>rejected by the checker</summary><ul>' + rejected + '</ul></details>' if rejected else ''}</td></tr>"
        )
    return "".join(rows), len(failed)


def render(summary: dict, records: list[dict]) -> str:
    config = summary.get("config", {})
    metric_rows = "".join(
        f"<tr><td title='{_e(METRICS[n])}'>{_e(n)}</td><td>{v['value']:.3f}</td>"
        f"<td>[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]</td><td>{v['n']:g}</td><td>{v['questions']}</td>"
        f"<td>{_e(METRICS[n])}</td></tr>"
        for n, v in summary["metrics"].items()
    )
    latency_rows = "".join(
        f"<tr><td>{_e(s)}</td><td>{p['n']}</td><td>{p['p50']:.3f}</td><td>{p['p95']:.3f}</td>"
        f"<td>{p['p99']:.3f}</td></tr>"
        for s, p in summary["latency_s"].items()
    )
    outcomes = ", ".join(f"{_e(k)}: {v}" for k, v in sorted(summary["outcomes"].items()))
    fail_rows, failed = _failure_rows(records)
    errors = "".join(f"<li>{_e(e)}</li>" for e in summary.get("set_errors", []))
    plots = [
        ("Metrics", metrics_plot(summary)),
        ("Latency per stage", latency_plot(records)),
        ("By tag", breakdown_plot(summary["by_tag"], "tag")),
        ("By source type", breakdown_plot(summary["by_source_type"], "source type")),
    ]
    figures = "".join(f"<figure class=plot><figcaption>{_e(t)}</figcaption>{svg}</figure>" for t, svg in plots)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>refdesk eval — {_e(Path(config.get("set", "set")).name)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
td, th {{ border: 1px solid #ccc; padding: .25rem .5rem; vertical-align: top; text-align: left; }}
.pre {{ white-space: pre-wrap; max-width: 30rem; }}
figure.plot {{ display: inline-block; margin: 0 1rem 1rem 0; vertical-align: top; }}
figure.plot svg {{ max-width: 46rem; height: auto; }}
figcaption {{ font-weight: 600; }}
</style></head><body>
<h1>refdesk evaluation report</h1>
<p>Set <code>{_e(config.get("set", ""))}</code> · mode <b>{_e(config.get("mode", ""))}</b>
{" (retrieval only)" if config.get("retrieve_only") else ""} · k = {_e(config.get("k", ""))} ·
model <code>{_e(config.get("llm_model", ""))}</code> · embedder <code>{_e(config.get("embedder", ""))}</code> ·
{summary["questions"]} questions · good outcome {summary["ok_rate"] if summary["ok_rate"] is not None else "–"}</p>
<p>Outcomes: {outcomes}</p>
{f"<p>Lines of the set that could not be read:</p><ul>{errors}</ul>" if errors else ""}
<section id="plots">{figures}</section>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th><th>95 % CI</th><th>n (denominator)</th><th>questions</th><th>meaning</th></tr>
{metric_rows}</table>
<h2>Latency (seconds)</h2>
<table><tr><th>stage</th><th>n</th><th>p50</th><th>p95</th><th>p99</th></tr>{latency_rows}</table>
<h2>By tag</h2>{_breakdown_table(summary["by_tag"])}
<h2>By source type</h2>{_breakdown_table(summary["by_source_type"])}
<h2 id="failures">Failures ({failed})</h2>
<table class="failures"><tr><th>id</th><th>outcome</th><th>question</th><th>answer</th><th>cited text</th><th>why</th></tr>
{fail_rows}</table>
{f"<p>First {FAIL_ROWS} shown; results.jsonl has them all.</p>" if failed > FAIL_ROWS else ""}
</body></html>
"""


def write_report(path: Path, summary: dict, records: list[dict]) -> None:
    path.write_text(render(summary, records), encoding="utf-8")

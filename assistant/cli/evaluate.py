"""`refdesk` commands: evaluation and benchmarks."""

from __future__ import annotations

import sys

from assistant.cli.common import print_json
from assistant.core.settings import SettingsError


def cmd_bench(services, args) -> int:
    from eval.bench import bench_answer, bench_ingest, format_embed_bench, format_ingest_bench

    if args.what == "scale":
        from eval.scale import bench_scale, format_scale_bench

        result = bench_scale(
            args.paths or ["../shared/data/marc"],
            args.records,
            args.per_file,
            [e.strip() for e in args.engines.split(",") if e.strip()],
            settings=services.settings,
            ray_address=args.ray_address,
        )
        print_json(result) if args.json else print(format_scale_bench(result))
        return 0
    if args.what == "warc-memory":
        from eval.bench import bench_warc_memory

        sources = args.paths or ["../shared/data/warc/aut/example.warc.gz"]
        print_json(bench_warc_memory(services.settings, sources, size_mb=args.size_mb))
        return 0
    if args.what == "retrieval":
        from eval.bench import bench_retrieval

        if not args.questions:
            raise SettingsError("refdesk bench retrieval needs --questions SET.jsonl (e.g. a generated set)")
        print_json(
            bench_retrieval(services, args.size, args.questions, n=args.n if args.n != 10 else 200, keep=args.keep)
        )
        return 0
    if args.what == "widget":
        from eval.bench import bench_widget

        url = args.url or f"http://{services.settings.serve.host}:{services.settings.serve.port}"
        print_json(
            bench_widget(
                url,
                sessions=args.sessions,
                per_session=args.per_session,
                questions_file=args.questions,
                duration_s=args.duration,
            )
        )
        return 0
    if args.what == "refcheck":
        from eval.refcheck_bench import bench_refcheck, format_refcheck_bench

        result = bench_refcheck(services.settings, args.paths or ["../shared/data/marc"], seed=args.seed)
        print_json(result) if args.json else print(format_refcheck_bench(result))
        return 0
    if args.what == "embed":
        from eval.bench import bench_embed

        if not args.questions:
            raise SettingsError("refdesk bench embed needs --questions SET.jsonl (e.g. a generated set)")
        result = bench_embed(services, args.questions, n_texts=args.n if args.n != 10 else 2000)
        print_json(result) if args.json else print(format_embed_bench(result))
        return 0
    if args.what == "ingest":
        if not args.paths:
            raise SettingsError("refdesk bench ingest needs one or more PATHs")
        result = bench_ingest(services.settings, args.paths)
        print_json(result) if args.json else print(format_ingest_bench(result))
        return 0

    result = bench_answer(services, n=args.n, k=args.k, questions_file=args.questions)
    if args.json:
        print_json(result)
    else:
        from eval.bench import format_answer_bench

        print(format_answer_bench(result))
    return 0


def cmd_eval(services, args) -> int:
    from pathlib import Path

    if args.action == "compare":
        from eval.compare import compare, format_compare

        if len(args.paths) != 2:
            raise SettingsError("refdesk eval compare needs two run folders: RUN_A RUN_B")
        result = compare(Path(args.paths[0]), Path(args.paths[1]))
        print_json(result) if args.json else print(format_compare(result))
        return 0
    if args.action == "generate":
        from eval.generate import generate

        if len(args.paths) != 2:
            raise SettingsError(
                "refdesk eval generate needs DATA (a folder with marc/, ead/, warc/) and OUT (a folder)"
            )
        print_json(generate(Path(args.paths[0]), args.seed, Path(args.paths[1])))
        return 0
    if args.action == "convert-halueval":
        from eval.halueval import convert

        if len(args.paths) != 2:
            raise SettingsError("refdesk eval convert-halueval needs IN (HaluEval qa_data.json) and OUT (.jsonl)")
        result = convert(Path(args.paths[0]), Path(args.paths[1]), limit=args.limit, mismatched=args.mismatched)
        for error in result["errors"]:
            print(error, file=sys.stderr)
        print(
            f"{result['written']} questions written to {result['out']} ({result['read']} read, "
            f"{result['mismatched']} with a mismatched context, {len(result['errors'])} bad lines)"
        )
        return 0

    from eval.runner import EvalRunner, RunMismatch

    if len(args.paths) != 1:
        raise SettingsError("refdesk eval run needs one SET.jsonl")
    set_path = Path(args.paths[0])
    if not set_path.is_file():
        raise SettingsError(f"{set_path}: no such test set")
    k = args.k or services.settings.retrieval.top_k
    default = f"{set_path.stem}-{'retrieve' if args.retrieve_only else args.mode}-k{k}"
    out = Path(args.out) if args.out else services.settings.data_dir / "eval" / default
    if args.fresh and out.exists():
        import shutil

        shutil.rmtree(out)
    runner = EvalRunner(
        services,
        out,
        k=k,
        retrieve_only=args.retrieve_only,
        mode=args.mode,
        progress=not args.json,  # a bar on a terminal, a line every 30 s in a log
    )
    try:
        summary = runner.run(set_path)
    except RunMismatch as exc:
        raise SettingsError(str(exc)) from None
    for error in summary["set_errors"]:
        print(error, file=sys.stderr)
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['questions']} questions ({summary['resumed_from']} from an earlier, interrupted run) "
            f"in {summary['seconds_this_invocation']} s; outcomes: "
            + ", ".join(f"{k_}={v}" for k_, v in sorted(summary["outcomes"].items()))
        )
        for name, v in summary["metrics"].items():
            print(f"  {name:28} {v['value']:.3f}  [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]  n={v['n']:g}")
        total = summary["latency_s"].get("total")
        if total:
            print(f"  latency total p50 {total['p50']:.2f} s, p95 {total['p95']:.2f} s, p99 {total['p99']:.2f} s")
        print(f"report: {out / 'report.html'}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("bench", help="benchmarks")
    s.add_argument(
        "what", choices=["answer", "ingest", "embed", "warc-memory", "refcheck", "widget", "retrieval", "scale"]
    )
    s.add_argument("--records", type=int, default=5000, help="scale: records in the synthetic catalogue")
    s.add_argument("--per-file", type=int, default=500, help="scale: records per catalogue file")
    s.add_argument("--engines", default="local,ray", help="scale: the ingest engines to run, in turn")
    s.add_argument("--ray-address", default="", help="scale: a running Ray cluster (default: a local one)")
    s.add_argument("--url", help="widget: a running refdesk serve (default: serve.host:serve.port)")
    s.add_argument("--sessions", type=int, default=20, help="widget: patrons at once")
    s.add_argument("--per-session", type=int, default=2, help="widget: questions each")
    s.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="widget: ask for this many seconds instead (patrons told 'busy' wait as told, up to 60 s)",
    )
    s.add_argument("--size-mb", type=int, default=1024, help="warc-memory: size of the WARC to build and stream")
    s.add_argument("--size", type=int, default=100_000, help="retrieval: chunks in the synthetic store")
    s.add_argument(
        "--keep", metavar="DIR", help="retrieval: make the synthetic store in DIR and keep it (reused if full)"
    )
    s.add_argument("paths", nargs="*", help="ingest: files or folders to ingest into a temporary store")
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--seed", type=int, default=7, help="refcheck: seed of the case builder")
    s.add_argument("--k", type=int)
    s.add_argument("--questions", help="file with one question per line")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("eval", help="run a test set, compare runs, convert HaluEval")
    s.add_argument("action", choices=["run", "compare", "convert-halueval", "generate"])
    s.add_argument(
        "paths", nargs="+", help="run: SET.jsonl; compare: RUN_A RUN_B; convert-halueval: IN OUT; generate: DATA OUT"
    )
    s.add_argument("--seed", type=int, default=1, help="generate: decides the templates and the dev/held-out split")
    s.add_argument("--out", help="run: output folder (default DATA_DIR/eval/<set>-<mode>-k<k>; resumes if present)")
    s.add_argument("--fresh", action="store_true", help="run: discard earlier results in the output folder")
    s.add_argument("--retrieve-only", action="store_true", help="run: retrieval metrics only, no LLM")
    s.add_argument("--k", type=int, help="run: sources retrieved per question")
    s.add_argument(
        "--mode",
        choices=["evidence", "plain"],
        default="evidence",
        help="run: evidence-first answers (default) or the LLM's own answer, checked",
    )
    s.add_argument("--limit", type=int, help="convert-halueval: first N records only")
    s.add_argument(
        "--mismatched",
        type=float,
        default=0.25,
        help="convert-halueval: share of questions repeated with another question's context (unanswerable)",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

"""`refdesk bench answer`: per-stage latency and refdesk's own overhead, measured in one run."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from eval.metrics import percentile

DEFAULT_QUESTIONS = Path(__file__).parent / "sets" / "bench_questions.txt"
STAGES = ("embed_query", "retrieve", "evidence", "generate", "check", "lead_late", "total")


def temp_services(settings, folder: str):
    """Services over a fresh embedded store in `folder`, with every other setting as given."""
    from assistant.services import Services

    bench_settings = settings.model_copy(deep=True)
    bench_settings.data_dir = Path(folder)
    bench_settings.store.mode = "embedded"
    bench_settings.store.path = ""
    return Services(bench_settings)


def bench_answer(services, n: int = 10, k: int | None = None, questions_file: str | None = None) -> dict:
    path = Path(questions_file) if questions_file else DEFAULT_QUESTIONS
    questions = [
        q.strip() for q in path.read_text(encoding="utf-8").splitlines() if q.strip() and not q.startswith("#")
    ]
    if not questions:
        raise ValueError(f"{path}: no questions")
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    errors = refused = 0
    started = time.perf_counter()
    services.answers.ask(questions[0], k=k)  # loads the models: not what a patron waits for once serving
    first_checked: list[float] = []  # wall time to the first stage that shows a checked sentence
    full: list[float] = []  # wall time to the finished answer
    for i in range(n):
        t0 = time.perf_counter()
        first = None
        for answer in services.answers.stream(questions[i % len(questions)], k=k):
            if first is None and any(s.shown and s.status == "supported" for s in answer.sentences):
                first = time.perf_counter() - t0
        full.append(time.perf_counter() - t0)
        first_checked.append(first if first is not None else full[-1])  # a refusal is its own first sentence
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
        # What a patron waits for: the first checked sentence on screen, and the finished answer.
        "first_checked_sentence_s": {
            "p50": round(percentile(first_checked, 0.5), 4),
            "p95": round(percentile(first_checked, 0.95), 4),
        },
        "full_answer_s": {"p50": round(percentile(full, 0.5), 4), "p95": round(percentile(full, 0.95), 4)},
        "lead_late": sum(1 for v in per_stage.get("lead_late", []) if v),
        "stages": {
            s: {
                "p50": round(percentile(v, 0.5), 4),
                "p95": round(percentile(v, 0.95), 4),
                "mean": round(statistics.fmean(v), 4) if v else 0.0,
            }
            for s, v in per_stage.items()
        },
        # refdesk's own share of the answer time: everything but the model's generation.
        "overhead": round((total - generate) / total, 4) if total else 0.0,
    }


def format_answer_bench(result: dict) -> str:
    lines = [
        f"{result['n']} questions, {result['wall_s']} s wall, {result['errors']} errors, {result['refused']} refused"
    ]
    lines.append(f"{'stage':12} {'p50 s':>9} {'p95 s':>9} {'mean s':>9}")
    for stage, v in result["stages"].items():
        lines.append(f"{stage:12} {v['p50']:9.4f} {v['p95']:9.4f} {v['mean']:9.4f}")
    first, full = result["first_checked_sentence_s"], result["full_answer_s"]
    lines.append(f"first checked sentence: p50 {first['p50']:.3f} s, p95 {first['p95']:.3f} s")
    lines.append(f"full answer:            p50 {full['p50']:.3f} s, p95 {full['p95']:.3f} s")
    lines.append(f"leads past the budget:  {result['lead_late']} of {result['n']}")
    lines.append(f"overhead (total - generate) / total = {result['overhead']:.4f}")
    return "\n".join(lines)


def bench_ingest(settings, paths: list[str], batch_size: int | None = None) -> dict:
    """Ingest PATHs into a temporary store, then encode the very same chunk texts with the back-end's bare
    model (`bare_encoder`) in the same process: the ratio of the two rates is refdesk's ingest efficiency
    (1.0 = no overhead beyond the model)."""
    import resource
    import tempfile

    from assistant.backends.embeddings import embedder_name

    with tempfile.TemporaryDirectory(prefix="refdesk-bench-") as tmp:
        services = temp_services(settings, tmp)
        embedder = services.embedder
        embedder.get_text_embedding_batch(["warm-up"] * 8)  # load and warm the model outside both timings
        texts: list[str] = []

        def embed(batch: list[str]):
            texts.extend(batch)
            return embedder.get_text_embedding_batch(batch)

        manifest = services.manifest()
        try:
            ingestor = services.ingestor(manifest, progress=True)
            ingestor.embed = embed
            summary = ingestor.ingest(paths)
        finally:
            manifest.close()
        model = embedder_name(services.settings.embedder)
        bare_with, encode = bare_encoder(embedder, batch_size or settings.embedding.batch_size)
        t0 = time.perf_counter()
        if texts:
            encode(texts)
        encode_s = time.perf_counter() - t0
    ingest_rate = summary.chunks_added / summary.seconds if summary.seconds else 0.0
    encode_rate = len(texts) / encode_s if encode_s else 0.0
    return {
        "paths": [str(p) for p in paths],
        "model": model,
        "files": summary.files,
        "files_failed": summary.files_failed,
        "records": summary.records,
        "chunks": summary.chunks_added,
        "skipped": len(summary.skipped),
        "ingest_s": round(summary.seconds, 2),
        "embed_s_inside_ingest": round(summary.embed_seconds, 2),
        "records_per_s": round(summary.records / summary.seconds, 2) if summary.seconds else 0.0,
        "chunks_per_s": round(ingest_rate, 2),
        "bare_encode_with": bare_with,
        "bare_encode_s": round(encode_s, 2),
        "bare_encode_chunks_per_s": round(encode_rate, 2),
        "ratio_ingest_to_bare_encode": round(ingest_rate / encode_rate, 3) if encode_rate else 0.0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # The run's read process and text-extraction worker, ended and waited for by now: Linux reports the
        # largest one's peak (not their sum, which no sampling-free counter gives).
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def bare_encoder(embedder, batch_size: int) -> tuple[str, Callable[[list[str]], object]]:
    """The back-end's model called directly, without llama-index or the pipeline around it: the torch
    back-end's SentenceTransformer and the static back-ends' StaticModel have an `encode` of their own; the
    others (ONNX, the test fake) are measured through the embedding's own batch call."""
    model = getattr(embedder, "_model", None)
    if model is not None and hasattr(model, "encode"):
        name = f"{type(model).__name__}.encode"
        return name, lambda texts: model.encode(texts, batch_size=batch_size, show_progress_bar=False)
    return f"{type(embedder).__name__}.get_text_embedding_batch", embedder.get_text_embedding_batch


def format_ingest_bench(result: dict) -> str:
    return "\n".join(
        [
            f"{result['files']} files ({result['files_failed']} failed), {result['records']} records, "
            f"{result['chunks']} chunks, {result['skipped']} skipped",
            f"ingest:      {result['ingest_s']:8.2f} s  {result['records_per_s']:8.2f} records/s  "
            f"{result['chunks_per_s']:8.2f} chunks/s (embedding {result['embed_s_inside_ingest']} s of it)",
            f"bare encode: {result['bare_encode_s']:8.2f} s  {result['bare_encode_chunks_per_s']:8.2f} chunks/s "
            f"({result['bare_encode_with']}, same texts, same process)",
            f"ratio ingest / bare encode = {result['ratio_ingest_to_bare_encode']:.3f}   peak RSS {result['peak_rss_mb']} MB "
            f"(largest child process {result['peak_child_rss_mb']} MB)",
        ]
    )


def _rss_mb(field: str = "VmRSS") -> float:
    import re

    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{field}:\s+(\d+)", text)
    return int(match.group(1)) / 1024 if match else 0.0


def build_big_warc(sources: list[Path], dest: Path, size_bytes: int) -> dict:
    """Re-writes the real shared records, each copy with new WARC-Record-IDs, until dest is size_bytes."""
    import uuid

    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    copies = records = 0
    with dest.open("wb") as out:
        writer = WARCWriter(out, gzip=False)
        while out.tell() < size_bytes:
            copies += 1
            for source in sources:
                with source.open("rb") as fh:
                    for record in ArchiveIterator(fh):
                        record.rec_headers.replace_header("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>")
                        writer.write_record(record)
                        records += 1
                if out.tell() >= size_bytes:
                    break
    return {"bytes": dest.stat().st_size, "copies": copies, "records": records}


def bench_warc_memory(settings, sources: list[str], size_mb: int = 1024) -> dict:
    """Streams a >= size_mb WARC through the whole ingest (reader, dedupe, embedding, store) and
    reports the peak RSS growth over the process's RSS before the ingest."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="refdesk-warc-mem-") as tmp:
        big = Path(tmp) / "big.warc"
        t0 = time.perf_counter()
        built = build_big_warc([Path(s) for s in sources], big, size_mb * 1024 * 1024)
        build_s = time.perf_counter() - t0
        services = temp_services(settings, str(Path(tmp) / "data"))
        # Warm the model with a full batch of long texts: its activation buffers are a fixed cost, not growth.
        services.embedder.get_text_embedding_batch([" ".join(["archive"] * 250)] * settings.embedding.batch_size)
        manifest = services.manifest()
        before = _rss_mb()
        try:
            summary = services.ingestor(manifest, progress=True).ingest([str(big)])
        finally:
            manifest.close()
        peak = _rss_mb("VmHWM")
    return {
        "warc_bytes": built["bytes"],
        "copies_of_the_sources": built["copies"],
        "warc_records": built["records"],
        "build_s": round(build_s, 1),
        "ingest_s": round(summary.seconds, 1),
        "mb_per_s": round(built["bytes"] / 1024 / 1024 / summary.seconds, 1) if summary.seconds else 0.0,
        "pages_stored": summary.records,
        "chunks": summary.chunks_added,
        "captures_added": summary.captures_added,
        "left_out": sum(summary.left_out.values()),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_growth_mb": round(peak - before, 1),
    }


def bench_widget(
    url: str, sessions: int = 20, per_session: int = 2, questions_file: str | None = None, duration_s: float = 0.0
) -> dict:
    """`sessions` patrons at once, each in its own widget session (gradio_client), asking the demo questions
    in turn against a running `refdesk serve`: `per_session` questions each, or, with duration_s, for that
    long (a patron told "busy" waits as told, at most 60 s, then asks again). Outcomes: answered, busy
    (past capacity: the answer gate's message), rate-limited, or error (an exception, a time-out, or a
    reply with neither an answer nor one of those messages)."""
    import random
    import threading

    from gradio_client import Client

    path = Path(questions_file) if questions_file else DEFAULT_QUESTIONS
    questions = [
        q.strip() for q in path.read_text(encoding="utf-8").splitlines() if q.strip() and not q.startswith("#")
    ]
    latencies: list[float] = []  # answered questions only
    counts = {"answered": 0, "busy": 0, "rate_limited": 0, "errors": 0}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)
    deadline = [0.0]

    def classify(reply) -> tuple[str, float]:
        # gradio_client returns the outputs that are not session state: the log first, the notice last.
        if not isinstance(reply, (list, tuple)) or len(reply) < 2:
            return "errors", 0.0
        if 'class="msg library"' in str(reply[0]):
            return "answered", 0.0
        notice = str(reply[-1])
        retry = re.search(r"try again in (\d+) s", notice)
        if "busy right now" in notice:
            return "busy", float(retry.group(1)) if retry else 5.0
        if "many questions" in notice:
            return "rate_limited", float(retry.group(1)) if retry else 5.0
        return "errors", 0.0

    def patron(i: int) -> None:
        try:
            # httpx's default 5 s time-out is stricter than any browser: a patron's fetch waits for the
            # queue to take the question. 60 s still counts a server that stops answering as an error.
            client = Client(url.rstrip("/") + "/widget/", verbose=False, httpx_kwargs={"timeout": 60})
        except Exception as exc:  # noqa: BLE001 - a connection that fails is one error of the run, not a crash
            with lock:
                counts["errors"] += 1
                errors.append(f"session {i}: connect: {exc}")
            start.abort()
            return
        try:
            start.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        try:
            ask_all(i, client)
        finally:
            client.close()  # its event stream would otherwise hold the server's shutdown

    def ask_all(i: int, client) -> None:
        rng = random.Random(i)
        j = 0
        while (time.monotonic() < deadline[0]) if duration_s else j < per_session:
            question = questions[(i * 7 + j) % len(questions)]
            j += 1
            t0 = time.perf_counter()
            try:
                reply = client.predict(question, api_name="/ask")
                outcome, wait = classify(reply)
                error = (
                    "" if outcome != "errors" else f"session {i}: unexpected reply to {question!r}: {str(reply)[:200]}"
                )
            except Exception as exc:  # noqa: BLE001 - time-outs and broken connections are what this counts
                outcome, wait, error = "errors", 0.0, f"session {i}: {type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - t0
            with lock:
                counts[outcome] += 1
                if outcome == "answered":
                    latencies.append(seconds)
                if error:
                    errors.append(error)
            if duration_s:
                # A patron reads the answer, or waits as the "busy" message says, then asks again.
                time.sleep(min(wait, 60.0, max(0.0, deadline[0] - time.monotonic())) + rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=patron, args=(i,)) for i in range(sessions)]
    t0 = time.perf_counter()
    deadline[0] = time.monotonic() + duration_s
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    requests = sum(counts.values())
    return {
        "url": url,
        "sessions": sessions,
        "duration_s": duration_s,
        "questions_per_session": per_session if not duration_s else None,
        "requests": requests,
        **counts,
        "error_samples": errors[:5],
        "wall_s": round(wall, 2),
        "latency_p50_s": round(percentile(latencies, 0.5), 2),
        "latency_p95_s": round(percentile(latencies, 0.95), 2),
        "latency_max_s": round(max(latencies, default=0.0), 2),
        "answers_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
    }


def bench_retrieval(
    services, size: int, questions_file: str, n: int = 200, folder: str | None = None, keep: str | None = None
) -> dict:
    """Retrieval latency on a synthetic store of `size` chunks made by re-numbering the real chunks of
    `services`' store (their text, metadata and vectors copied under new chunk and record ids, so nothing is
    embedded again), with its lexical index built as ingest builds it. Times `n` questions of a generated set
    (hybrid and dense-only in the same run) and reports the index's size and build time. With `keep`, the
    synthetic store is made in that folder and kept; a folder already holding `size` chunks is timed as it is
    (a million chunks take about an hour to copy on 2 cores)."""
    import contextlib
    import json
    import tempfile

    from assistant.answering.retrieval import Retriever

    questions = [json.loads(line)["question"] for line in Path(questions_file).open(encoding="utf-8") if line.strip()]
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        where: contextlib.AbstractContextManager[str] = contextlib.nullcontext(keep)
    else:
        where = tempfile.TemporaryDirectory(prefix="refdesk-bench-retrieval-", dir=folder)
    with where as tmp:
        target = temp_services(services.settings, tmp)
        target.embedder = services.embedder  # the same model object: no second load
        store = target.store
        out: dict = {"reused": store.count() >= size}
        if not out["reused"]:
            out |= _fill_synthetic(services.store, store, size)
        out |= {
            "chunks": store.count(),
            "questions": min(n, len(questions)),
            "lexical_index_mb": round(target.settings.lexical_path.stat().st_size / 1e6, 1),
            "store_mb": round(sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 1e6, 1),
        }
        for name, hybrid in (("hybrid", True), ("dense", False)):
            retrieval = services.settings.retrieval.model_copy(update={"hybrid": hybrid})
            retriever = Retriever(store, services.embedder, retrieval)
            retriever.retrieve(questions[0], 5)  # warm
            times = []
            for q in questions[:n]:
                timings: dict[str, float] = {}
                retriever.retrieve(q, 5, timings)
                times.append(sum(v for k, v in timings.items() if k != "embed_query"))
            out[f"{name}_p50_ms"] = round(percentile(times, 0.5) * 1000, 1)
            out[f"{name}_p95_ms"] = round(percentile(times, 0.95) * 1000, 1)
        return out


def _fill_synthetic(source, store, size: int) -> dict:
    """Copies the real chunks of `source` into `store` under new record ids until it holds `size`."""
    from assistant.backends.lexical import rows_for
    from assistant.core.types import SEARCH_FIELDS, Chunk, Provenance, fields_from_metadata

    real = list(source.iter_chunks())
    vectors = {cid: vec for cid, _text, _meta, vec in source.get_with_embeddings([c.id for c in real])}
    copies = store.count()
    seconds = {"chroma": 0.0, "lexical": 0.0}
    lexical = store.lexical
    store.lexical = None  # written apart below, so the two writes are timed apart

    def flush(chunks: list, vectors_: list) -> None:
        t0 = time.perf_counter()
        store.add(chunks, vectors_)
        t1 = time.perf_counter()
        lexical.add(rows_for(chunks))
        seconds["chroma"] += t1 - t0
        seconds["lexical"] += time.perf_counter() - t1

    batch_chunks: list = []
    batch_vectors: list = []
    try:
        while copies < size:
            for chunk in real:
                if copies >= size:
                    break
                meta = dict(chunk.metadata)
                prov = Provenance(**{k: str(meta.get(k) or "") for k in Provenance.model_fields})
                prov.record_id += f"~{copies // len(real)}"
                search = {f: str(meta.get(f"search_{f}") or "") for f in SEARCH_FIELDS}
                filters = {
                    k: v for k, v in meta.items() if k not in Provenance.model_fields and not k.startswith("search_")
                }
                position = int(meta.get("position", 0) or 0)
                fields = fields_from_metadata(meta)
                batch_chunks.append(Chunk.make(chunk.text, prov, position, filters, search, fields))
                batch_vectors.append(vectors[chunk.id])
                copies += 1
                if len(batch_chunks) >= 2000:
                    flush(batch_chunks, batch_vectors)
                    batch_chunks, batch_vectors = [], []
        if batch_chunks:
            flush(batch_chunks, batch_vectors)
    finally:
        store.lexical = lexical
    return {
        "real_chunks": len(real),
        "chroma_add_s": round(seconds["chroma"], 1),
        "lexical_index_s": round(seconds["lexical"], 1),
    }


def bench_embed(
    services,
    questions_file: str,
    n_texts: int = 2000,
    distractors: int = 3000,
    seed: int = 7,
    refine_chunks: int = 4000,
) -> dict:
    """Each embedding back-end on the same texts and the same questions, in one run.

    Speed: texts/s encoding `n_texts` chunk texts of the store, in length order. Quality: dense-only hit@5 and nDCG@10 of a
    generated set over a sub-corpus (every chunk of the set's gold records plus `distractors` other chunks of
    the store), each back-end embedding the same texts and searched exactly (numpy), so only the embedding
    differs. With a MiniLM store, a fourth row: the static model refined towards MiniLM's stored vectors of
    `refine_chunks` chunks drawn across source types from records no question asks about and outside the
    sub-corpus (assistant/backends/static_embedding.py `refine`; the time to fit is reported). The whole system's figures (hybrid, with the lexical index) come from an ingest and an
    `eval run` per back-end (README "Benchmarks")."""
    import json
    import random

    import numpy as np

    from assistant.backends.embeddings import build_embedder
    from assistant.backends.static_embedding import StaticEmbedding, balanced_sample
    from eval.metrics import hit_at_k, ndcg_at_k

    questions = []
    for line in Path(questions_file).open(encoding="utf-8"):
        item = json.loads(line) if line.strip() else {}
        gold = {(g.get("source_type", ""), str(g.get("record_id", ""))) for g in item.get("gold", [])}
        if item.get("answerable") and gold:
            questions.append((item["question"], gold))
    chunks = list(services.store.iter_chunks())
    key = {c.id: (str(c.metadata.get("source_type", "")), str(c.metadata.get("record_id", ""))) for c in chunks}
    wanted = set().union(*(g for _, g in questions)) if questions else set()
    sub = [c for c in chunks if key[c.id] in wanted]
    rest = [c for c in chunks if key[c.id] not in wanted]
    rng = random.Random(seed)
    sub += rng.sample(rest, min(distractors, len(rest)))
    # Sorted by length, as ingest hands batches to the model (ingest/pipeline.py): padding as in a real run.
    sample = sorted((c.text for c in rng.sample(chunks, min(n_texts, len(chunks)))), key=len)
    questions = [(q, g) for q, g in questions if g & {key[c.id] for c in sub}]

    settings = services.settings
    out: dict = {
        "texts": len(sample),
        "sub_corpus_chunks": len(sub),
        "questions": len(questions),
        "set": questions_file,
        "backends": {},
    }
    models = [("torch", "huggingface"), ("onnx", "onnx"), ("static", "static")]
    if settings.embedding.backend == "huggingface":  # the store holds MiniLM's vectors: the refined row's teacher
        models.append(("static-refined", "static"))
    for name, backend in models:
        emb_settings = settings.model_copy(
            update={"embedding": settings.embedding.model_copy(update={"backend": backend})}
        )
        model = build_embedder(emb_settings.embedder)
        if name == "static-refined":
            # Taught on chunks of records no question asks about and outside the sub-corpus, across types.
            in_sub = {c.id for c in sub}
            teach = balanced_sample([c for c in rest if c.id not in in_sub], refine_chunks, seed)
            t0 = time.perf_counter()
            assert isinstance(model, StaticEmbedding)
            found, vectors = services.store.vectors([c.id for c in teach])
            text = {c.id: c.text for c in teach}
            model = model.refined([text[i] for i in found], vectors)
            out["refine"] = {"chunks": len(teach), "seconds": round(time.perf_counter() - t0, 1)}
        model.get_text_embedding_batch(sample[:8])  # warm
        t0 = time.perf_counter()
        model.get_text_embedding_batch(sample)
        texts_per_s = len(sample) / (time.perf_counter() - t0)
        matrix = np.asarray(model.get_text_embedding_batch([c.text for c in sub]), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
        hits, ndcgs = [], []
        for question, gold in questions:
            q = np.asarray(model.get_query_embedding(question), dtype=np.float32)
            order = np.argsort(-(matrix @ (q / (np.linalg.norm(q) + 1e-12))))[:200]
            ranked = [key[sub[i].id] for i in order]
            hits.append(hit_at_k(ranked, gold, 5))
            ndcgs.append(ndcg_at_k(ranked, gold, 10))
        out["backends"][name] = {
            "texts_per_s": round(texts_per_s, 1),
            "hit@5": round(float(np.mean(hits)), 3) if hits else None,
            "ndcg@10": round(float(np.mean(ndcgs)), 3) if ndcgs else None,
            "dims": int(matrix.shape[1]),
        }
    torch_row = out["backends"]["torch"]
    for name in [n for n in out["backends"] if n != "torch"]:
        row = out["backends"][name]
        # Measured in this run, against torch on the same texts and questions.
        row["speedup"] = round(row["texts_per_s"] / torch_row["texts_per_s"], 1) if torch_row["texts_per_s"] else None
        if row["hit@5"] is not None and torch_row["hit@5"] is not None:
            row["hit@5_loss"] = round(torch_row["hit@5"] - row["hit@5"], 3)
    return out


def format_embed_bench(result: dict) -> str:
    lines = [
        f"{result['texts']} texts for speed; {result['questions']} questions of {result['set']} over "
        f"{result['sub_corpus_chunks']} chunks (gold records + distractors), dense only, exact search",
        f"{'back-end':15} {'texts/s':>9} {'hit@5':>7} {'nDCG@10':>8} {'dims':>5}",
    ]
    for name, row in result["backends"].items():
        lines.append(f"{name:15} {row['texts_per_s']:>9} {row['hit@5']:>7} {row['ndcg@10']:>8} {row['dims']:>5}")
    for name in [n for n in result["backends"] if n != "torch"]:
        row = result["backends"][name]
        lines.append(f"{name} ÷ torch texts/s: {row['speedup']}; hit@5 lost: {row.get('hit@5_loss')}")
    return "\n".join(lines)

"""`refdesk bench scale`: a synthetic catalogue made by re-numbering real MARC records, ingested by each engine
in turn, in one run: records/s, peak memory (the ingest process and every process under it, Ray's workers
included) and the store's size on disk; and whether both engines stored the same chunk ids.

The catalogue is written with pymarc directly, not through refdesk's reader: every record pymarc can read
from the given files is a template, and copy n gets control number (001) "refdesk-syn-<n>", so each copy is
a record of its own (its own chunk ids) with real text.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARC_SUFFIXES = (".mrc", ".marc", ".dat", ".iso2709")
SAMPLE_S = 0.5  # how often the memory of the ingest's process tree is read


def marc_templates(sources: list[Path]) -> list:
    """Every record pymarc reads from the MARC21 binary files under sources (broken ones are passed over)."""
    from pymarc import MARCReader

    files: list[Path] = []
    for source in sources:
        files += (
            sorted(p for p in source.rglob("*") if p.suffix.lower() in MARC_SUFFIXES) if source.is_dir() else [source]
        )
    templates = []
    for path in files:
        # pymarc prints a line for each MARC-8 character it cannot map; the record is kept, with a replacement.
        with (
            path.open("rb") as fh,
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            for record in MARCReader(fh, to_unicode=True, utf8_handling="replace"):
                if record is None or record.title is None:
                    continue
                record.force_utf8 = True
                try:
                    record.as_marc()
                except (UnicodeError, ValueError):
                    continue
                templates.append(record)
    return templates


def make_catalogue(sources: list[Path], dest: Path, records: int, per_file: int) -> dict:
    """records re-numbered copies of the templates, per_file to a file, as MARC21 binary under dest."""
    from pymarc import Field

    templates = marc_templates(sources)
    if not templates:
        raise ValueError(f"no readable MARC records under {', '.join(map(str, sources))}")
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    files = 0
    while written < records:
        with (dest / f"synthetic-{files:05d}.mrc").open("wb") as out:
            for _ in range(min(per_file, records - written)):
                record = templates[written % len(templates)]
                number = f"refdesk-syn-{written:08d}"
                control = record.get("001")
                if control is None:
                    record.add_ordered_field(Field(tag="001", data=number))
                else:
                    control.data = number
                out.write(record.as_marc())
                written += 1
        files += 1
    return {"records": written, "files": files, "templates": len(templates)}


def _tree_rss_mb(proc) -> float:
    """Resident memory of proc and every process under it (Ray's raylet and workers when it started them)."""
    import psutil

    total = 0
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for member in family:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def run_engine(
    engine: str, catalogue: Path, data_dir: Path, extra: list[str], env: dict[str, str] | None = None
) -> dict:
    """`refdesk ingest` in a process of its own (a fresh store, its own peak memory)."""
    import psutil

    refdesk = Path(sys.executable).with_name("refdesk")
    command = [str(refdesk), "--data-dir", str(data_dir), "ingest", str(catalogue), "--json", "--engine", engine]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    watched = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(watched))
        time.sleep(SAMPLE_S)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"refdesk ingest --engine {engine} failed ({proc.returncode}): {err[-2000:]}")
    summary = json.loads(out)
    seconds = summary["seconds"]
    return {
        "seconds": round(seconds, 1),
        "wall_s": round(wall, 1),
        "records": summary["records"],
        "chunks": summary["chunks_added"],
        "files_failed": summary["files_failed"],
        "records_per_s": round(summary["records"] / seconds, 2) if seconds else 0.0,
        "chunks_per_s": round(summary["chunks_added"] / seconds, 2) if seconds else 0.0,
        "peak_rss_mb": round(peak, 1),
        "store_mb": round(_size_mb(data_dir), 1),
    }


def _chunk_ids(manifest: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(manifest) as db:
        return set(db.execute("SELECT chunk_id, record_id FROM chunks"))


def model_env(settings) -> dict[str, str]:
    """A derived embedding model where the configured data dir keeps it: each engine's fresh store uses the
    one already prepared (a refined model cannot be made in an empty store; a distilled one would be made
    again for each engine, inside its time)."""
    emb = settings.embedder
    dirs = {"static_dir": emb.static_dir, "static_refined_dir": emb.static_refined_dir, "onnx_dir": emb.onnx_dir}
    return {f"REFDESK_EMBEDDING__{name.upper()}": path for name, path in dirs.items() if path}


def bench_scale(
    sources: list[str],
    records: int,
    per_file: int,
    engines: list[str],
    settings=None,
    workdir: str | None = None,
    ray_address: str = "",
) -> dict:
    """`settings`: what each engine's `refdesk ingest` runs with (its config file and embedding model); the
    store is a fresh one under a temporary folder."""
    from assistant.core.settings import Settings

    settings = settings or Settings.load()
    with tempfile.TemporaryDirectory(prefix="refdesk-scale-", dir=workdir) as tmp:
        root = Path(tmp)
        made = make_catalogue([Path(s) for s in sources], root / "catalogue", records, per_file)
        result: dict = {"catalogue": made, "embedding": settings.embedding.backend, "engines": {}}
        env = model_env(settings)
        if settings.config_file:
            env["REFDESK_CONFIG"] = str(Path(settings.config_file).resolve())
        for engine in engines:
            extra = ["--ray-address", ray_address] if engine == "ray" and ray_address else []
            result["engines"][engine] = run_engine(engine, root / "catalogue", root / engine, extra, env)
        if {"local", "ray"} <= set(engines):
            local, ray = result["engines"]["local"], result["engines"]["ray"]
            result["ray_over_local_records_per_s"] = (
                round(ray["records_per_s"] / local["records_per_s"], 3) if local["records_per_s"] else 0.0
            )
            manifest = {name: settings.model_copy(update={"data_dir": root / name}).manifest_path for name in engines}
            result["same_chunk_ids"] = _chunk_ids(manifest["local"]) == _chunk_ids(manifest["ray"])
    return result


def format_scale_bench(result: dict) -> str:
    made = result["catalogue"]
    lines = [
        f"synthetic catalogue: {made['records']} records in {made['files']} files "
        f"(re-numbered copies of {made['templates']} real records)",
    ]
    for engine, got in result["engines"].items():
        lines.append(
            f"{engine:6s} {got['seconds']:8.1f} s  {got['records_per_s']:8.2f} records/s  "
            f"{got['chunks_per_s']:8.2f} chunks/s  peak RSS {got['peak_rss_mb']:8.1f} MB  "
            f"store {got['store_mb']:8.1f} MB  ({got['chunks']} chunks)"
        )
    if "ray_over_local_records_per_s" in result:
        lines.append(
            f"ray / local records/s = {result['ray_over_local_records_per_s']:.3f}; "
            f"same chunk ids: {'yes' if result['same_chunk_ids'] else 'NO'}"
        )
    return "\n".join(lines)

"""The Ray Data executor of the ingest stages (ingest.stages): `refdesk ingest PATH... --engine ray`.

- plan (here, where the manifest is): the same Planner as the local engine, so --sync, unchanged files and
  dependents are decided the same way;
- read: one Ray task per file (the same ReadStage), streaming chunk rows and, last, the file's FileRead.
  Which web archive holds a page seen in two crawls depends on the order they are read, and it must not
  depend on the engine: a first pass of parallel tasks notes each archive's payloads without extracting
  anything (ReadStage.payload_plan), here they are replayed in plan order (ingest.payloads.holders_before),
  and each archive's read task gets the holders it would have met in one sequential read;
- embed: an actor pool, one model per actor (CPU, or GPU with ingest.ray.embed_gpus);
- write and bookkeeping (here): the store the settings name (the Chroma server on a cluster) and its lexical
  index, then each file's manifest entry once its chunks are stored, in the order the files were planned.

Rows keep their order (Ray Data's preserve_order), so a file's FileRead arrives after its last chunk.
Everything a worker needs travels in the rows or in its constructor: no state is shared through modules.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.core.errors import RefdeskError
from assistant.core.progress import progress_for
from assistant.core.settings import RaySettings
from assistant.core.types import Chunk
from ingest.manifest import Manifest
from ingest.payloads import Holder, PlannedPayload, holders_before
from ingest.stages import WEB_ARCHIVE_FORMATS, Bookkeeper, FileJob, FileRead, IngestSummary, Planner, ReadStage

CHUNK, FILE = "chunk", "file"  # the two kinds of row
# Archive bytes a first-pass task decompresses and hashes: the pass runs at tens of MB/s a core (0.15 s for
# the 8 MB of shared WARCs), while each task may start a Ray worker (seconds of imports), so small archives
# are planned together; a crawl of large archives is still planned in parallel, one or a few a task.
PLAN_BYTES_PER_TASK = 256 * 2**20
# Made in the workers from what the caller injects (picklable module-level functions, e.g. partials of them):
ReadStageFactory = Callable[[], ReadStage]
EmbedFactory = Callable[[bool], Callable[[list[str]], list]]  # use_gpu -> texts -> vectors


class RayUnavailable(RefdeskError):
    """Ray is not installed, or the cluster cannot be reached."""


@dataclass
class ReadJob:
    """One read task's file, with the ids of its chunks already stored."""

    job: FileJob
    known: set[str]  # chunk ids the store holds (not embedded again)
    payloads: dict[str, Holder]  # a web archive's: the holders of its payloads when it is read (planned)


def read_jobs(
    jobs: Sequence[FileJob], known: dict[str, set[str]], payload_views: dict[str, dict[str, Holder]]
) -> list[ReadJob]:
    """One task per file, in plan order; a web archive's carries the holders holders_before planned for it."""
    return [ReadJob(job, known.get(str(job.path), set()), payload_views.get(str(job.path), {})) for job in jobs]


def plan_batches(web: Sequence[FileJob], max_bytes: int = PLAN_BYTES_PER_TASK) -> list[list[FileJob]]:
    """The web archives in plan order, cut into runs of consecutive files of at most max_bytes (a larger
    file alone): one first-pass task each."""
    batches: list[list[FileJob]] = []
    size = 0
    for job in web:
        if not batches or size + job.size > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(job)
        size += job.size
    return batches


def payload_plan_task(jobs: list[FileJob], make_read_stage: ReadStageFactory) -> list[list[PlannedPayload]]:
    """A Ray task: the first pass over a batch of web archives, one plan each."""
    reading = make_read_stage()
    return [reading.payload_plan(job) for job in jobs]


def read_task(row: dict, make_read_stage: ReadStageFactory) -> Iterator[dict]:
    """A Ray task: the read stage over one file. Chunks already stored are left out of the rows (the
    FileRead still lists them) and counted as unchanged."""
    from ingest.payloads import PayloadIndex

    task: ReadJob = pickle.loads(row["task"])
    stored = 0
    # Pages are extracted in this task: it is a worker of its own.
    for item in make_read_stage().file(task.job, PayloadIndex(task.payloads)):
        if isinstance(item, FileRead):
            item.already_stored = stored
            yield {"kind": FILE, "text": "", "data": pickle.dumps(item)}
        elif item.id in task.known:
            stored += 1
        else:
            yield {"kind": CHUNK, "text": item.text, "data": pickle.dumps(item)}


class EmbedActor:
    """A Ray actor: one embedding model, loaded once, fed batches of rows; file rows pass through."""

    def __init__(self, make_embed: EmbedFactory, threads: int, use_gpu: bool):
        import torch

        torch.set_num_threads(threads)
        self.embed = make_embed(use_gpu)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kinds, texts = batch["kind"], batch["text"]
        vectors: np.ndarray = np.empty(len(kinds), dtype=object)
        vectors[:] = b""
        # Similar lengths side by side: less padding, as the local engine and encode() do.
        order = sorted((i for i, kind in enumerate(kinds) if kind == CHUNK), key=lambda i: len(texts[i]))
        started = time.perf_counter()
        if order:
            got = self.embed([str(texts[i]) for i in order])
            for i, vector in zip(order, got, strict=True):
                vectors[i] = np.asarray(vector, dtype=np.float32).tobytes()
        seconds = np.full(len(kinds), (time.perf_counter() - started) / max(len(kinds), 1))
        return {"kind": kinds, "data": batch["data"], "vector": vectors, "embed_s": seconds}


class RayIngestor:
    """Same interface as ingest.pipeline.Ingestor: ingest(paths, sync) -> IngestSummary."""

    def __init__(
        self,
        ray_settings: RaySettings,
        make_read_stage: ReadStageFactory,
        make_embed: EmbedFactory,
        store,
        embedder_name: str,
        manifest: Manifest,
        progress: bool = True,
    ):
        self.ray_settings = ray_settings
        self.make_read_stage = make_read_stage
        self.make_embed = make_embed
        self.store = store
        self.embedder_name = embedder_name
        self.manifest = manifest
        self.progress = progress
        self.planner = Planner(store, manifest, embedder_name)
        self.bookkeeper = Bookkeeper(store, manifest, embedder_name)

    def ingest(self, paths: Sequence[str | Path], sync: bool = False) -> IngestSummary:
        """Raises ingest.lock.IngestLocked when another ingest holds this data dir, RayUnavailable when Ray
        cannot start or reach its cluster; an error in a task is raised here, after the files finished so far
        were recorded (run it again to go on)."""
        from ingest.lock import IngestLock

        with IngestLock(self.manifest.path.parent / "ingest.lock"):
            summary = IngestSummary(engine="ray")
            started = time.perf_counter()
            plan = self.planner.plan(paths, sync, summary)
            if plan.jobs:
                known = {str(job.path): self._stored(job) for job in plan.jobs}
                with _RaySession(self.ray_settings):
                    views = self._payload_views(plan.jobs, dict(plan.payloads.items()))
                    self._run(read_jobs(plan.jobs, known, views), plan.files_total, len(plan.jobs), summary, sync)
            summary.seconds = time.perf_counter() - started
            self.manifest.add_run(summary.as_dict())
            return summary

    def _payload_views(self, jobs: Sequence[FileJob], known: dict[str, Holder]) -> dict[str, dict[str, Holder]]:
        """path -> the payload holders each web archive of the run meets when it is read (the first pass, in
        parallel tasks; with one archive there is nothing to plan). The plans come back in plan order."""
        import ray

        web = [job for job in jobs if job.fmt in WEB_ARCHIVE_FORMATS]
        if len(web) < 2:
            return {str(job.path): known for job in web}
        task = ray.remote(num_cpus=self.ray_settings.read_cpus)(payload_plan_task)
        batches = plan_batches(web)
        refs = [task.remote(batch, self.make_read_stage) for batch in batches]
        progress = progress_for(self.progress, len(web), 0, desc="web archives: payload plan (ray)", unit="file")
        plans: list[list[PlannedPayload]] = []
        try:
            for batch, ref in zip(batches, refs, strict=True):
                planned: list[list[PlannedPayload]] = ray.get(ref)
                plans.extend(planned)
                progress.advance(len(batch))
                progress.note(payloads=sum(map(len, plans)))
        finally:
            progress.close()
        return {str(job.path): view for job, view in zip(web, holders_before(plans, known), strict=True)}

    def _stored(self, job: FileJob) -> set[str]:
        listed = self.manifest.chunk_ids(str(job.path))
        return self.store.existing_ids(sorted(listed)) if listed else set()

    def _run(self, tasks: list[ReadJob], files_total: int, jobs: int, summary: IngestSummary, sync: bool):
        import ray.data

        cfg = self.ray_settings
        rows = [{"task": pickle.dumps(task)} for task in tasks]
        make_read_stage = self.make_read_stage

        def read_rows(row: dict) -> Iterator[dict]:  # shipped to the tasks with the factory it closes over
            return read_task(row, make_read_stage)

        dataset = (
            ray.data.from_items(rows, override_num_blocks=len(rows))
            .flat_map(read_rows, num_cpus=cfg.read_cpus)
            .map_batches(
                EmbedActor,
                fn_constructor_kwargs={
                    "make_embed": self.make_embed,
                    "threads": cfg.embed_threads,
                    "use_gpu": cfg.embed_gpus > 0,
                },
                compute=ray.data.ActorPoolStrategy(size=cfg.embed_workers),
                num_cpus=cfg.embed_cpus,
                num_gpus=cfg.embed_gpus or None,
                batch_size=cfg.batch_size,
                batch_format="numpy",
            )
        )
        progress = progress_for(self.progress, files_total, files_total - jobs, desc="ingest (ray)", unit="file")
        pending: list[tuple[Chunk, np.ndarray]] = []
        unfinished: list[FileRead] = []  # read to the end; finished once the chunks before them are stored
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for kind, data, vector, seconds in zip(
                    batch["kind"], batch["data"], batch["vector"], batch["embed_s"], strict=True
                ):
                    summary.embed_seconds += float(seconds)
                    if kind == CHUNK:
                        pending.append((pickle.loads(data), np.frombuffer(vector, dtype=np.float32)))
                        if len(pending) >= cfg.batch_size:  # full writes only: see ingest.pipeline.WRITE_AT
                            with stops_held():
                                self._write(pending, summary)
                                self._finish(unfinished, summary, sync, progress)
                        continue
                    read: FileRead = pickle.loads(data)
                    summary.chunks_unchanged += read.already_stored
                    read.report(summary)
                    unfinished.append(read)
            with stops_held():
                self._write(pending, summary)
                self._finish(unfinished, summary, sync, progress)
        finally:
            progress.close()

    def _finish(self, unfinished: list[FileRead], summary: IngestSummary, sync: bool, progress) -> None:
        """Each file's manifest entry, in the order they were read, once their chunks are stored."""
        for read in unfinished:
            self.bookkeeper.finish(read, summary, sync)
            progress.advance()
        unfinished.clear()
        progress.note(chunks=summary.chunks_added)

    def _write(self, pending: list[tuple[Chunk, np.ndarray]], summary: IngestSummary) -> None:
        """Stores what is not stored yet (chunks written before a crash are not written twice)."""
        if not pending:
            return
        batch, pending[:] = list(pending), []
        existing = self.store.existing_ids([chunk.id for chunk, _ in batch])
        new = [(chunk, vector) for chunk, vector in batch if chunk.id not in existing]
        summary.chunks_unchanged += len(batch) - len(new)
        if new:
            self.store.add([c for c, _ in new], [v.tolist() for _, v in new])
            summary.chunks_added += len(new)


@contextmanager
def stops_held() -> Iterator[None]:
    """Holds SIGINT and SIGTERM for the block, then acts on them as their own handlers would have, so a stop
    lands between two writes, as in the local engine (whose writes are a thread's), never inside one.
    The driver's writes and bookkeeping run on its main thread; off it no handler can be set, nor is needed.
    A block that raises ends the run with its error, the held stop unacted on."""
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, held):
        yield  # None: a handler set outside Python, which could not be put back
        return
    caught: list[signal.Signals] = []
    previous = {signum: signal.signal(signum, lambda got, frame: caught.append(signal.Signals(got))) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for signum in dict.fromkeys(caught):
        handler = previous[signum]
        if callable(handler):
            handler(signum, None)  # the CLI's IngestTerminated, Python's KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)  # what would have happened: the process ends


class _RaySession:
    """Connects to the configured cluster, or starts a local one, for one run; Ray Data keeps rows in order."""

    def __init__(self, cfg: RaySettings):
        self.cfg = cfg
        self._started = False
        self._order = False

    def __enter__(self) -> _RaySession:
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise RayUnavailable("the Ray engine needs Ray: pip install 'ray[data]'") from exc
        if not ray.is_initialized():
            on_main_thread = threading.current_thread() is threading.main_thread()
            sigterm = signal.getsignal(signal.SIGTERM) if on_main_thread else None
            try:
                if self.cfg.address:
                    ray.init(
                        address=self.cfg.address,
                        logging_level=logging.WARNING,
                        log_to_driver=False,
                        include_dashboard=False,
                    )
                else:
                    ray.init(
                        object_store_memory=self.cfg.object_store_mb * 1024 * 1024,
                        logging_level=logging.WARNING,
                        log_to_driver=False,
                        include_dashboard=False,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.cfg.address or "a local cluster"
                raise RayUnavailable(f"cannot start or reach Ray ({where}): {exc}") from exc
            self._started = True
            if (
                sigterm is not None
            ):  # ray.init makes SIGTERM sys.exit(); the caller's (the CLI's clean stop) is put back
                signal.signal(signal.SIGTERM, sigterm)
        context = ray.data.DataContext.get_current()
        self._order = context.execution_options.preserve_order
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc) -> None:
        import ray
        import ray.data

        ray.data.DataContext.get_current().execution_options.preserve_order = bool(self._order)
        if self._started:
            ray.shutdown()

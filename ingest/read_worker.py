"""The local executor's read stage in a process of its own, for files that need nothing from the rest of the run.

Chroma's embedded `add` holds the GIL for the whole write, so a reader thread beside it stands still while
the store writes (README "Where the time goes with a fast model"): with a fast model the local engine used
about one of two cores. A spawned process runs the same read stage (readers, language guessing, chunking)
over one file at a time and hands its items back in batches, so reading goes on while the store writes.

Only files whose reader is self-contained go there: web archives share payloads across the files of a run
and keep their reader in the run's thread (their page extraction has its own worker, ingest.warc). A run
whose other files come to less than ingest.read_worker_min_bytes reads them in the thread too, since a new
process pays a few seconds of imports before its first record.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from assistant.core.types import Chunk
from ingest.payloads import PayloadIndex
from ingest.stages import FileJob, FileRead, ReadStage

log = logging.getLogger(__name__)

ITEMS_PER_BATCH = 64  # reader items per hand-over: few enough to start embedding early, many to pickle once
BATCHES_AHEAD = 16  # hand-overs the worker may be ahead of the run (memory: ~1,000 chunks)
POLL_S = 1.0  # how often a side waiting on the other checks that it is still there


class ReadWorkerDied(RuntimeError):
    """The read process ended in the middle of a file (killed, out of memory, a crash in a C library)."""


def serve(make_read_stage: Callable[[], ReadStage], jobs, batches) -> None:
    """The worker's loop: each job's items, then its FileRead, in batches; None ends it."""
    # A Ctrl-C reaches the whole process group: the run decides when reading stops, and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reading = make_read_stage()
    while (job := _next_job(jobs)) is not None:
        batch: list = []
        for item in reading.file(job, PayloadIndex()):
            batch.append(item)
            if len(batch) >= ITEMS_PER_BATCH or isinstance(item, FileRead):
                _put(batches, batch)
                batch = []


def _next_job(jobs) -> FileJob | None:
    """The next file, or None: the end, or a run that is gone (killed with -9, it cannot end this process)."""
    while True:
        try:
            return jobs.get(timeout=POLL_S)
        except queue.Empty:
            if _orphaned():
                return None


def _put(batches, batch: list) -> None:
    """Waits for room, but not for a run that is gone."""
    while True:
        try:
            batches.put(batch, timeout=POLL_S)
            return
        except queue.Full:
            if _orphaned():
                raise SystemExit(0) from None


def _orphaned() -> bool:
    parent = multiprocessing.parent_process()
    return parent is not None and not parent.is_alive()


@dataclass
class _Running:
    """The read process now running, with its queues."""

    process: BaseProcess
    jobs: Any  # multiprocessing queues (typeshed has no one name for those of a context)
    batches: Any
    served: bool = False  # it has sent something


class ReadWorker:
    """One spawned read process, owned by the local executor: started on the first file sent to it, started
    again after it died, stopped by close()."""

    def __init__(self, make_read_stage: Callable[[], ReadStage]):
        self.make_read_stage = make_read_stage  # module-level and picklable: the process builds its own
        self._context = multiprocessing.get_context("spawn")
        self._running: _Running | None = None
        self._mid_file = False  # a file was sent and its FileRead not yet taken
        # No process of ours could read anything (it cannot start here: a __main__ read from stdin, say):
        # the run reads in its own thread instead.
        self.broken = False

    def file(self, job: FileJob) -> Iterator[Chunk | FileRead]:
        """The read stage's items for one file, read in the worker; a worker that dies fails the file. One that
        dies before sending anything at all sets broken and gives nothing: the caller reads the file itself."""
        running = self._start()
        running.jobs.put(job)
        self._mid_file = True
        taken: dict[str, str] = {}  # chunk id -> record id, for a FileRead the worker could not send
        while True:
            try:
                batch = running.batches.get(timeout=POLL_S)
            except queue.Empty:
                if running.process.is_alive():
                    continue
                code = running.process.exitcode
                self.close()  # the next file starts another
                if not running.served:
                    self.broken = True
                    log.warning(
                        "the read process could not start (exit code %s): reading in this process instead", code
                    )
                    return
                read = FileRead(job, records=len(set(taken.values())), chunk_ids=taken)
                read.fail(ReadWorkerDied(f"the read process ended (exit code {code})"))
                yield read
                return
            running.served = True
            for item in batch:
                if isinstance(item, Chunk):
                    taken[item.id] = item.provenance.record_id
                yield item
            if isinstance(batch[-1], FileRead):
                self._mid_file = False
                return

    def _start(self) -> _Running:
        if self._mid_file:  # the last file was left part-way (its reader closed): its batches are not wanted
            self.close()
        if self._running is not None and self._running.process.is_alive():
            return self._running
        self.close()
        jobs, batches = self._context.Queue(), self._context.Queue(maxsize=BATCHES_AHEAD)
        process = self._context.Process(
            target=serve, args=(self.make_read_stage, jobs, batches), name="refdesk-read", daemon=True
        )
        process.start()
        self._running = _Running(process, jobs, batches)
        return self._running

    def close(self) -> None:
        """Ends the worker. It only reads, so one still busy (a run stopped mid-file) is ended outright."""
        running, self._running = self._running, None
        self._mid_file = False
        if running is None:
            return
        if running.process.is_alive():
            running.jobs.put(None)
            running.process.join(POLL_S)
        if running.process.is_alive():
            running.process.terminate()
            running.process.join()
        for q in (running.jobs, running.batches):
            q.cancel_join_thread()  # items left unread must not hold this process at exit
            q.close()

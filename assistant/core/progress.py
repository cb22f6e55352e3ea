"""Progress of long jobs (ingest, eval runs): a bar on a terminal, plain lines anywhere else.

tqdm redraws one line with carriage returns. In a log file or the journal (cron, systemd, a CI log) that
is one ever-growing line, so refdesk used to show nothing off a terminal and a 15-minute ingest ran
silent. Off a terminal it now writes one plain line at most every `LINE_EVERY_S` seconds, when something
moved, naming the counts that move inside a long file (chunks stored), not only the files done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

LINE_EVERY_S = 30.0  # off a terminal: at most one progress line this often


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def note(self, **counts: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """What a job shows when progress is off (tests, `--json`)."""

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, **counts: int) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar over the units done; the counts follow it and are redrawn as they change."""

    def __init__(self, total: int, initial: int, desc: str, unit: str, stream: TextIO):
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, leave=False)

    def advance(self, n: int = 1) -> None:
        self._bar.update(n)

    def note(self, **counts: int) -> None:
        # Redrawn now: inside one large file (a 12,000-component finding aid) no unit is done for minutes.
        self._bar.set_postfix(counts, refresh=True)

    def close(self) -> None:
        self._bar.close()


class LineProgress:
    """One line such as `ingest: 12/57 files, 8,120 chunks, 140 s` at most every `every_s` seconds, only
    when a count moved since the last line."""

    def __init__(
        self,
        total: int,
        initial: int,
        desc: str,
        unit: str,
        stream: TextIO,
        every_s: float = LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = total
        self.done = initial
        self.desc = desc
        self.unit = unit
        self.counts: dict[str, int] = {}
        self._stream = stream
        self._every_s = every_s
        self._clock = clock
        self._started = self._last_line = clock()
        self._shown: tuple | None = (initial, ())

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_write()

    def note(self, **counts: int) -> None:
        self.counts.update(counts)
        self._maybe_write()

    def close(self) -> None:
        pass  # the job's own summary follows

    def line(self, now: float) -> str:
        counts = "".join(f", {value:,} {name}" for name, value in self.counts.items())
        return f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}s{counts}, {now - self._started:.0f} s"

    def _maybe_write(self) -> None:
        now = self._clock()
        state = (self.done, tuple(self.counts.items()))
        if now - self._last_line < self._every_s or state == self._shown:
            return
        self._last_line, self._shown = now, state
        print(self.line(now), file=self._stream, flush=True)


def progress_for(
    enabled: bool, total: int, initial: int = 0, desc: str = "", unit: str = "file", stream: TextIO | None = None
) -> Progress:
    """A bar on a terminal, lines elsewhere, nothing when progress is off."""
    out = stream if stream is not None else sys.stderr
    if not enabled:
        return NoProgress()
    if out.isatty():
        return BarProgress(total, initial, desc, unit, out)
    return LineProgress(total, initial, desc, unit, out, every_s=LINE_EVERY_S)

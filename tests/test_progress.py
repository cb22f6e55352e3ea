"""Progress of long jobs off a terminal: plain lines that move with the chunks, not only with the files."""

import io

from assistant.core import progress as progress_module
from assistant.core.progress import BarProgress, LineProgress, NoProgress, progress_for


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_at_most_every_interval_and_only_when_something_moved():
    out, clock = io.StringIO(), Clock()
    progress = LineProgress(57, 2, "ingest", "file", out, every_s=30, clock=clock)
    progress.advance()
    progress.note(chunks=1200)
    assert out.getvalue() == ""  # not before the interval
    clock.now += 31
    progress.note(chunks=8120)
    clock.now += 31
    progress.note(chunks=8120)  # nothing moved since the last line
    progress.advance(9)
    assert out.getvalue().splitlines() == [
        "ingest: 3/57 files, 8,120 chunks, 31 s",
        "ingest: 12/57 files, 8,120 chunks, 62 s",
    ]


def test_bar_on_a_terminal_lines_in_a_log_nothing_when_off():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress_for(False, 10, stream=io.StringIO()), NoProgress)
    assert isinstance(progress_for(True, 10, stream=io.StringIO()), LineProgress)
    bar = progress_for(True, 10, stream=Terminal())
    assert isinstance(bar, BarProgress)
    bar.close()


def test_ingest_into_a_log_shows_chunks_stored(fake_services, demo_copy, capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "LINE_EVERY_S", 0.0)
    manifest = fake_services.manifest()
    try:
        summary = fake_services.ingestor(manifest, progress=True).ingest([str(demo_copy)])
    finally:
        manifest.close()
    err = capsys.readouterr().err
    assert "\r" not in err  # plain lines, not a redrawn bar
    lines = [line for line in err.split("\n") if line.startswith("ingest: ")]
    assert lines, "no progress line in the log"
    assert lines[-1].startswith(f"ingest: 7/7 files, {summary.chunks_added:,} chunks")
    files_done = [int(line.split()[1].split("/")[0]) for line in lines]
    assert files_done == sorted(files_done)

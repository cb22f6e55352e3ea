"""The errors refdesk reports to a person: one base, so a front end can catch "anything refdesk says went
wrong" in one clause and let real bugs surface as tracebacks.

Each layer defines its own subclasses next to the code that raises them (StoreError in backends.store,
ReaderError in ingest.registry, …); they all derive from RefdeskError. Messages name the file, record or
URL concerned and say what to do, because they are shown as they are."""

from __future__ import annotations


class RefdeskError(Exception):
    """Something refdesk reports with its message (CLI: "refdesk: error: …", exit 2)."""


class ConfigError(RefdeskError):
    """Bad settings or a bad command line: a person fixes it by changing what they asked for."""

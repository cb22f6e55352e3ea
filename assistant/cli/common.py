"""Output helpers shared by the command modules."""

from __future__ import annotations

import json
import logging
import sys


def print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def setup_logging(verbose: bool = False) -> None:
    """refdesk's own loggers (one per module, under assistant., ingest., eval.) speak to stderr as plain
    sentences, so that stdout stays the command's result (--json); other libraries' only from warnings up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s"))
    for name in ("assistant", "ingest", "eval"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False

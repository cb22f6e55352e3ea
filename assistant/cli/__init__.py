"""`refdesk` command line: a thin adapter over the services (the composition root).

Each command group is a module with `register(sub)`, listed in COMMAND_MODULES; an extension registers the
same way. A command function takes (services, args) and returns the exit status."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from assistant.cli.common import setup_logging
from assistant.core.errors import RefdeskError
from assistant.core.settings import Settings, SettingsError

COMMAND_MODULES = (
    "assistant.cli.ingest",
    "assistant.cli.ask",
    "assistant.cli.desk",
    "assistant.cli.ops",
    "assistant.cli.access",
    "assistant.cli.evaluate",
)
READS_STORE = {"ask", "status", "serve", "verify", "refcheck"}  # and eval run, unless its set brings contexts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refdesk", description="Library reference assistant with checked citations.")
    p.add_argument("--data-dir", help="data directory (env REFDESK_DATA_DIR; default ./data)")
    p.add_argument("--config", help="settings file (default ./refdesk.toml, then DATA_DIR/refdesk.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, with logger names")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def main(argv: Sequence[str] | None = None, services=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if services is None:
            from assistant.services import Services

            services = Services(Settings.load(args.config, data_dir=args.data_dir))
        data_dir = services.settings.data_dir
        if args.command in READS_STORE and services.settings.store.mode == "embedded" and not data_dir.is_dir():
            raise SettingsError(
                f"data dir {data_dir} does not exist: ingest something first (refdesk --data-dir {data_dir} ingest PATH)"
            )
        return args.func(services, args)
    except (RefdeskError, OSError) as exc:
        print(f"refdesk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

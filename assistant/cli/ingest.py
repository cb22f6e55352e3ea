"""`refdesk` commands: ingest files and folders into the store."""

from __future__ import annotations

from assistant.cli.common import print_json


class IngestTerminated(KeyboardInterrupt):
    """SIGTERM (kill, systemctl stop, a scheduler's timeout), raised on the main thread as Ctrl-C's
    KeyboardInterrupt is, so the run stops the same way: the write in flight finishes, its files are recorded,
    nothing of the run writes after the command returns, and the next run goes on from there."""


def _terminated(signum, frame) -> None:
    raise IngestTerminated


def cmd_ingest(services, args) -> int:
    import signal
    import sys
    import threading

    from ingest.pipeline import IngestSummary

    ingest_settings = services.settings.ingest
    if args.ray_address:
        ingest_settings.ray = ingest_settings.ray.model_copy(update={"address": args.ray_address})
    engine = args.engine or ("ray" if args.ray_address else None)
    manifest = services.manifest()
    # Signal handlers belong to the main thread (the CLI's; main() called from another thread keeps the default).
    previous = (
        signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        progress = not args.json  # a bar on a terminal, a line every 30 s in a log
        summary: IngestSummary = services.ingestor(manifest, progress=progress, engine=engine).ingest(
            args.paths, sync=args.sync
        )
    except KeyboardInterrupt as exc:
        stopped_by = "SIGTERM" if isinstance(exc, IngestTerminated) else "Ctrl-C"
        print(
            f"refdesk: ingest stopped ({stopped_by}); the files finished so far are kept: "
            "run the same command again to go on",
            file=sys.stderr,
        )
        return 143 if isinstance(exc, IngestTerminated) else 130
    finally:
        if previous is not None:  # None: set outside Python, cannot be put back from here
            signal.signal(signal.SIGTERM, previous)
        manifest.close()
    if args.json:
        print_json(summary.as_dict())
    else:
        print(summary.text())
    return 1 if summary.files_failed else 0


def register(sub) -> None:
    s = sub.add_parser("ingest", help="ingest files or folders into the store")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    s.add_argument(
        "--sync",
        action="store_true",
        help="also remove records no longer in their file, and files gone from the given folders",
    )
    s.add_argument(
        "--engine",
        choices=["local", "ray"],
        help="local: threads on this machine (default, ingest.engine); ray: Ray Data tasks and embedding actors",
    )
    s.add_argument(
        "--ray-address",
        help="a running Ray cluster (implies --engine ray); without it the Ray engine starts a local one",
    )
    s.set_defaults(func=cmd_ingest)

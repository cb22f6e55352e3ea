"""`refdesk` commands at the reference desk: the librarians' hand-off queue and the reference-list checker."""

from __future__ import annotations

import sys

from assistant.cli.common import print_json
from assistant.core.settings import SettingsError


def cmd_handoff(services, args) -> int:
    from datetime import datetime

    queue = services.handoffs
    if args.action == "list":
        items = queue.list(None if args.all else "open")
        if args.json:
            print_json([h.as_dict() for h in items])
        else:
            for h in items:
                when = datetime.fromtimestamp(h.created_at).strftime("%Y-%m-%d %H:%M")
                print(f"#{h.id} [{h.status}] {when} {h.question}" + (f" (contact: {h.contact})" if h.contact else ""))
            if not items:
                print("no open hand-offs")
        return 0
    if args.id is None:
        raise SettingsError(f"refdesk handoff {args.action} needs an id")
    h = queue.get(args.id) if args.action == "show" else queue.close(args.id, note=args.note or "")
    if args.action == "close":
        services.accounts.audit("cli", "hand-off closed", f"#{h.id}")
    if args.json:
        print_json(h.as_dict())
    else:
        print(f"#{h.id} [{h.status}] {h.question}")
        print(f"draft: {h.draft}")
        for s in h.sources:
            print(f"  [{s['n']}] {s['title'] or s['record_id']} — {s['locator']} {s['link']}")
        if h.contact:
            print(f"contact: {h.contact}")
        if h.note:
            print(f"note: {h.note}")
    return 0


def cmd_refcheck(services, args) -> int:
    from pathlib import Path

    from assistant.refcheck.parse import decode

    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise SettingsError(f"{path}: no such file")
        data = path.read_bytes()
    text, _encoding = decode(data)
    report = services.refcheck.check_text(text)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.text(), end="")
    return 0


def register(sub) -> None:
    s = sub.add_parser("handoff", help="the librarians' hand-off queue")
    s.add_argument("action", choices=["list", "show", "close"])
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--note", help="close: what was done")
    s.add_argument("--all", action="store_true", help="list: closed ones too")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_handoff)

    s = sub.add_parser("refcheck", help="which references of a list does the library hold?")
    s.add_argument("file", help="text (one reference per line or paragraph), BibTeX or RIS; - for stdin")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_refcheck)

"""`refdesk` commands: librarian accounts, API keys and the audit log."""

from __future__ import annotations

import sys

from assistant.cli.common import print_json
from assistant.core.settings import SettingsError


def _read_password(args) -> str:
    import getpass

    if getattr(args, "generate", False):
        import secrets

        return secrets.token_urlsafe(12)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SettingsError("the two passwords differ")
    return first


def cmd_user(services, args) -> int:
    accounts = services.accounts
    if args.action == "list":
        users = accounts.users()
        if args.json:
            print_json(users)
        else:
            print("\n".join(u["username"] for u in users) or "no librarian accounts")
        return 0
    if not args.name:
        raise SettingsError(f"refdesk user {args.action} needs a NAME")
    if args.action == "remove":
        accounts.remove_user(args.name)
        print(f"removed {args.name}")
        return 0
    password = _read_password(args)
    if args.action == "add":
        accounts.add_user(args.name, password)
    else:
        accounts.set_password(args.name, password)
    print(
        f"{'added' if args.action == 'add' else 'new password for'} {args.name}"
        + (f"; password: {password}" if args.generate else "")
    )
    return 0


def cmd_apikey(services, args) -> int:
    accounts = services.accounts
    if args.action == "create":
        key, secret = accounts.create_key(args.name or "")
        if args.json:
            print_json({**key.as_dict(), "secret": secret})
        else:
            print(f"API key #{key.id} ({key.name}): {secret}\nKeep it now: refdesk stores only its hash.")
        return 0
    if args.action == "revoke":
        if args.id is None:
            raise SettingsError("refdesk apikey revoke needs the key's ID (refdesk apikey list)")
        accounts.revoke_key(args.id)
        print(f"revoked API key #{args.id}")
        return 0
    keys = [k.as_dict() for k in accounts.keys()]
    if args.json:
        print_json(keys)
    else:
        for k in keys:
            state = "revoked" if k["revoked_at"] else "active"
            print(f"#{k['id']} {k['name']} {k['prefix']}… {state}")
    return 0


def cmd_audit(services, args) -> int:
    import datetime as dt

    entries = services.accounts.audit_log(args.n)
    if args.json:
        print_json(entries)
    else:
        for e in entries:
            when = dt.datetime.fromtimestamp(e["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            print(f"{when}  {e['actor']}  {e['action']}  {e['detail']}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("user", help="librarian accounts (console sign-in)")
    s.add_argument("action", choices=["add", "remove", "list", "passwd"])
    s.add_argument("name", nargs="?")
    s.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    s.add_argument("--generate", action="store_true", help="add/passwd: make a random password and print it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_user)

    s = sub.add_parser("apikey", help="API keys for /v1/chat/completions")
    s.add_argument("action", choices=["create", "list", "revoke"])
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--name", help="create: who or what uses the key")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_apikey)

    s = sub.add_parser("audit", help="the log of librarian actions (no patron content)")
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit)

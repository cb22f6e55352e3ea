"""Output helpers shared by the command modules."""

from __future__ import annotations

import json


def print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))

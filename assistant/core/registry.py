"""A tiny registry of pluggable parts with lazy imports (as Annif does for its backends).

Entries are "module:attribute" strings, imported only when a backend is used, so the
fake backends used by unit tests never import torch or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name: str, target: str) -> None:
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        try:
            target = self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

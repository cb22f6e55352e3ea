"""Retrieval filters on chunk metadata: "year<1900", "format=book", "language=English"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.core.errors import RefdeskError

OPERATORS = ("<=", ">=", "!=", "<", ">", "=")
PATTERN = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(<=|>=|!=|<|>|=)\s*(.+?)\s*$")


class FilterError(RefdeskError, ValueError):
    pass


@dataclass(frozen=True)
class Filter:
    key: str
    op: str
    value: str | int | float | tuple  # a tuple with op "in": any of these values

    @classmethod
    def parse(cls, text: str) -> Filter:
        match = PATTERN.match(text)
        if not match:
            raise FilterError(f"bad filter {text!r}: use KEY=VALUE, KEY<N, KEY>=N … (e.g. year<1900, format=book)")
        key, op, raw = match.groups()
        value: str | int | float = raw
        if re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        elif re.fullmatch(r"-?\d+\.\d+", raw):
            value = float(raw)
        if op in ("<", ">", "<=", ">=") and isinstance(value, str):
            raise FilterError(f"bad filter {text!r}: {op} needs a number")
        return cls(key, op, value)

    def matches(self, meta: dict) -> bool:
        """The same test Chroma applies to a `where`, for candidates found by the lexical index."""
        have = meta.get(self.key)
        if self.op == "in":
            return have in tuple(self.value) if isinstance(self.value, tuple) else have == self.value
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        if not isinstance(have, (int, float)) or isinstance(have, bool) or not isinstance(self.value, (int, float)):
            return False
        return {
            "<": have < self.value,
            ">": have > self.value,
            "<=": have <= self.value,
            ">=": have >= self.value,
        }[self.op]


CHROMA_OPERATORS = {"=": "$eq", "!=": "$ne", "<": "$lt", ">": "$gt", "<=": "$lte", ">=": "$gte", "in": "$in"}


def to_chroma_where(filters: list[Filter]) -> dict | None:
    """A Chroma `where` that holds when all the filters hold."""
    clauses = [
        {f.key: {CHROMA_OPERATORS[f.op]: list(f.value) if isinstance(f.value, tuple) else f.value}} for f in filters
    ]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}

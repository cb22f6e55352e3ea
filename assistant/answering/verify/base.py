from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class CitedSource:
    n: int
    chunk_id: str
    text: str  # the stored text, less any sentence that reads as an instruction
    removed: list[str] = field(default_factory=list)  # those instruction-like sentences


@dataclass
class SentenceCheck:
    """What a verifier sees: one sentence and the stored text of the sources it validly cites."""

    text: str
    cited: list[CitedSource]
    question: str = ""
    reasons: list[str] = field(default_factory=list)


class Verifier(Protocol):
    name: str

    def reasons(self, check: SentenceCheck) -> list[str]:
        """Why the cited text does not support the sentence; [] when it passes."""
        ...

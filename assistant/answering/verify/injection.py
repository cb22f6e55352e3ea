"""Archived pages and records are data, not instructions.

Sentences of a source that read as instructions to the assistant are taken out of the
evidence (so they can never support a claim), and an answer sentence that repeats one is
rejected.
"""

from __future__ import annotations

import re

from assistant.answering.verify.base import SentenceCheck
from assistant.core.text import words

INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b[^.!?\n]{0,40}\b(instructions?|prompts?|rules?|above|previous)\b"
    r"|\byou are now\b|\bsystem prompt\b|\bnew instructions?\b|\bas an ai\b|\b(assistant|chatbot|ai)\s*[:,]\s*(say|tell|answer|reply)",
    re.IGNORECASE,
)
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def split_instructions(text: str) -> tuple[str, list[str]]:
    """(text without instruction-like sentences, the sentences removed)."""
    kept: list[str] = []
    removed: list[str] = []
    for piece in SENTENCE.split(text):
        (removed if INSTRUCTION.search(piece) else kept).append(piece)
    return (" ".join(kept) if removed else text), removed


def _words(text: str) -> set[str]:
    return {w for w in words(text) if len(w) >= 3}


class InjectionVerifier:
    name = "injection"

    def reasons(self, check: SentenceCheck) -> list[str]:
        sentence_words = _words(check.text)
        if not sentence_words:
            return []
        for cited in check.cited:
            for instruction in cited.removed:
                overlap = len(sentence_words & _words(instruction)) / len(sentence_words)
                if overlap >= 0.5:
                    return [f"repeats an instruction found inside source [{cited.n}]"]
        return []

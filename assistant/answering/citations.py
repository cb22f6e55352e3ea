"""Splits an answer into sentences and reads their [n] markers."""

from __future__ import annotations

import re

# [1], [1, 2], [1][2], [Source 1] — the forms small models write.
MARKER = re.compile(r"\[\s*(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\s*\]", re.IGNORECASE)
# "… end. [1]" -> "… end [1]." so the marker stays with the sentence it closes.
TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[[^\]\n]{1,30}\])+)")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“'(\[]?[A-Z0-9])|\n+")


def sentences_with_markers(text: str) -> list[tuple[str, list[int]]]:
    """[(sentence text without markers, [n, ...])] in order; blank pieces are dropped."""
    text = TRAILING_MARKERS.sub(lambda m: f"{m.group(2)}{m.group(1)}", text.strip())
    out: list[tuple[str, list[int]]] = []
    for piece in SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        numbers: list[int] = []
        for match in MARKER.finditer(piece):
            for part in re.split(r"[,;]", match.group(1)):
                n = int(re.sub(r"\D", "", part))
                if n not in numbers:
                    numbers.append(n)
        bare = MARKER.sub("", piece)
        bare = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", bare)).strip()
        if bare.strip(" .,;:-"):
            out.append((bare, numbers))
    return out


def with_markers(text: str, numbers: list[int]) -> str:
    """Re-attaches valid markers before the sentence's closing punctuation."""
    if not numbers:
        return text
    marks = "".join(f"[{n}]" for n in numbers)
    if text and text[-1] in ".!?":
        return f"{text[:-1]} {marks}{text[-1]}"
    return f"{text} {marks}"

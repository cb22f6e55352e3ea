"""Converts HaluEval QA (github.com/RUCAIBox/HaluEval, MIT licence) to refdesk's test-set format.

HaluEval's qa_data.json has one JSON object per line: knowledge, question, right_answer,
hallucinated_answer. Each becomes an answerable question with its knowledge as the given context
(retrieval is bypassed: the run measures the answer step and the citation checker). To measure
refusals too, a share of the questions is repeated with another question's knowledge as context:
the context does not answer them, so refdesk must refuse (tag "mismatched context").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

REQUIRED = ("knowledge", "question", "right_answer")


def _records(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """(line number, record or None, error) from JSON lines or one JSON array."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if text.lstrip().startswith("["):
        try:
            for i, rec in enumerate(json.loads(text), 1):
                yield i, rec, ""
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"not JSON: {exc.msg}"
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), ""
        except json.JSONDecodeError as exc:
            yield number, None, f"not JSON: {exc.msg}"


def convert(path: Path, out: Path, limit: int | None = None, mismatched: float = 0.25) -> dict:
    path, out = Path(path), Path(out)
    good: list[tuple[int, dict]] = []
    errors: list[str] = []
    for number, rec, error in _records(path):
        if rec is not None and (not isinstance(rec, dict) or any(not str(rec.get(k, "")).strip() for k in REQUIRED)):
            error = f"needs non-empty {', '.join(REQUIRED)}"
        if error:
            errors.append(f"{path}:{number}: {error}")
            continue
        if rec is not None:
            good.append((number, rec))
        if limit and len(good) >= limit:
            break
    items = []
    for number, rec in good:
        items.append(
            {
                "id": f"halueval-qa-{number}",
                "question": rec["question"].strip(),
                "answerable": True,
                "reference_answer": rec["right_answer"].strip(),
                "contexts": [rec["knowledge"].strip()],
                "tags": ["halueval"],
                "hallucinated_answer": rec.get("hallucinated_answer", ""),
            }
        )
    n_mismatched = int(len(good) * mismatched) if len(good) > 1 else 0
    for i in range(n_mismatched):
        number, rec = good[i]
        _, other = good[(i + 1) % len(good)]
        items.append(
            {
                "id": f"halueval-qa-{number}-mismatched",
                "question": rec["question"].strip(),
                "answerable": False,
                "reference_answer": "",
                "contexts": [other["knowledge"].strip()],
                "tags": ["halueval", "mismatched context"],
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    return {"read": len(good), "written": len(items), "mismatched": n_mismatched, "errors": errors, "out": str(out)}

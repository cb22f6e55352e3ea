"""The evaluation test-set format: JSONL, one question per line (see README "Evaluating")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class GoldLocator(BaseModel):
    """A record that answers the question: {"source_type", "record_id"} or {"path", "record_id"}."""

    model_config = ConfigDict(extra="forbid")
    record_id: str
    source_type: str | None = None
    path: str | None = None  # file name (or path suffix) the record was ingested from

    @model_validator(mode="after")
    def _one_scope(self):
        if not self.source_type and not self.path:
            raise ValueError("a gold locator needs source_type or path besides record_id")
        return self

    def matches(self, source_type: str, record_id: str, source_file: str = "") -> bool:
        if record_id != self.record_id:
            return False
        if self.source_type and source_type != self.source_type:
            return False
        if self.path:
            wanted = self.path.replace("\\", "/").rstrip("/")
            have = source_file.replace("\\", "/")
            return have == wanted or have.endswith("/" + wanted)
        return True


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="allow")  # converters may keep fields of their source set
    id: str
    question: str = Field(min_length=1)
    answerable: bool
    reference_answer: str = ""
    reference_claims: list[str] = Field(default_factory=list)
    key_facts: list[str] = Field(default_factory=list)  # short strings a correct answer must contain
    gold: list[GoldLocator] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    contexts: list[str] = Field(default_factory=list)  # given passages: retrieval is bypassed
    history: list[str] = Field(default_factory=list)  # earlier user questions of the conversation (follow-ups)
    # "not_held": the library holds the work but not as asked (a year, a format, a part it lacks): a correct
    # answer says so (a not-held notice or a refusal), and never presents another record as the asked one.
    expect: Literal["", "not_held"] = ""

    @property
    def source_type(self) -> str:
        """The kind of material the question is about, for breakdowns."""
        if not self.answerable:
            return "unanswerable"
        if self.contexts:
            return "given contexts"
        return next((g.source_type for g in self.gold if g.source_type), "unknown")


class SetError(BaseModel):
    path: str
    line: int
    message: str

    def text(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def load_set(path: Path | str) -> tuple[list[EvalItem], list[SetError]]:
    """Every good line becomes an item; each bad line an error naming its line. Never raises on content."""
    path = Path(path)
    items: list[EvalItem] = []
    errors: list[SetError] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise ValueError("a line must be a JSON object")
                raw.setdefault("id", f"line-{number}")
                raw["id"] = str(raw["id"])
                item = EvalItem.model_validate(raw)
            except json.JSONDecodeError as exc:
                errors.append(
                    SetError(path=str(path), line=number, message=f"not JSON: {exc.msg} (column {exc.colno})")
                )
                continue
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
                errors.append(SetError(path=str(path), line=number, message=problems))
                continue
            except ValueError as exc:
                errors.append(SetError(path=str(path), line=number, message=str(exc)))
                continue
            if item.id in seen:
                errors.append(SetError(path=str(path), line=number, message=f"duplicate id {item.id!r}"))
                continue
            seen.add(item.id)
            items.append(item)
    return items, errors

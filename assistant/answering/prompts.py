"""Prompt templates live in files under the prompts dir; `{{name}}` placeholders are filled here."""

from __future__ import annotations

import re
from pathlib import Path

from assistant.core.errors import RefdeskError
from assistant.core.types import Source

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class PromptError(RefdeskError):
    pass


DEFAULT_CHARS_PER_SOURCE = 1500  # a whole catalogue record can be long; the lead needs its first lines


class Prompts:
    def __init__(self, directory: Path, chars_per_source: int = DEFAULT_CHARS_PER_SOURCE):
        self.directory = directory
        # Each source's text in the prompt is cut to this: five whole records must fit a small model's context.
        self.chars_per_source = chars_per_source
        self._templates: dict[str, str] = {}  # read once per name: the files do not change while serving

    def template(self, name: str) -> str:
        if name not in self._templates:
            path = self.directory / f"{name}.md"
            try:
                self._templates[name] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PromptError(f"{path}: prompt template missing ({exc.strerror or exc})") from exc
        return self._templates[name]

    def render(self, name: str, **values: object) -> str:
        # One pass, so text from a source can never fill in another placeholder.
        return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), self.template(name))

    def sources_block(self, sources: list[Source]) -> str:
        return "\n\n".join(
            self.render(
                "source",
                n=s.n,
                title=s.title or s.record_id,
                source_type=s.source_type,
                locator=s.locator or s.record_id,
                date_part=f"; {s.date}" if s.date else "",
                # Fencing: a source cannot close its own <source> element.
                text=_cut(s.text, self.chars_per_source).replace("</source>", "</ source>"),
            )
            for s in sources
        )

    def answer_messages(self, question: str, sources: list[Source]) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.template("system")},
            {"role": "user", "content": self.render("answer", sources=self.sources_block(sources), question=question)},
        ]


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit("\n", 1)[0] + "\n…"

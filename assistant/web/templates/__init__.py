"""HTML templates (Jinja2, autoescaped): the console's and widget's fragments and the sign-in page.

Everything that came from a record, a patron or the model reaches a template as plain text and is escaped
there; only the two filters below produce markup, from text they escape first."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

CITE = re.compile(r"\[(\d+)\]")


def cite_links(text: str, anchor: str = "source-") -> Markup:
    """Escaped text with each [n] a link to source card n."""
    escaped = str(escape(text))
    return Markup(CITE.sub(lambda m: f'<a class="cite" href="#{anchor}{m.group(1)}">[{m.group(1)}]</a>', escaped))


def utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it, not silently blank
        keep_trailing_newline=False,
    )
    env.filters["cite_links"] = cite_links
    env.filters["utc"] = utc
    return env


def render(name: str, **values: object) -> str:
    return environment().get_template(name).render(**values)

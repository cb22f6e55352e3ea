"""The one tokenizer: how refdesk folds text and splits it into words, for every rule that compares a question,
a record and a sentence (evidence, the checker, the reference checker, the lexical index).

Also the record-text contract the readers write and the answering rules read: a record's text is a title line
followed by "Label: value" lines (FIELD_LINE), then free text.

Word-piece tokenisation for chunk sizes is the embedding model's own (ingest.chunking), not this."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Function words, and words every library question or answer uses ("library", "book"): they say nothing
# about which record is meant, and a capitalised one is no checkable name.
STOPWORDS = frozenset(
    """
a about according after all also although an and another any are as at based be because been before both but by can
could did do does each either every for from further had has have he her here hers him his how however i if in
including into is it its just many may more most much my neither no nor not of on one or other our out over please
she since so some such than that the their them then there these they this those though through to under unlike until
upon us was we were what when where whether which while who whom whose why will with within without would yes yet you
your sorry unfortunately note see sources source answer library collections collection records record catalogue
catalog archive archives book books title author published publisher edition
""".split()
)

SPACES = re.compile(r"\s+")
WORD = re.compile(r"[^\W_]+")  # letters and digits of any script, after folding
HYPHENATED = re.compile(r"(?<![^\W_])[^\W_]+(?:-[^\W_]+)+(?![^\W_])")  # "a-c", "1939-1945": a folder range
FIELD_LINE = re.compile(r"^\s*([A-Z][\w /()-]{1,40}?)\s*:\s*(.+?)\s*$")
STEM_SUFFIXES = ("ings", "ing", "ies", "es", "ed", "s")  # longest first
STEM_MIN_REMAINDER = 4  # "news" stays "news"; "dates" -> "date", "published" -> "publish"


def fold(text: str) -> str:
    """Case-folded, diacritics removed, quotes unified, whitespace collapsed."""
    if not text.isascii():  # ASCII has no diacritics or curly quotes: most records skip the per-character pass
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = text.replace("’", "'").replace("‘", "'")
    return SPACES.sub(" ", text.casefold()).strip()


def words(text: str, *, folded: bool = False) -> list[str]:
    """The words of a text, in order, folded (pass folded=True when it already is)."""
    return WORD.findall(text if folded else fold(text))


def word_set(text: str, *, folded: bool = False) -> set[str]:
    return set(words(text, folded=folded))


def hyphenated(text: str, *, folded: bool = False) -> list[str]:
    """Hyphenated labels ("A-C", "1939-1945"), folded: one term, not two words."""
    return HYPHENATED.findall(text if folded else fold(text))


def without_hyphenated(folded: str) -> str:
    return HYPHENATED.sub(" ", folded)


@lru_cache(maxsize=1 << 16)  # retrieval stems the same title words for every candidate
def stem(word: str) -> str:
    """Crude English suffix stripping, enough for "dates" ~ "date", "published" ~ "publish"."""
    for suffix in STEM_SUFFIXES:
        if len(word) >= len(suffix) + STEM_MIN_REMAINDER and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def record_fields(text: str) -> list[tuple[str, str]]:
    """The "Label: value" lines of a record's text, value without a final full stop."""
    out = []
    for line in text.splitlines():
        match = FIELD_LINE.match(line)
        if match:
            out.append((match.group(1).strip(), match.group(2).strip().rstrip(".")))
    return out

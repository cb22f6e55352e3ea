"""Splits pasted text or files into references and parses each into fields.

Why heuristics for free text: the well-kept citation parsers (GROBID, CERMINE, AnyStyle) are Java or Ruby
services with trained models, and refextract targets physics papers; none runs offline inside this Python
package on a laptop. Structured input goes through well-kept parsers: bibtexparser for BibTeX and rispy for
RIS; identifiers are validated and normalised with python-stdnum (ISBN-10/13, ISSN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stdnum import isbn as stdnum_isbn
from stdnum import issn as stdnum_issn

MAX_REFERENCES = 500  # a paste longer than this is cut, with a message saying so
MAX_REFERENCE_CHARS = 2000

ISBN_RE = re.compile(r"\b(?:ISBN(?:-1[03])?:?\s*)?((?:97[89][\s-]?)?\d[\d\s-]{8,15}[\dXx])\b")
ISSN_RE = re.compile(r"\bISSN:?\s*(\d{4}-?\d{3}[\dXx])\b", re.I)
DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.I)
URL_RE = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.I)
YEAR_RE = re.compile(r"(?<![\d-])(1[4-9]\d\d|20[0-3]\d)(?![\d-])")
APA_RE = re.compile(r"^(?P<authors>.+?)\s*\((?P<year>1[4-9]\d\d|20[0-3]\d)[a-z]?(?:,[^)]*)?\)\.?\s*(?P<rest>.+)$")
NUMBERING = re.compile(r"^\s*(?:\[\d+\]|\(\d+\)|\d+[.)]|[-*•–])\s+")
LOOSE_BY = re.compile(
    r"^(?P<title>.+?)(?<![Ee]dited)(?<![Tt]ranslated)(?<![Ii]llustrated)(?<![Cc]ompiled)(?<![Ii]ntroduced)"
    r"(?<![Rr]evised)\s+by\s+(?P<authors>[^()]+?)\s*[(,]\s*(?P<year>1[4-9]\d\d|20[0-3]\d)\)?\s*\.?$"
)
LIFE_DATES = re.compile(r",?\s*\(?\b1[4-9]\d\d\??-(?:1[4-9]\d\d|20[0-3]\d)?\)?")
# A quoted title starts the reference or follows the authors ("Hunt, A. “The …”"), not a word inside a title.
QUOTED = re.compile(r"(?:^|(?<=\.\s)|(?<=\.))[\"“”«»](?P<title>[^\"“”«»]{3,}?)[\"“”«»]")
PARTICLES = {
    "and",
    "&",
    "et",
    "al.",
    "al",
    "de",
    "da",
    "di",
    "del",
    "van",
    "von",
    "der",
    "den",
    "ibn",
    "bin",
    "bint",
    "el",
    "la",
    "le",
    "du",
    "dos",
    "w.",
    "y",
}
ABBREVIATIONS = {
    "ed",
    "eds",
    "vol",
    "no",
    "pp",
    "rev",
    "trans",
    "comp",
    "jr",
    "sr",
    "st",
    "dr",
    "mr",
    "mrs",
    "ms",
    "co",
    "inc",
    "ltd",
    "dept",
    "univ",
}


def _is_initial(token: str) -> bool:
    """ "J", "Ca", "Vē" (romanised Tamil initials), "Ch": a capital and at most one more letter."""
    letters = [c for c in token if c.isalpha()]
    return 1 <= len(letters) <= 2 and letters[0].isupper() and (len(letters) == 1 or letters[1].islower())


def _author_then_title(segment: str) -> tuple[str, str] | None:
    """ "Paris, Bernard J. Rereading George Eliot" -> author, title: the last initial that is followed by
    a capitalised word ends the author (the segment has a comma before it)."""
    tokens = segment.split(" ")
    for i in range(len(tokens) - 2, 0, -1):
        tok = tokens[i]
        if tok.endswith(".") and _is_initial(tok[:-1]) and "," in " ".join(tokens[:i]) and _capitalised(tokens[i + 1]):
            return " ".join(tokens[: i + 1]).rstrip("."), " ".join(tokens[i + 1 :])
    return None


def _capitalised(word: str) -> bool:
    word = word.lstrip("ʻʼ'‘’\"“([")
    return bool(word) and word[0].isupper()


class _Segments:
    """Splits at ". " unless the period ends an initial ("J. N. Lockyer") or a common abbreviation."""

    @staticmethod
    def split(text: str) -> list[str]:
        out: list[str] = []
        for piece in re.split(r"(?<=\.)\s+", text):
            last = re.search(r"(\S+)\.$", out[-1]) if out else None
            if last and (_is_initial(last.group(1)) or last.group(1).lower() in ABBREVIATIONS):
                out[-1] = f"{out[-1]} {piece}"
            else:
                out.append(piece)
        return [x[:-1] if x.endswith(".") else x for x in out]


SEGMENT = _Segments


@dataclass
class Reference:
    raw: str
    line: int  # first line of the reference in the input
    title: str = ""
    authors: list[str] = field(default_factory=list)  # as written: "Chabon, Michael", "M. Chabon"
    year: int | None = None
    publisher: str = ""  # publisher or container (journal, series)
    isbns: list[str] = field(default_factory=list)  # ISBN-13, validated
    issns: list[str] = field(default_factory=list)
    doi: str = ""
    title_continuations: list[str] = field(default_factory=list)  # segments after the title (it may go on)
    style: str = "free text"  # free text (apa | mla/chicago | title first), bibtex, ris
    problem: str = ""  # why this is not treated as a reference

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", [], None) or k in ("title", "raw", "line")}


# ------------------------------------------------------------------------------- splitting


def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM), UTF-16 with BOM, else a detected one."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        return str(best), best.encoding
    return data.decode("latin-1"), "latin-1"


def split_references(text: str) -> list[tuple[int, str]]:
    """One reference per line, except that a line continues the one before when it was wrapped: it
    starts in lower case, or the line before ends mid-phrase (",", ":", "&", "-", "and", "by").
    Blank lines always separate. Returns (first line number, text)."""
    out: list[tuple[int, list[str]]] = []
    previous = ""
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        line = line.strip()
        if not line:
            previous = ""
            continue
        if previous and (line[:1].islower() or CONTINUES.search(previous)):
            out[-1][1].append(line)
        else:
            out.append((number, [line]))
        previous = line
    return [(n, " ".join(lines)) for n, lines in out]


CONTINUES = re.compile(r"([,:;&–-]|\band|\bby|\bof|\bthe|\bin)$", re.I)


# ------------------------------------------------------------------------------- identifiers


def _identifiers(text: str, ref: Reference) -> str:
    for match in ISSN_RE.finditer(text):
        if stdnum_issn.is_valid(match.group(1)):
            ref.issns.append(stdnum_issn.format(match.group(1)))
    text = ISSN_RE.sub(" ", text)
    for match in DOI_RE.finditer(text):
        ref.doi = ref.doi or match.group(1).rstrip(".,;")
    text = URL_RE.sub(" ", DOI_RE.sub(" ", text))
    for match in ISBN_RE.finditer(text):
        digits = re.sub(r"[\s-]", "", match.group(1))
        if len(digits) in (10, 13) and stdnum_isbn.is_valid(digits):
            ref.isbns.append(stdnum_isbn.to_isbn13(digits))
            text = text.replace(match.group(0), " ")
    text = re.sub(r"\b(?:ISBN|ISSN|DOI|doi)\b:?", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def normalise_isbn(value: str) -> str | None:
    digits = re.sub(r"[^\dXx]", "", value)
    if len(digits) in (10, 13) and stdnum_isbn.is_valid(digits):
        return stdnum_isbn.to_isbn13(digits)
    return None


# ------------------------------------------------------------------------------- free text


def _clean_title(title: str) -> str:
    title = re.sub(r"[*_]+", "", title)  # Markdown italics
    title = title.strip(" .,;:\"“”'«»[]()")
    return re.sub(r"\s+", " ", title)


def _split_authors(text: str) -> list[str]:
    text = LIFE_DATES.sub("", re.sub(r"\bet al\.?", "", text)).strip(" .,;")
    if not text:
        return []
    parts = re.split(r"\s*(?:;|&|\band\b|\bund\b|\bet\b)\s*", text)
    out: list[str] = []
    for part in parts:
        part = part.strip(" ,.")
        if not part:
            continue
        # "Hunt, A., Thomas, D." -> pairs of surname, initials
        pieces = [x.strip() for x in part.split(",") if x.strip()]
        i = 0
        while i < len(pieces):
            if i + 1 < len(pieces) and _initials_or_given(pieces[i + 1]):
                out.append(f"{pieces[i]}, {pieces[i + 1]}")
                i += 2
            else:
                out.append(pieces[i])
                i += 1
    return [a for a in out if re.search(r"[^\W\d_]{2,}", a)]


def _initials_or_given(text: str) -> bool:
    words = text.split()
    return 0 < len(words) <= 3 and all(w[0].isupper() for w in words if w[0].isalpha())


def _looks_like_names(segment: str) -> bool:
    segment = LIFE_DATES.sub("", segment)  # "Armstrong, Louis, 1901-1971"
    words = segment.replace(",", " ").split()
    if len(words) < 2 or len(words) > 14:  # one word alone is more often a title ("Nature") than a name
        return False
    capital = sum(
        1
        for w in words
        if _capitalised(w) or w in PARTICLES or w.split("-")[0] in PARTICLES or _is_initial(w.rstrip(".").upper())
    )
    return capital / len(words) >= 0.8 and ("," in segment or len(words) <= 4)


def parse_free_text(text: str, line: int = 0) -> Reference:
    raw = text
    ref = Reference(raw=raw, line=line)
    text = NUMBERING.sub("", text.strip())
    text = _identifiers(text, ref)
    loose = LOOSE_BY.match(text)
    if loose and not APA_RE.match(text):
        ref.style = "free text (title by author)"
        ref.title = _clean_title(loose.group("title"))
        ref.authors = _split_authors(loose.group("authors"))
        ref.year = int(loose.group("year"))
        return ref
    apa = APA_RE.match(text)
    # "Surname, I. (2002)." is APA's own shape: a looser name check than for other styles.
    if apa and "," in apa.group("authors") and len(apa.group("authors").split()) <= 24:
        ref.style = "free text (APA)"
        ref.authors = _split_authors(apa.group("authors"))
        ref.year = int(apa.group("year"))
        segments = [s for s in SEGMENT.split(apa.group("rest")) if s.strip()]
        quoted = QUOTED.search(apa.group("rest"))
        ref.title = _clean_title(quoted.group("title") if quoted else segments[0] if segments else "")
        ref.publisher = _clean_title(segments[1]) if len(segments) > 1 else ""
        if not quoted:
            ref.title_continuations = [_clean_title(x) for x in segments[1:4]]
        return ref
    years = YEAR_RE.findall(text)
    ref.year = int(years[-1]) if years else None  # MLA and Chicago put the year last
    quoted = QUOTED.search(text)
    segments = [s.strip() for s in SEGMENT.split(text) if s.strip()]
    if segments:
        # "Paris, Bernard J. Rereading George Eliot": the initial ends the author, not a word of the title.
        split = _author_then_title(segments[0])
        if split and len(split[1].split()) >= 2:
            segments[:1] = [split[0].strip(), split[1].strip()]
    if quoted and len(SEGMENT.split(text[: quoted.start()].strip())) <= 1:  # quoted right after the authors
        ref.style = "free text (quoted title)"
        ref.title = _clean_title(quoted.group("title"))
        before = text[: quoted.start()].strip(" .,")
        ref.authors = _split_authors(before) if before and _looks_like_names(before) else []
        ref.publisher = _clean_title(YEAR_RE.sub("", text[quoted.end() :]))
    elif " by " in text and not _looks_like_names(segments[0] if segments else ""):
        ref.style = "free text (title by author)"
        title, _, rest = text.partition(" by ")
        ref.title = _clean_title(title)
        ref.authors = _split_authors(re.split(r"[.(,]\s*(?:1[4-9]\d\d|20[0-3]\d)|\(|\.\s", rest)[0])
    elif len(segments) >= 2 and _looks_like_names(segments[0]):
        ref.style = "free text (MLA/Chicago)"
        ref.authors = _split_authors(segments[0])
        ref.title = _clean_title(segments[1])
        ref.title_continuations = [_clean_title(YEAR_RE.sub("", x)) for x in segments[2:5]]
        ref.publisher = _clean_title(YEAR_RE.sub("", " ".join(segments[2:])).strip(" ,.:"))
    else:
        ref.style = "free text (title first)"
        if " / " in text:  # catalogue style: "Title : subtitle / Author, year"
            title, _, rest = text.partition(" / ")
            rest = SEGMENT.split(rest)[0]
        else:
            title, rest = segments[0] if segments else text, ""
        ref.title = _clean_title(YEAR_RE.sub("", title))
        if rest:
            ref.authors = _split_authors(re.split(r"\(|,\s*(?:c|p)?(?:1[4-9]\d\d|20[0-3]\d)", rest)[0])
    if ref.publisher:
        ref.publisher = re.sub(r"^[^:]{1,40}:\s*", "", ref.publisher).strip(" ,.")  # "New York: Random House"
    return ref


def problem(ref: Reference) -> str:
    """Why a parsed line is not a reference we can check ("" if it is one)."""
    words = re.findall(r"[^\W\d_]{2,}", ref.title)
    if ref.isbns or ref.issns:
        return ""
    if len(ref.raw) > MAX_REFERENCE_CHARS:
        return f"longer than {MAX_REFERENCE_CHARS} characters: not one reference"
    if not words:
        return "no title found: not a reference"
    if not ref.authors and not ref.year and len(words) < 4:
        return "no author, year or identifier and a very short title: not a reference (add the author or year)"
    return ""


# ------------------------------------------------------------------------------- structured files


def parse_bibtex(text: str) -> list[Reference]:
    import bibtexparser

    library = bibtexparser.parse_string(text)
    out = []
    for entry in library.entries:
        fields = {k.lower(): str(v.value if hasattr(v, "value") else v) for k, v in entry.fields_dict.items()}
        clean = lambda s: re.sub(r"[{}]", "", s).strip()  # noqa: E731
        ref = Reference(
            raw="",
            line=getattr(entry, "start_line", 0) + 1,
            style="bibtex",
            title=_clean_title(clean(fields.get("title", ""))),
            authors=[
                clean(a) for a in re.split(r"\s+and\s+", fields.get("author", fields.get("editor", ""))) if clean(a)
            ],
            publisher=clean(fields.get("publisher", fields.get("journal", fields.get("booktitle", "")))),
        )
        year = YEAR_RE.search(fields.get("year", "") or fields.get("date", ""))
        ref.year = int(year.group(1)) if year else None
        for value in re.split(r"[,;\s]+", fields.get("isbn", "")):
            if n := normalise_isbn(value):
                ref.isbns.append(n)
        ref.doi = clean(fields.get("doi", ""))
        ref.raw = f"[{entry.key}] {'; '.join(ref.authors)}: {ref.title}" + (f" ({ref.year})" if ref.year else "")
        out.append(ref)
    for block in library.failed_blocks:
        raw = " ".join(str(getattr(block, "raw", "")).split())[:200]
        error = getattr(block, "error", None)
        why = f"{type(error).__name__}: {error}" if error else type(block).__name__
        out.append(
            Reference(
                raw=raw,
                line=getattr(block, "start_line", 0) + 1,
                style="bibtex",
                problem=f"BibTeX entry could not be parsed ({why})",
            )
        )
    return out


def parse_ris(text: str) -> list[Reference]:
    import rispy

    out = []
    try:
        entries = rispy.loads(text)
    except Exception as exc:  # noqa: BLE001 - rispy raises plain exceptions on malformed files
        return [Reference(raw=text[:200], line=1, style="ris", problem=f"RIS file could not be parsed: {exc}")]
    for i, entry in enumerate(entries, 1):
        title = entry.get("title") or entry.get("primary_title") or entry.get("secondary_title") or ""
        ref = Reference(
            raw=f"{'; '.join(entry.get('authors', []))} {title}".strip(),
            line=i,
            style="ris",
            title=_clean_title(title),
            authors=list(entry.get("authors", []) or entry.get("first_authors", [])),
            publisher=entry.get("publisher", "") or entry.get("journal_name", "") or "",
        )
        year = YEAR_RE.search(str(entry.get("year", "") or entry.get("publication_year", "") or entry.get("date", "")))
        ref.year = int(year.group(1)) if year else None
        for value in re.split(r"[,;\s]+", str(entry.get("issn", ""))):  # RIS "SN" holds ISBN or ISSN
            if n := normalise_isbn(value):
                ref.isbns.append(n)
            elif value and stdnum_issn.is_valid(value):
                ref.issns.append(stdnum_issn.format(value))
        ref.doi = entry.get("doi", "") or ""
        out.append(ref)
    return out


def parse_input(text: str, limit: int = MAX_REFERENCES) -> tuple[list[Reference], list[str]]:
    """References from any supported input, and notes for the user (e.g. the paste was cut)."""
    notes: list[str] = []
    if re.search(r"^\s*@\w+\s*\{", text, re.M):
        refs = parse_bibtex(text)
    elif re.search(r"^TY  - ", text, re.M):
        refs = parse_ris(text)
    else:
        refs = []
        for line, chunk in split_references(text):
            ref = parse_free_text(chunk, line)
            ref.problem = problem(ref)
            refs.append(ref)
    for ref in refs:
        if not ref.problem and ref.style in ("bibtex", "ris"):
            ref.problem = problem(ref)
    if len(refs) > limit:
        notes.append(
            f"{len(refs)} references pasted; only the first {limit} were checked "
            f"(split the list, or raise refcheck.max_references)"
        )
        refs = refs[:limit]
    return refs, notes

"""MARC21 reader: binary ISO 2709 (any extension, sniffed) and MARCXML, streamed record by record.

Binary records are split on the record terminator (0x1D) rather than trusting the leader's
length, so an oversize or mis-measured record does not derail the ones after it. Each record's
encoding is decided from its bytes, not only from leader/09: UTF-8 bytes under a MARC-8 leader,
Windows-1251 Cyrillic under a MARC-8 leader, and non-UTF-8 bytes under a UTF-8 leader are all
seen in real catalogues (see ../shared/data/marc).
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pymarc

from assistant.core.errors import RefdeskError
from assistant.core.types import Filters, Provenance, RecordField, SkippedRecord, SourceRecord, fielded_text
from ingest.registry import ReaderError, open_binary

# What a malformed record raises inside pymarc and our field readers (fuzz-tested in tests/test_fuzz_readers.py):
# one such record is reported and skipped; anything else is a bug and surfaces.
MARC_RECORD_ERRORS: tuple[type[Exception], ...] = (
    pymarc.exceptions.PymarcException,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    UnicodeError,
    RefdeskError,
)

RECORD_END = b"\x1d"
logging.getLogger("pymarc").setLevel(logging.ERROR)  # it logs every odd indicator; we report per record
MARCXML_NS = "http://www.loc.gov/MARC21/slim"

FORMATS = {  # leader/06 -> format; leader/07 refines "a"
    "a": "book",
    "c": "score",
    "d": "score",
    "e": "map",
    "f": "map",
    "g": "video",
    "i": "sound",
    "j": "music recording",
    "k": "image",
    "m": "computer file",
    "o": "kit",
    "p": "mixed materials",
    "r": "object",
    "t": "manuscript",
}

# (tag, label, subfield codes or None for all but control subfields)
TEXT_FIELDS = [
    ("245", "Title", "abnpfgks"),
    ("130", "Uniform title", None),
    ("240", "Uniform title", None),
    ("246", "Variant title", "abnp"),
    ("100", "Author", None),
    ("110", "Corporate author", None),
    ("111", "Meeting", None),
    ("700", "Other contributor", None),
    ("710", "Other contributor", None),
    ("711", "Meeting", None),
    ("250", "Edition", None),
    ("260", "Published", "abcefg"),
    ("264", "Published", "abc"),
    ("300", "Physical description", None),
    ("310", "Frequency", None),
    ("362", "Dates of publication", None),
    ("490", "Series", "av"),
    ("830", "Series", "av"),
    ("800", "Series", None),
    ("500", "Note", "a"),
    ("505", "Contents", None),
    ("511", "Performers", None),
    ("518", "Date/place of event", None),
    ("520", "Summary", "ab"),
    ("545", "Biographical note", "a"),
]
SUBJECT_TAGS = ("600", "610", "611", "630", "648", "650", "651", "653", "655")
SKIP_CODES = {"0", "1", "2", "3", "4", "5", "6", "8", "9"}


class MarcEncodingError(RefdeskError):
    pass


# ---- reading raw records ------------------------------------------------------------------------

MAX_RECORD_BYTES = 99_999  # the leader's five-digit record length
SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"WARC/", "a WARC file"),
)


def not_marc_reason(head: bytes) -> str | None:
    """Why a file is not binary MARC at all (None if it may be): every record starts with a leader whose
    first five bytes are the record length in ASCII digits."""
    start = head.lstrip(b"\r\n \x00\xef\xbb\xbf")[:5]
    if len(start) == 5 and start.isdigit():
        return None
    kind = next((name for magic, name in SIGNATURES if head.startswith(magic)), "")
    return "not a MARC file: " + (
        f"it is {kind}" if kind else "it does not start with a MARC leader (a five-digit record length)"
    )


def iter_raw(fh: IO[bytes], path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(position, byte offset, raw bytes) for each record, split on the record terminator."""
    buffer = b""
    offset = 0
    position = 0
    while True:
        block = fh.read(1 << 16)
        if not block:
            break
        buffer += block
        while True:
            end = buffer.find(RECORD_END)
            if end < 0:
                break
            raw, buffer = buffer[: end + 1], buffer[end + 1 :]
            position += 1
            yield position, offset, raw
            offset += len(raw)
        if len(buffer) > 2 * MAX_RECORD_BYTES:
            # What is left holds no terminator, and no MARC record is this long: what follows is not MARC
            # (and would otherwise be held whole, and copied again with every block).
            raise ReaderError(
                path,
                f"no record terminator in the {len(buffer):,} bytes after byte {offset}: not MARC from here on",
                record=f"record {position + 1} at byte {offset}",
            )
    rest = buffer.strip(b"\r\n \x00")
    if rest:
        position += 1
        yield position, offset, rest  # no terminator: the parser will call it truncated


def _looks_cp1251(raw: bytes) -> bool:
    """Runs of 3+ high bytes are Cyrillic words in Windows-1251; MARC-8 diacritics never stack so deep."""
    return re.search(rb"[\xc0-\xff]{3,}", raw) is not None


def decode_record(raw: bytes) -> tuple[pymarc.Record, str]:
    """A pymarc Record and the encoding actually used."""
    if len(raw) < 25 or not raw[:5].isdigit():
        raise MarcEncodingError("bad leader (record length is not 5 digits)")
    if not raw.endswith(RECORD_END):
        raise MarcEncodingError(f"truncated record ({len(raw)} bytes, no record terminator)")
    leader_utf8 = raw[9:10] == b"a"
    has_high = re.search(rb"[\x80-\xff]", raw) is not None
    try:
        raw.decode("utf-8")
        valid_utf8 = True
    except UnicodeDecodeError:
        valid_utf8 = False
    if not has_high:
        return pymarc.Record(data=raw, to_unicode=True, force_utf8=True, hide_utf8_warnings=True), "ascii"
    if valid_utf8:
        return pymarc.Record(data=raw, to_unicode=True, force_utf8=True, hide_utf8_warnings=True), "utf-8"
    if _looks_cp1251(raw):
        return pymarc.Record(data=raw, to_unicode=True, file_encoding="cp1251"), "cp1251"
    if leader_utf8:
        # Declared UTF-8 but broken bytes: keep what decodes, mark the rest.
        return (
            pymarc.Record(data=raw, to_unicode=True, force_utf8=True, hide_utf8_warnings=True, utf8_handling="replace"),
            "utf-8 (invalid bytes replaced)",
        )
    return pymarc.Record(
        data=raw, to_unicode=True, force_utf8=False, hide_utf8_warnings=True, utf8_handling="replace"
    ), "marc-8"


def iter_xml_records(path: Path) -> Iterator[tuple[int, pymarc.Record | Exception]]:
    """MARCXML records (collection, single record, OAI-PMH wrapped; with or without namespace)."""
    from lxml import etree

    position = 0
    try:
        context = etree.iterparse(
            str(path),
            events=("end",),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
            recover=False,
        )
        for _, el in context:
            if etree.QName(el).localname != "record" or not _is_marc_record(el):
                continue
            position += 1
            try:
                yield position, _xml_to_record(el)
            except MARC_RECORD_ERRORS as exc:  # one bad record does not stop the file
                yield position, exc
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise ReaderError(
            path, f"not well-formed XML at line {exc.lineno}: {exc.msg}", record=f"after record {position}"
        ) from exc


def _is_marc_record(el) -> bool:
    from lxml import etree

    ns = etree.QName(el).namespace
    if ns == MARCXML_NS:
        return True
    return ns is None and any(
        isinstance(c.tag, str) and etree.QName(c).localname in ("leader", "datafield", "controlfield") for c in el
    )


def _xml_to_record(el) -> pymarc.Record:
    from lxml import etree

    record = pymarc.Record()
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = etree.QName(child).localname
        if name == "leader":
            record.leader = pymarc.Leader((child.text or "").ljust(24)[:24])
        elif name == "controlfield":
            record.add_field(pymarc.Field(tag=child.get("tag", ""), data=child.text or ""))
        elif name == "datafield":
            tag = child.get("tag", "")
            if not re.fullmatch(r"[0-9A-Za-z]{3}", tag):
                raise ValueError(f"bad tag {tag!r}")
            subfields = [
                pymarc.Subfield(code=s.get("code", " "), value=s.text or "")
                for s in child
                if isinstance(s.tag, str) and etree.QName(s).localname == "subfield"
            ]
            record.add_field(
                pymarc.Field(
                    tag=tag,
                    indicators=pymarc.Indicators(child.get("ind1", " ")[:1] or " ", child.get("ind2", " ")[:1] or " "),
                    subfields=subfields,
                )
            )
    return record


# ---- record -> text + provenance ----------------------------------------------------------------


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().rstrip(" /:;,=").strip()


def _field_text(field: pymarc.Field, codes: str | None) -> str:
    parts = [sf.value for sf in field.subfields if (sf.code in codes if codes else sf.code not in SKIP_CODES)]
    return _clean(" ".join(parts))


def control_number(record: pymarc.Record, raw_hash: str) -> str:
    f001 = record.get("001")
    if f001 is not None and f001.data and f001.data.strip():
        return f001.data.strip()
    for f in record.get_fields("035"):
        if f.get("a"):
            return _clean(f.get("a") or "")
    return "h" + raw_hash[:16]  # stable: the same record bytes give the same id


def record_format(leader: str) -> str:
    kind, level = leader[6:7], leader[7:8]
    if kind == "a" and level in ("b", "i", "s"):
        return "serial"
    return FORMATS.get(kind, "unknown")


def publication_year(record: pymarc.Record) -> int | None:
    f008 = record.get("008")
    if f008 is not None and f008.data and re.fullmatch(r"\d{4}", f008.data[7:11] or ""):
        year = int(f008.data[7:11])
        if 1000 <= year <= 2100:
            return year
    for tag in ("264", "260"):
        for f in record.get_fields(tag):
            match = re.search(r"\b(1[0-9]{3}|20[0-9]{2})\b", " ".join(f.get_subfields("c")))
            if match:
                return int(match.group(1))
    return None


def language_names(record: pymarc.Record) -> list[str]:
    import pycountry

    codes: list[str] = []
    f008 = record.get("008")
    if f008 is not None and f008.data and len(f008.data) >= 38:
        codes.append(f008.data[35:38])
    for f in record.get_fields("041"):
        for value in f.get_subfields("a", "d"):
            codes.extend(value[i : i + 3] for i in range(0, len(value) - 2, 3))  # "engfre" packs codes
    names: list[str] = []
    for code in codes:
        code = code.strip().lower()
        if not re.fullmatch(r"[a-z]{3}", code) or code in ("und", "zxx", "mul"):
            continue
        lang = pycountry.languages.get(bibliographic=code) or pycountry.languages.get(alpha_3=code)
        name = lang.name if lang else code
        if name not in names:
            names.append(name)
    return names


def call_numbers(record: pymarc.Record) -> list[str]:
    out: list[str] = []
    for tag, codes in (("050", "ab"), ("090", "ab"), ("099", "a"), ("082", "a"), ("852", "hij")):
        for f in record.get_fields(tag):
            value = _clean(" ".join(f.get_subfields(*codes)))
            if value and value not in out:
                out.append(value)
    return out


def record_fields(record: pymarc.Record, fmt: str, year: int | None, languages: list[str]) -> list[RecordField]:
    """The record's labelled fields, from its own tags, in display order."""
    out: list[RecordField] = []
    for tag, label, codes in TEXT_FIELDS:
        for f in record.get_fields(tag):
            value = _field_text(f, codes)
            if value:
                out.append((label, value))
    for f in record.get_fields("880"):  # original-script versions of the fields above
        value = _field_text(f, None)
        linked = (f.get("6") or "")[:3]
        label = {tag: label for tag, label, _ in TEXT_FIELDS}.get(linked, "Original script")
        if value:
            out.append((f"{label} (original script)", value))
    for tag in SUBJECT_TAGS:
        for f in record.get_fields(tag):
            parts = [_clean(sf.value) for sf in f.subfields if sf.code not in SKIP_CODES and _clean(sf.value)]
            if parts:
                out.append(("Genre" if tag == "655" else "Subject", " -- ".join(parts)))
    for f in record.get_fields("020"):
        for v in f.get_subfields("a", "z"):
            out.append(("ISBN", _clean(v)))
    for f in record.get_fields("022"):
        for v in f.get_subfields("a"):
            out.append(("ISSN", _clean(v)))
    for number in call_numbers(record):
        out.append(("Call number", number))
    for f in record.get_fields("856"):
        for url in f.get_subfields("u"):
            out.append(("Online", url.strip()))
    out.append(("Format", fmt))
    if year:
        out.append(("Year", str(year)))
    if languages:
        out.append(("Language", ", ".join(languages)))
    return [(label, value) for label, value in out if value]


# The lexical index's fields, by MARC tag (cf. VuFind's marc.properties: title_full, author, topic, isbn …).
SEARCH_TAGS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "title": (("245", "abnp"), ("246", "abnp"), ("130", None), ("240", None), ("740", "a")),
    "names": (("100", "abcdq"), ("110", "ab"), ("111", "acd"), ("700", "abcdq"), ("710", "ab"), ("711", "acd")),
    "subjects": tuple((tag, None) for tag in SUBJECT_TAGS),
    "identifiers": (("020", "az"), ("022", "a"), ("010", "a"), ("035", "a")),
}


def search_fields(record: pymarc.Record, call: list[str]) -> dict[str, str]:
    """Title, names, subjects and identifiers (ISBN, ISSN, LCCN, OCLC and other 035s, call numbers) from the
    record's own tags, 880 original-script titles and names included."""
    out: dict[str, list[str]] = {name: [] for name in SEARCH_TAGS}
    for name, tags in SEARCH_TAGS.items():
        for tag, codes in tags:
            for f in record.get_fields(tag):
                values = (
                    f.get_subfields(*codes) if codes else [sf.value for sf in f.subfields if sf.code not in SKIP_CODES]
                )
                if name == "identifiers":
                    # "0306406152 (pbk.)", "(OCoLC)12345": the identifier is the first word, prefix dropped
                    out[name] += [re.sub(r"^\([^)]*\)", "", v.split()[0]) for v in values if v.split()]
                else:
                    value = _clean(" ".join(v for v in values if v))
                    if value:
                        out[name].append(value)
    for f in record.get_fields("880"):
        linked = (f.get("6") or "")[:3]
        for name, tags in SEARCH_TAGS.items():
            if name != "identifiers" and linked in {t for t, _ in tags}:
                out[name].append(_field_text(f, None))
    out["identifiers"] += call
    return {name: "\n".join(dict.fromkeys(v for v in values if v)) for name, values in out.items()}


def to_source_record(record: pymarc.Record, raw: bytes, path: Path, link_template: str) -> SourceRecord:
    raw_hash = hashlib.sha256(raw).hexdigest()
    record_id = control_number(record, raw_hash)
    leader = str(record.leader)
    fmt = record_format(leader)
    year = publication_year(record)
    languages = language_names(record)
    title_field = record.get("245")
    title = _field_text(title_field, "abnp") if title_field is not None else ""
    fields = record_fields(record, fmt, year, languages)
    numbers = call_numbers(record)
    locator = f"{title or 'Untitled'}" + (f" — call number {numbers[0]}" if numbers else "")
    urls = [u.strip() for f in record.get_fields("856") for u in f.get_subfields("u")]
    if link_template:
        link = link_template.format(id=record_id, record_id=record_id)
    elif urls:
        link = urls[0]
    else:
        link = f"{path.resolve().as_uri()}#{record_id}"
    filters: Filters = {"format": fmt, "language": languages[0] if languages else ""}
    if year:
        filters["year"] = year
    return SourceRecord(
        provenance=Provenance(
            source_type="marc",
            record_id=record_id,
            title=title or "Untitled",
            locator=locator,
            call_number=numbers[0] if numbers else "",
            link=link,
            date=str(year or ""),
            source_file=str(path.resolve()),
        ),
        text=fielded_text(fields) or title,
        filters=filters,
        search=search_fields(record, numbers),
        fields=fields,
    )


def iter_records(path: str | Path, link_template: str = "") -> Iterator[SourceRecord | SkippedRecord]:
    path = Path(path)
    with open_binary(path) as fh:
        head = fh.read(64)
        fh.seek(0)
        if head.lstrip().startswith(b"<"):
            for position, item in iter_xml_records(path):
                if isinstance(item, Exception):
                    yield SkippedRecord(
                        path=str(path), record=f"record {position}", reason=f"bad MARCXML record: {item}"
                    )
                    continue
                yield to_source_record(item, pymarc.record_to_xml(item), path, link_template)
            return
        if not head:
            raise ReaderError(path, "empty file")
        reason = not_marc_reason(head)
        if reason:
            raise ReaderError(path, reason)
        for position, offset, raw in iter_raw(fh, path):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # pymarc warns per odd subfield code; we report per record
                    record, _encoding = decode_record(raw)
                if record.leader is None or not str(record.leader).strip():
                    raise MarcEncodingError("no leader")
                yield to_source_record(record, raw, path, link_template)
            except UnicodeDecodeError:
                yield SkippedRecord(
                    path=str(path),
                    record=f"record {position} at byte {offset}",
                    reason="unreadable MARC record: corrupt leader or directory (non-ASCII bytes)",
                )
            except MARC_RECORD_ERRORS as exc:  # every bad record is reported, never fatal
                reason = str(exc) or type(exc).__name__
                yield SkippedRecord(
                    path=str(path),
                    record=f"record {position} at byte {offset}",
                    reason=f"unreadable MARC record: {reason}",
                )

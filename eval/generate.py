"""Question sets generated from the records themselves, read independently of refdesk's readers (pymarc, lxml
and warcio directly), in the eval JSONL format.

Types (tag "type:<name>"): known-item ("Do you have <title>?", paraphrases, a title inside a long sentence,
typos), author-of ("Who wrote <title>?"), by-author ("Which books by <name> do you hold?"), identifier (ISBN
in another hyphenation, ISSN, call number), subject, finding-aid ("Where is <component> in the <collection>?"),
web archive ("What did <page title> say, as archived in <year>?"), date-conditioned ("editions of <title>
before <year>"), and negative (made-up titles: no record answers them).

Splits: every question belongs to the record it asks about, and each record falls into dev or held-out by a
hash of (seed, record). Rules are tuned on dev only; the held-out split is run, never read for failures
(README: Evaluating). `refdesk eval generate DATA_DIR --seed N --out DIR` writes dev.jsonl and heldout.jsonl."""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARC_SUFFIXES = (".mrc", ".marc", ".dat")
KNOWN_ITEM_TEMPLATES = (
    "Do you have {title}?",
    "Is {title} in your catalogue?",
    "I'm looking for the book {title}",
    "Does the library hold a copy of {title}?",
    "I need the ISBN of {title} for an interlibrary loan form",
    "Can I borrow {title} from you?",
    "Have you got {title} by {surname}?",
)
AUTHOR_OF_TEMPLATES = ("Who wrote {title}?", "Who is the author of {title}?", "By whom is {title}?")
BY_AUTHOR_TEMPLATES = ("Which books by {name} do you hold?", "Do you have anything by {name}?", "Works of {name}")
ISBN_TEMPLATES = ("Which book has ISBN {isbn}?", "Do you have ISBN {isbn}?", "Look up {isbn} for me")
ISSN_TEMPLATES = ("Which journal has ISSN {issn}?", "Do you hold ISSN {issn}?")
CALL_TEMPLATES = ("What is on the shelf at call number {call}?", "Which book has call number {call}?")
SUBJECT_TEMPLATES = ("Do you have anything on {subject}?", "I'm researching {subject}: what do you have?")
EAD_TEMPLATES = (
    "Where is {title} in the {collection}?",
    "Which box holds {title} in the {collection}?",
    "I want to see {title} from the {collection}",
)
WARC_TEMPLATES = (
    "What did the page {title} say, as archived in {year}?",
    "Show me the archived web page {title} from {year}",
)
DATE_TEMPLATES = (
    "Which editions of {title} from before {year} do you have?",
    "Do you have an edition of {title} published before {year}?",
)
NEGATIVE_TEMPLATES = ("Do you have {title}?", "Is {title} in your catalogue?")


@dataclass
class Question:
    key: str  # the record (or group) it is about: decides the split
    kind: str
    question: str
    gold: list[dict]
    source_type: str
    answerable: bool = True
    tags: list[str] = field(default_factory=list)


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value or "").strip().rstrip(" /:;,.=").strip()


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


# ---- MARC, read with pymarc directly ----------------------------------------------------------------------


@dataclass
class Book:
    record_id: str
    title: str
    author: str
    isbns: list[str]
    issns: list[str]
    calls: list[str]
    subjects: list[str]
    year: int | None
    publisher: str = ""
    is_book: bool = False  # leader 06 "a" (language material), 07 "m" (monograph)


def _marc_records(path: Path) -> Iterator:
    import pymarc

    if path.suffix.lower() == ".xml":
        try:
            yield from pymarc.parse_xml_to_array(str(path))
        except Exception:  # noqa: BLE001 - a file pymarc cannot read gives no questions; refdesk reports it at ingest
            return
        return
    with path.open("rb") as fh:
        reader = pymarc.MARCReader(fh, to_unicode=True, force_utf8=False, permissive=True)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except Exception:  # noqa: BLE001 - pymarc raises many kinds on broken records; skip the record
                continue
            if record is not None:
                yield record


def marc_books(root: Path) -> list[Book]:
    books = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (*MARC_SUFFIXES, ".xml") or not path.is_file():
            continue
        if (
            path.suffix.lower() == ".xml"
            and b"MARC21" not in path.read_bytes()[:4000]
            and b"<record" not in path.read_bytes()[:4000]
        ):
            continue
        for record in _marc_records(path):
            f001 = record.get("001")
            record_id = f001.data.strip() if f001 is not None and f001.data.strip() else ""
            if not record_id:
                f035 = record.get("035")
                record_id = _clean(f035.get("a") or "") if f035 is not None else ""
            f245 = record.get("245")
            if not record_id or f245 is None:
                continue
            title = _clean(" ".join(f245.get_subfields("a", "b")))
            f100 = record.get("100")
            author = _clean(f100.get("a") or "") if f100 is not None else ""
            isbns = [v.split()[0] for f in record.get_fields("020") for v in f.get_subfields("a") if v.split()]
            issns = [v.split()[0] for f in record.get_fields("022") for v in f.get_subfields("a") if v.split()]
            calls = [_clean(" ".join(f.get_subfields("a", "b"))) for f in record.get_fields("050", "090")]
            subjects = [_clean(f.get("a") or "") for f in record.get_fields("650", "651")]
            f008 = record.get("008")
            year = None
            if f008 is not None and re.fullmatch(r"\d{4}", f008.data[7:11] or ""):
                year = int(f008.data[7:11])
            f26x = record.get("264") or record.get("260")
            publisher = _clean(f26x.get("b") or "") if f26x is not None else ""
            leader = str(record.leader)
            books.append(
                Book(
                    record_id,
                    title,
                    author,
                    isbns,
                    issns,
                    [c for c in calls if c],
                    [s for s in subjects if s],
                    year,
                    publisher,
                    leader[6:8] == "am",
                )
            )
    return books


def marc_questions(books: list[Book], rng: random.Random) -> list[Question]:
    out: list[Question] = []
    by_title: dict[str, list[Book]] = defaultdict(list)
    by_author: dict[str, list[Book]] = defaultdict(list)
    by_subject: dict[str, list[Book]] = defaultdict(list)
    for b in books:
        by_title[b.title.lower()].append(b)
        if b.author:
            by_author[b.author].append(b)
        for s in b.subjects:
            by_subject[s].append(b)

    def gold(group: list[Book]) -> list[dict]:
        return [{"source_type": "marc", "record_id": b.record_id} for b in group]

    for b in books:
        if len(b.title) < 4:
            continue
        same = by_title[b.title.lower()]  # every edition of the title answers a known-item question
        surname = b.author.split(",")[0] if b.author else ""
        templates = [t for t in KNOWN_ITEM_TEMPLATES if surname or "{surname}" not in t]
        q = rng.choice(templates).format(title=b.title, surname=surname)
        out.append(Question(b.record_id, "known-item", q, gold(same), "marc"))
        if len(b.title) > 12 and rng.random() < 0.3:
            out.append(Question(b.record_id, "known-item-typo", _typo(q, rng), gold(same), "marc"))
        if b.author and rng.random() < 0.5:
            q = rng.choice(AUTHOR_OF_TEMPLATES).format(title=b.title)
            out.append(Question(b.record_id, "author-of", q, gold(same), "marc"))
        if b.isbns and rng.random() < 0.6:
            isbn = rng.choice(b.isbns)
            if len(isbn) == 10 and rng.random() < 0.5:  # another hyphenation than the record's
                isbn = f"{isbn[0]}-{isbn[1:4]}-{isbn[4:9]}-{isbn[9]}"
            holders = [x for x in books if any(re.sub(r"\W", "", i) == re.sub(r"\W", "", isbn) for i in x.isbns)]
            out.append(
                Question(
                    b.record_id, "identifier-isbn", rng.choice(ISBN_TEMPLATES).format(isbn=isbn), gold(holders), "marc"
                )
            )
        if b.issns:
            out.append(
                Question(
                    b.record_id,
                    "identifier-issn",
                    rng.choice(ISSN_TEMPLATES).format(issn=b.issns[0]),
                    gold([b]),
                    "marc",
                )
            )
        if b.calls and rng.random() < 0.5:
            holders = [x for x in books if b.calls[0] in x.calls]
            out.append(
                Question(
                    b.record_id,
                    "identifier-call",
                    rng.choice(CALL_TEMPLATES).format(call=b.calls[0]),
                    gold(holders),
                    "marc",
                )
            )
    for name, group in sorted(by_author.items()):
        if len(group) >= 2 and rng.random() < 0.5:
            out.append(
                Question(
                    "author:" + name,
                    "by-author",
                    rng.choice(BY_AUTHOR_TEMPLATES).format(name=name),
                    gold(group),
                    "marc",
                )
            )
    for subject, group in sorted(by_subject.items()):
        if 2 <= len(group) <= 40 and rng.random() < 0.3:
            out.append(
                Question(
                    "subject:" + subject,
                    "subject",
                    rng.choice(SUBJECT_TEMPLATES).format(subject=subject),
                    gold(group),
                    "marc",
                )
            )
    for title, group in sorted(by_title.items()):
        years = sorted({b.year for b in group if b.year})
        if len(years) >= 3:
            cut = years[len(years) // 2]
            before = [b for b in group if b.year and b.year < cut]
            q = rng.choice(DATE_TEMPLATES).format(title=group[0].title, year=cut)
            out.append(Question("title:" + title, "date-conditioned", q, gold(before), "marc"))
    words = [w for b in books for w in b.title.split() if len(w) > 4 and w.isalpha()]
    titles = {b.title.lower() for b in books}
    for i in range(max(10, len(books) // 20)):
        made_up = " ".join(rng.sample(words, 3)).capitalize() if len(words) >= 3 else f"Invented title {i}"
        if made_up.lower() not in titles:
            q = rng.choice(NEGATIVE_TEMPLATES).format(title=made_up)
            out.append(Question(f"negative:{i}", "negative", q, [], "marc", answerable=False))
    return out


# ---- EAD, read with lxml directly -------------------------------------------------------------------------


def _local(el) -> str:
    from lxml import etree

    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el) -> str:
    return _clean(" ".join(el.itertext())) if el is not None else ""


def ead_finding_aids(root: Path) -> Iterator[tuple[Path, Any, Any, str]]:
    """(path, archdesc, its did, the collection's title) of every well-formed EAD file under root."""
    from lxml import etree

    for path in sorted(root.rglob("*.xml")):
        try:
            tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
        except etree.XMLSyntaxError:
            continue
        archdesc = next((el for el in tree.iter() if _local(el) == "archdesc"), None)
        did = next((c for c in archdesc if _local(c) == "did"), None) if archdesc is not None else None
        if did is None:
            continue
        collection = _text(next((c for c in did if _local(c) == "unittitle"), None))
        if collection:
            yield path, archdesc, did, collection


def ead_questions(root: Path, rng: random.Random, per_collection: int = 25) -> list[Question]:
    out: list[Question] = []
    local, text = _local, _text
    for path, archdesc, _did, collection in ead_finding_aids(root):
        components = []
        for el in archdesc.iter():
            if not re.fullmatch(r"c(0[1-9]|1[0-2])?", local(el)) or not el.get("id"):
                continue
            cdid = next((c for c in el if local(c) == "did"), None)
            if cdid is None:
                continue
            title = text(next((c for c in cdid if local(c) == "unittitle"), None))
            containers = [c for c in cdid if local(c) == "container"]
            if title and containers and len(title) >= 3:
                components.append((el.get("id"), title))
        counts: dict[str, int] = defaultdict(int)
        for _, title in components:
            counts[title.lower()] += 1
        unique = [(cid, t) for cid, t in components if counts[t.lower()] == 1]
        for cid, title in rng.sample(unique, min(per_collection, len(unique))):
            q = rng.choice(EAD_TEMPLATES).format(title=title, collection=collection)
            out.append(
                Question(f"ead:{path.name}:{cid}", "finding-aid", q, [{"source_type": "ead", "record_id": cid}], "ead")
            )
    return out


# ---- WARC, read with warcio directly ----------------------------------------------------------------------


def warc_questions(root: Path, rng: random.Random) -> list[Question]:
    from lxml import html as lxml_html
    from warcio.archiveiterator import ArchiveIterator

    pages: dict[str, dict] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not re.search(r"\.(w?arc)(\.gz)?$", path.name):
            continue
        try:
            with path.open("rb") as fh:
                iterator = ArchiveIterator(fh, arc2warc=True)
                for record in iterator:
                    if record.rec_type != "response" or not record.http_headers:
                        continue
                    if record.http_headers.get_statuscode() != "200":
                        continue
                    if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                        continue
                    uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                    date = record.rec_headers.get_header("WARC-Date") or ""
                    # ARC records have no id: refdesk names them by file and offset (warcio's are made up per read)
                    if path.name.lower().endswith((".arc", ".arc.gz")):
                        rid = f"{path.name}@{iterator.offset}"
                    else:
                        rid = (record.rec_headers.get_header("WARC-Record-ID") or "").strip("<>")
                    body = record.content_stream().read(2_000_000)
                    try:
                        title = _clean(lxml_html.fromstring(body).findtext(".//title") or "")
                    except (ValueError, lxml_html.etree.LxmlError):
                        title = ""
                    page = pages.setdefault(uri, {"title": title, "ids": [], "years": set()})
                    page["ids"].append(rid)
                    page["years"].add(date[:4])
                    page["title"] = page["title"] or title
        except Exception:  # noqa: BLE001 - a broken archive gives no questions; refdesk reports it at ingest
            continue
    out: list[Question] = []
    titles: dict[str, int] = defaultdict(int)
    for page in pages.values():
        titles[page["title"].lower()] += 1
    for uri, page in sorted(pages.items()):
        if len(page["title"]) < 8 or titles[page["title"].lower()] > 1:
            continue  # an untitled page, or a title many pages share, names no page
        year = sorted(page["years"])[0]
        q = rng.choice(WARC_TEMPLATES).format(title=page["title"], year=year)
        gold = [{"source_type": "warc", "record_id": rid} for rid in page["ids"]]
        out.append(Question("warc:" + uri, "web-archive", q, gold, "warc"))
    return out


# ---- answer sets: key facts, conditions not met, follow-ups, collections ----------------------------------
# Written beside the retrieval sets from their own random stream, so the retrieval sets stay as they were.

PUBLISHER_TEMPLATES = ("Who published {title}?", "Which publisher issued {title}?")
HELD_YEAR_TEMPLATES = ("Do you have a {year} edition of {title}?", "Is there an edition of {title} from {year}?")
FORMAT_NEGATIVE_TEMPLATES = ("Do you have {title} as an audiobook?", "Can I borrow {title} on DVD?")
PART_NEGATIVE_TEMPLATES = ("Do you have the sequel to {title}?", "What is the ISBN of volume 7 of {title}?")
FOLLOW_UP_OPENERS = ("Do you have {title}?", "I'm looking for {title}")
FOLLOW_UPS = (("Who wrote it?", "author"), ("Who published it?", "publisher"))
COLLECTION_TEMPLATES = ("What is in the {collection}, and how big is it?", "How big is the {collection} collection?")


@dataclass
class AnswerQuestion:
    key: str
    kind: str
    question: str
    gold: list[dict]
    source_type: str
    key_facts: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    expect: str = ""


def _first_words(value: str, n: int = 2) -> str:
    """The first words of a field as written (pymarc keeps decomposed diacritics: split on spaces only)."""
    return " ".join(w.strip(".,:;[]()") for w in unicodedata.normalize("NFC", value).split()[:n]).strip()


def _garbled(text: str) -> bool:
    """A title pymarc could not decode (MARC-8 read as something else): accents that compose with nothing."""
    composed = unicodedata.normalize("NFC", text)
    return sum(unicodedata.category(c) == "Mn" for c in composed) > len(composed) * 0.05


def _prefix(title: str, n: int = 3) -> str:
    return " ".join(re.findall(r"\w+", title.lower())[:n])


def marc_answer_questions(books: list[Book], rng: random.Random) -> list[AnswerQuestion]:
    out: list[AnswerQuestion] = []
    by_title: dict[str, list[Book]] = defaultdict(list)
    for b in books:
        by_title[b.title.lower()].append(b)
    titles = set(by_title)
    # Records whose titles begin alike (other editions, "Pride & prejudice : a novel"): a condition "not held"
    # must not be held by any of them either.
    by_prefix: dict[str, list[Book]] = defaultdict(list)
    for b in books:
        by_prefix[_prefix(b.title)].append(b)
    for b in books:
        if len(b.title) < 8 or _garbled(b.title):
            continue
        same = by_title[b.title.lower()]
        alike = by_prefix[_prefix(b.title)]
        gold = [{"source_type": "marc", "record_id": x.record_id} for x in same]
        surnames = {x.author.split(",")[0].strip() for x in same}
        surname = b.author.split(",")[0].strip() if b.author and len(surnames) == 1 else ""
        publishers = {x.publisher for x in same}
        years = {x.year for x in alike}
        if surname and rng.random() < 0.6:
            q = rng.choice(AUTHOR_OF_TEMPLATES).format(title=b.title)
            out.append(AnswerQuestion(b.record_id, "fact-author", q, gold, "marc", [surname]))
        if b.publisher and len(publishers) == 1 and _first_words(b.publisher) and rng.random() < 0.6:
            q = rng.choice(PUBLISHER_TEMPLATES).format(title=b.title)
            out.append(AnswerQuestion(b.record_id, "fact-publisher", q, gold, "marc", [_first_words(b.publisher)]))
        if b.year and None not in years and rng.random() < 0.6:
            if rng.random() < 0.5:
                q = rng.choice(HELD_YEAR_TEMPLATES).format(title=b.title, year=b.year)
                held = [{"source_type": "marc", "record_id": x.record_id} for x in same if x.year == b.year]
                out.append(AnswerQuestion(b.record_id, "condition-year-held", q, held, "marc", [str(b.year)]))
            else:
                # A year no edition of this title has: "not a 1950 edition", and the editions held.
                wrong = rng.choice([y for y in range(1900, 2021) if all(abs(y - int(x or 0)) > 1 for x in years)])
                q = rng.choice(HELD_YEAR_TEMPLATES).format(title=b.title, year=wrong)
                out.append(AnswerQuestion(b.record_id, "condition-year-not-held", q, gold, "marc", expect="not_held"))
        if b.is_book and all(x.is_book for x in alike) and rng.random() < 0.3:
            q = rng.choice(FORMAT_NEGATIVE_TEMPLATES).format(title=b.title)
            out.append(AnswerQuestion(b.record_id, "condition-format-not-held", q, gold, "marc", expect="not_held"))
        if rng.random() < 0.15 and not any(t.startswith(b.title.lower()) and t != b.title.lower() for t in titles):
            q = rng.choice(PART_NEGATIVE_TEMPLATES).format(title=b.title)
            out.append(AnswerQuestion(b.record_id, "made-up-part", q, gold, "marc", expect="not_held"))
        if (surname or b.publisher) and rng.random() < 0.5:
            ask, field_name = rng.choice([f for f in FOLLOW_UPS if (surname if f[1] == "author" else b.publisher)])
            fact = surname if field_name == "author" else _first_words(b.publisher)
            if fact and (field_name == "author" or len(publishers) == 1):
                opener = rng.choice(FOLLOW_UP_OPENERS).format(title=b.title)
                out.append(AnswerQuestion(b.record_id, "follow-up", ask, gold, "marc", [fact], history=[opener]))
    return out


def ead_collection_questions(root: Path, rng: random.Random) -> list[AnswerQuestion]:
    """'What is in the X, and how big is it?': the collection record's extent is the key fact."""
    out: list[AnswerQuestion] = []
    for path, _archdesc, did, collection in ead_finding_aids(root):
        extents = [_text(e) for e in did.iter() if _local(e) in ("extent", "physdesc")]
        number = next((m.group(0) for e in extents if (m := re.search(r"\d+(?:\.\d+)?", e))), "")
        if len(collection) < 6 or not number:
            continue
        q = rng.choice(COLLECTION_TEMPLATES).format(collection=collection)
        out.append(AnswerQuestion(f"collection:{path.name}", "collection", q, [], "ead", [number]))
    return out


def generate_answers(data: Path, seed: int, out_dir: Path) -> dict:
    """answers-dev.jsonl and answers-heldout.jsonl: split by the same record keys as the retrieval sets."""
    rng = random.Random(f"{seed}-answers")
    questions: list[AnswerQuestion] = []
    if (data / "marc").is_dir():
        questions += marc_answer_questions(marc_books(data / "marc"), rng)
    if (data / "ead").is_dir():
        questions += ead_collection_questions(data / "ead", rng)
    items = []
    for n, q in enumerate(questions, 1):
        item = {
            "id": f"ans-{seed}-{n}",
            "question": q.question,
            "answerable": True,
            "gold": q.gold,
            "key_facts": q.key_facts,
            "tags": [f"type:{q.kind}", f"source:{q.source_type}"],
        }
        if q.history:
            item["history"] = q.history
        if q.expect:
            item["expect"] = q.expect
        items.append((q.key, q.kind, item))
    counts = write_splits(out_dir, "answers-", seed, items)
    return {"questions": len(questions), **{f"answers-{k}": v for k, v in counts.items()}}


# ---- the sets ---------------------------------------------------------------------------------------------


def write_splits(out_dir: Path, prefix: str, seed: int, items: list[tuple[str, str, dict]]) -> dict[str, dict]:
    """Writes OUT/<prefix>dev.jsonl and OUT/<prefix>heldout.jsonl, each item in its record key's split; counts
    per split and kind."""
    counts: dict[str, dict[str, int]] = {"dev": defaultdict(int), "heldout": defaultdict(int)}
    files = {name: (out_dir / f"{prefix}{name}.jsonl").open("w", encoding="utf-8") for name in counts}
    try:
        for key, kind, item in items:
            split = split_of(seed, key)
            counts[split][kind] += 1
            files[split].write(json.dumps(item, ensure_ascii=False) + "\n")
    finally:
        for handle in files.values():
            handle.close()
    return {name: dict(c) for name, c in counts.items()}


def split_of(seed: int, key: str) -> str:
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "heldout"


def generate(data: Path, seed: int, out_dir: Path) -> dict:
    rng = random.Random(seed)
    questions: list[Question] = []
    if (data / "marc").is_dir():
        questions += marc_questions(marc_books(data / "marc"), rng)
    if (data / "ead").is_dir():
        questions += ead_questions(data / "ead", rng)
    if (data / "warc").is_dir():
        questions += warc_questions(data / "warc", rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [
        (
            q.key,
            q.kind,
            {
                "id": f"gen-{seed}-{n}",
                "question": q.question,
                "answerable": q.answerable,
                "gold": q.gold,
                "tags": [f"type:{q.kind}", f"source:{q.source_type}", *q.tags],
            },
        )
        for n, q in enumerate(questions, 1)
    ]
    counts = write_splits(out_dir, "", seed, items)
    return {
        "seed": seed,
        "questions": len(questions),
        **counts,
        "answer_sets": generate_answers(data, seed, out_dir),
    }

"""`refdesk bench refcheck`: the reference checker against references built from real MARC records.

Cases come straight from pymarc fields (245 $a $b, 100 $a, 260/264 $a $b $c), independently of
refdesk's MARC reader: each eligible record rendered as a reference in APA, MLA, Chicago and a loose
"title by author (year)" form (expected: held); the same with the year moved, the author swapped for
another record's author, or one word of the title changed (expected: similar, naming that field); and
invented references mixing real authors with made-up titles (expected: not found).
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from rapidfuzz import fuzz

from assistant.refcheck.catalogue import norm_title, split_title

STYLES = ("apa", "mla", "chicago", "loose")
NEW_WORDS = ["Forgotten", "Hidden", "Modern", "Secret", "Northern", "Silent", "Golden", "Broken", "Early", "Lost"]
INVENTED = [
    "The {a} {n1} of the {n2}: {n3} and {n4} in {p}",
    "{a} {n1}s: A History of {n2} in {p}",
    "Beyond the {n1}: {n2}, {n3} and the {a} {n4}",
    "{n1} and {n2} in {p}, 1850-1950",
]
ADJ = ["Invisible", "Quiet", "Restless", "Fractured", "Luminous", "Unwritten", "Borrowed", "Wandering"]
NOUNS = [
    "Archive",
    "Lantern",
    "Harbour",
    "Ledger",
    "Orchard",
    "Compass",
    "Threshold",
    "Atlas",
    "Chorus",
    "Mirror",
    "Frontier",
    "Tapestry",
    "Meridian",
    "Cartographer",
    "Almanac",
]
PLACES = ["Lower Saxony", "Patagonia", "the Baltic", "Upper Canada", "Moravia", "the Deccan"]


def _clean(value: str | None) -> str:
    return re.sub(r"\s+", " ", (value or "")).strip(" /:;,.=[]")


def marc_books(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """Records with a title, a personal author and a year, read with pymarc: one per title and author,
    and every one (other editions included: a changed year must not land on a real edition)."""
    from ingest.marc import MARC_RECORD_ERRORS, decode_record, iter_raw

    out, seen, every = [], set(), []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() not in (".mrc", ".marc", ".dat"):
                continue
            with file.open("rb") as fh:
                for _offset, _n, raw in iter_raw(fh, file):
                    try:
                        record, _ = decode_record(raw)
                    except MARC_RECORD_ERRORS:
                        continue
                    book = _book(record)
                    if book:
                        every.append(book)
                    if book and (key := (norm_title(book["title"]), book["surname"].lower())) not in seen:
                        seen.add(key)
                        out.append(book)
    return out, every


def _book(record) -> dict | None:
    f245, f100 = record.get("245"), record.get("100")
    if not f245 or not f100 or not f245.get("a") or not f100.get("a"):
        return None
    title = _clean(f245.get("a"))
    if f245.get("b"):
        title = f"{title}: {_clean(f245.get('b'))}"
    name = _clean(f100.get("a"))
    if "," not in name:
        return None
    surname, given = [x.strip() for x in name.split(",", 1)]
    imprint = record.get("264") or record.get("260")
    year = re.search(r"(?<!\d)(1[5-9]\d\d|20[0-2]\d)(?!\d)", (imprint.get("c") or "") if imprint else "")
    if not year or len(title) < 4 or not given or not re.match(r"^[^\W\d_]", surname):
        return None
    return {
        "title": title,
        "surname": surname,
        "given": given.split(",")[0].strip(),
        "year": int(year.group(1)),
        "publisher": _clean(imprint.get("b")) or "n.p.",
        "place": _clean(imprint.get("a")) or "n.p.",
    }


def render(book: dict, style: str) -> str:
    t, s, g, y, pub, place = (
        book["title"],
        book["surname"],
        book["given"],
        book["year"],
        book["publisher"],
        book["place"],
    )
    initials = " ".join(f"{w[0]}." for w in g.replace(".", " ").split() if w[:1].isalpha())
    if style == "apa":
        return f"{s}, {initials} ({y}). {t}. {pub}."
    if style == "mla":
        return f"{s}, {g}. {_title_case(t)}. {pub}, {y}."
    if style == "chicago":
        return f"{s}, {g}. {_title_case(t)}. {place}: {pub}, {y}."
    return f"{t} by {g} {s} ({y})"


def _title_case(title: str) -> str:
    small = {"a", "an", "the", "and", "or", "of", "in", "on", "to", "for", "by", "at", "with"}
    words = title.split()
    return " ".join(w if (i and w.lower() in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def build_cases(
    books: list[dict],
    every: list[dict] | None = None,
    seed: int = 7,
    held: int = 60,
    per_change: int = 30,
    invented: int = 40,
) -> list[dict]:
    rng = random.Random(seed)
    books = books[:]
    rng.shuffle(books)
    by_title: dict[str, list[dict]] = {}
    for b in every or books:
        by_title.setdefault(norm_title(split_title(b["title"])[0]), []).append(b)
    cases: list[dict] = []
    for i, book in enumerate(books[:held]):
        cases.append(
            {
                "kind": "held",
                "style": STYLES[i % 4],
                "text": render(book, STYLES[i % 4]),
                "expect": "held",
                "field": None,
            }
        )
    pool = books[held:] + books[:held]
    year_cases = author_cases = title_cases = 0
    for i, book in enumerate(pool):
        style = STYLES[i % 3]  # the three formal styles
        same = by_title[norm_title(split_title(book["title"])[0])]
        if year_cases < per_change:
            new_year = book["year"] + rng.choice([-1, 1]) * rng.randint(6, 25)
            if all(abs(b["year"] - new_year) > 1 for b in same):
                cases.append(
                    {
                        "kind": "changed year",
                        "style": style,
                        "expect": "similar",
                        "field": "year",
                        "text": render(dict(book, year=new_year), style),
                    }
                )
                year_cases += 1
                continue
        if author_cases < per_change:
            other = rng.choice(books)
            if other["surname"].lower() != book["surname"].lower() and all(
                b["surname"].lower() != other["surname"].lower() for b in same
            ):
                cases.append(
                    {
                        "kind": "swapped author",
                        "style": style,
                        "expect": "similar",
                        "field": "author",
                        "text": render(dict(book, surname=other["surname"], given=other["given"]), style),
                    }
                )
                author_cases += 1
                continue
        if title_cases < per_change:
            main, sub = split_title(book["title"])
            words = main.split()
            content = [j for j, w in enumerate(words) if len(w) > 3 and w.isalpha()]
            if len(words) >= 3 and content:
                j = max(content, key=lambda k: len(words[k]))
                words[j] = rng.choice([w for w in NEW_WORDS if w.lower() != words[j].lower()])
                new_main = " ".join(words)
                if all(fuzz.ratio(norm_title(new_main), norm_title(split_title(b["title"])[0])) < 92 for b in books):
                    cases.append(
                        {
                            "kind": "changed title",
                            "style": style,
                            "expect": "similar",
                            "field": "title",
                            "text": render(dict(book, title=f"{new_main}: {sub}" if sub else new_main), style),
                        }
                    )
                    title_cases += 1
        if min(year_cases, author_cases, title_cases) >= per_change:
            break
    for i in range(invented):
        author = rng.choice(books)
        pattern = rng.choice(INVENTED)
        nouns = rng.sample(NOUNS, 4)
        title = pattern.format(
            a=rng.choice(ADJ), n1=nouns[0], n2=nouns[1], n3=nouns[2], n4=nouns[3], p=rng.choice(PLACES)
        )
        fake = dict(author, title=title, year=rng.randint(1950, 2020), publisher=rng.choice(books)["publisher"])
        cases.append(
            {
                "kind": "invented",
                "style": STYLES[i % 4],
                "expect": "not found",
                "field": None,
                "text": render(fake, STYLES[i % 4]),
            }
        )
    return cases


def bench_refcheck(settings, paths: list[str], seed: int = 7) -> dict:
    from eval.bench import temp_services

    paths_ = [Path(p) for p in paths]
    books, every = marc_books(paths_)
    cases = build_cases(books, every, seed=seed)
    with tempfile.TemporaryDirectory(prefix="refdesk-refcheck-") as tmp:
        services = temp_services(settings, tmp)
        manifest = services.manifest()
        try:
            summary = services.ingestor(manifest, progress=True).ingest([str(p) for p in paths_])
        finally:
            manifest.close()
        checker = services.refcheck
        t0 = time.perf_counter()
        catalogue = checker.catalogue
        build_s = time.perf_counter() - t0
        checker.check_text("Warm, Up. (2000). Warm-up reference. Nowhere.")  # the embedder's first call
        t0 = time.perf_counter()
        outcomes = []
        for case in cases:
            report = checker.check_text(case["text"])
            outcomes.append(report.results[0] if report.results else None)
        check_s = time.perf_counter() - t0
    return score_cases(cases, outcomes) | {
        "paths": [str(p) for p in paths_],
        "seed": seed,
        "records_ingested": summary.records,
        "catalogue_records": len(catalogue.records),
        "eligible_books": len(books),
        "catalogue_build_s": round(build_s, 2),
        "check_s": round(check_s, 2),
        "references_per_s": round(len(cases) / check_s, 1) if check_s else 0.0,
    }


def score_cases(cases: list[dict], outcomes: list) -> dict:
    confusion: dict[str, Counter] = {}
    failures = []
    field_ok = field_total = 0
    for case, result in zip(cases, outcomes, strict=True):
        got = result.verdict if result else "nothing"
        confusion.setdefault(case["kind"], Counter())[got] += 1
        if case["field"]:
            field_total += 1
            fields = [d.field for d in result.differences] if result else []
            if got == "similar" and fields == [case["field"]]:
                field_ok += 1
            else:
                failures.append({"case": case, "got": got, "fields": fields})
        elif got != case["expect"]:
            failures.append(
                {"case": case, "got": got, "fields": [d.field for d in result.differences] if result else []}
            )
    held_cases = confusion.get("held", Counter())
    invented = confusion.get("invented", Counter())
    predicted_not_found = sum(c["not found"] for c in confusion.values())
    return {
        "cases": len(cases),
        "by_kind": {k: sum(v.values()) for k, v in confusion.items()},
        "confusion": {k: dict(v) for k, v in confusion.items()},
        "held_recall": round(held_cases["held"] / sum(held_cases.values()), 4) if held_cases else None,
        "not_found_precision": round(invented["not found"] / predicted_not_found, 4) if predicted_not_found else None,
        "invented_never_held": round(1 - invented["held"] / sum(invented.values()), 4) if invented else None,
        "invented_not_found_recall": round(invented["not found"] / sum(invented.values()), 4) if invented else None,
        "field_difference_accuracy": round(field_ok / field_total, 4) if field_total else None,
        "failures": failures[:40],
    }


def format_refcheck_bench(r: dict) -> str:
    verdicts = ["held", "similar", "not found", "not a reference"]
    lines = [
        f"{r['cases']} references built from {r['eligible_books']} real MARC records "
        f"({r['catalogue_records']} catalogue records in the store)",
        "",
        f"{'expected':16}" + "".join(f"{v:>17}" for v in verdicts),
    ]
    for kind, row in r["confusion"].items():
        lines.append(f"{kind:16}" + "".join(f"{row.get(v, 0):>17}" for v in verdicts))
    lines += [
        "",
        f"held recall                 {r['held_recall']}",
        f"not-found precision         {r['not_found_precision']}  (invented never reported as held: {r['invented_never_held']})",
        f"field-difference accuracy   {r['field_difference_accuracy']}",
        f"speed                       {r['references_per_s']} references/s (catalogue built once in {r['catalogue_build_s']} s)",
    ]
    for f in r["failures"][:15]:
        lines.append(
            f"  miss: {f['case']['kind']} ({f['case']['style']}) -> {f['got']} {f['fields']}: {f['case']['text']}"
        )
    return "\n".join(lines)

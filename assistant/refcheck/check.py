"""Matches parsed references against the catalogue and gives each a verdict: held, similar, not found."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from assistant.refcheck.catalogue import Catalogue, CatalogueRecord, name_words, norm_title, split_title, surname
from assistant.refcheck.parse import NUMBERING, Reference, parse_input

TITLE_SAME = 92  # rapidfuzz ratio (0-100) at or above which two normalised titles are the same title
SUBTITLE_SAME = 80
SIMILAR_TITLE = 80  # close enough to name as "similar" on the title alone
SIMILAR_TITLE_WITH_AUTHOR = 55  # …or with the same author
YEAR_TOLERANCE = 1  # copyright vs printing year, December releases
NOT_FOUND_TEXT = (
    "Nothing in the library's collections matches this reference. That does not prove the work "
    "does not exist elsewhere; a librarian can search other libraries and databases."
)


@dataclass
class Difference:
    field: str  # title, subtitle, author, year, isbn
    reference: str
    record: str


@dataclass
class RefResult:
    reference: Reference
    verdict: str  # held | similar | not found | not a reference
    record: CatalogueRecord | None = None
    differences: list[Difference] = field(default_factory=list)
    title_score: float = 0.0
    publisher_score: float = 0.0  # breaks ties between editions that match equally well
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "line": self.reference.line,
            "reference": self.reference.raw,
            "verdict": self.verdict,
            "parsed": self.reference.as_dict(),
            "message": self.message,
            "record": self.record.as_dict() if self.record else None,
            "differences": [d.__dict__ for d in self.differences],
            "title_score": round(self.title_score, 1),
        }


@dataclass
class RefCheckReport:
    results: list[RefResult]
    notes: list[str]
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {"held": 0, "similar": 0, "not found": 0, "not a reference": 0}
        for r in self.results:
            out[r.verdict] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        checked = len(self.results) - c["not a reference"]
        line = f"{checked} reference{'s' if checked != 1 else ''}: {c['held']} held, {c['similar']} similar, {c['not found']} not found"
        if c["not a reference"]:
            line += f" ({c['not a reference']} line{'s' if c['not a reference'] != 1 else ''} not read as references)"
        return line

    def as_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "counts": self.counts(),
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "results": [r.as_dict() for r in self.results],
        }

    def text(self) -> str:
        """Plain text a librarian can paste into a reply to the patron."""
        lines = [self.summary(), *self.notes, ""]
        for i, r in enumerate(self.results, 1):
            lines.append(f"{i}. {NUMBERING.sub('', r.reference.raw.strip())}")
            lines.append(f"   {r.verdict.upper()}: {r.message}")
            if r.record and r.record.link:
                lines.append(f"   {r.record.link}")
        return "\n".join(lines).rstrip() + "\n"


def describe(record: CatalogueRecord) -> str:
    parts = [record.title]
    if record.authors:
        parts.append(f"by {record.authors[0]}")
    if record.edition:
        parts.append(record.edition)
    if record.publisher or record.year:
        parts.append(", ".join(str(x) for x in (record.publisher, record.year) if x))
    text = "; ".join(parts)
    if record.call_number:
        text += f" — call number {record.call_number}"
    kind = "finding aid" if record.source_type == "ead" else "catalogue record"
    return f"{text} ({kind} {record.record_id})"


class ReferenceChecker:
    def __init__(self, store, embedder=None, max_references: int = 500):
        self.store = store
        self.embedder = embedder
        self.max_references = max_references
        self._catalogue: Catalogue | None = None
        self._catalogue_count = -1

    @property
    def catalogue(self) -> Catalogue:
        """Rebuilt when the store has changed since the last build."""
        count = self.store.count()
        if self._catalogue is None or count != self._catalogue_count:
            self._catalogue = Catalogue.from_store(self.store)
            self._catalogue_count = count
        return self._catalogue

    def check_text(self, text: str) -> RefCheckReport:
        started = time.perf_counter()
        refs, notes = parse_input(text, self.max_references)
        if not refs:
            notes.append("no references found in the input")
        results = [self.check(ref) for ref in refs]
        if self.catalogue.records == {} and refs:
            notes.append("the store holds no catalogue records or finding aids: ingest the catalogue first")
        return RefCheckReport(results, notes, time.perf_counter() - started)

    def check(self, ref: Reference) -> RefResult:
        if ref.problem:
            return RefResult(ref, "not a reference", message=ref.problem)
        catalogue = self.catalogue
        keys: list[str] = []
        for n in ref.isbns:
            keys.extend(catalogue.by_isbn.get(n, ()))
        for n in ref.issns:
            keys.extend(catalogue.by_issn.get(n, ()))
        keys.extend(catalogue.by_title_words(ref.title))
        keys.extend(self._nearest(ref))
        best: RefResult | None = None
        closest_title = 0.0
        for key in dict.fromkeys(keys):
            record = catalogue.records.get(key)
            if record is None:
                continue
            result = self.compare(ref, record)
            closest_title = max(closest_title, result.title_score)
            if best is None or _rank(result) > _rank(best):
                best = result
        if best is None or best.verdict == "not found":
            return RefResult(ref, "not found", message=NOT_FOUND_TEXT, title_score=closest_title)
        return best

    def _nearest(self, ref: Reference) -> list[str]:
        if self.embedder is None:
            return []
        query = " ".join([ref.title, *ref.authors[:2]])
        metas = self.store.nearest(
            self.embedder.get_query_embedding(query), 10, where={"source_type": {"$in": ["marc", "ead"]}}
        )
        return [f"{m.get('source_file', '')}\x1f{m.get('record_id', '')}" for m in metas]

    @staticmethod
    def title_match(ref_titles: list[str], record_title: str) -> tuple[float, bool]:
        """(score 0-100 of the title as the work's identity, subtitle differs).

        ref_titles: the title as parsed, then the same continued by the reference's next segments (a
        title with a period inside is cut by the parser: "Lady Susan. The Watsons & Sanditon"). A
        reference may drop the subtitle or stop early; one that goes on differently does not match.
        When both give a subtitle, the main titles decide and the subtitles are compared apart."""
        nc = norm_title(record_title)
        words_c = nc.split()
        alts = [norm_title(t).split() for t in ref_titles]
        if any(a and _same_words(a, words_c) for a in alts):
            return 100.0, False
        candidates = ref_titles
        prefixes = [i for i, a in enumerate(alts) if a and len(a) < len(words_c) and _same_words(a, words_c[: len(a)])]
        if prefixes:
            i = prefixes[-1]
            rest = words_c[len(alts[i]) :]
            after = alts[i + 1][len(alts[i]) :] if i + 1 < len(alts) else []
            shared = len(set(after) & set(rest)) / max(1, min(len(after), len(rest))) if after else 0.0
            if shared >= 0.5:
                # The reference goes on like the record's title, but differently ("Lady Susan. The Watsons &
                # Silent" for "… The Watsons ; Sanditon"): judge what it says next, not the shared start.
                candidates = [ref_titles[i + 1]]
            elif len(alts[i]) >= 2 and len(" ".join(alts[i])) >= 8:
                return 100.0, False  # the reference stops early (no subtitle) and goes on to the imprint
        best, subtitle_differs = 0.0, False
        rec_main, rec_sub = split_title(record_title)
        for ref_title in candidates:
            ref_main, ref_sub = split_title(ref_title)
            main = fuzz.ratio(norm_title(ref_main), norm_title(rec_main))
            full = fuzz.ratio(norm_title(ref_title), nc)
            if ref_sub and rec_sub:
                # A long shared subtitle must not hide a changed main title.
                score = main if main >= TITLE_SAME else max(main, full - 10)
                sub_r, sub_c = norm_title(ref_sub), norm_title(rec_sub)
                differs = (
                    main >= TITLE_SAME
                    and fuzz.ratio(sub_r, sub_c) < SUBTITLE_SAME
                    and fuzz.ratio(sub_r, sub_c[: len(sub_r)]) < 95
                )
            else:
                score, differs = max(main, full), False
            if score > best:
                best, subtitle_differs = score, differs
        return best, subtitle_differs

    @classmethod
    def compare(cls, ref: Reference, record: CatalogueRecord) -> RefResult:
        best_title, subtitle_differs, rec_title_shown = -1.0, False, record.title
        ref_titles = [ref.title] + [
            f"{ref.title}. {'. '.join(ref.title_continuations[:i])}" for i in range(1, len(ref.title_continuations) + 1)
        ]
        for title in [record.title, *record.alt_titles]:
            score, sub_differs = cls.title_match(ref_titles, title)
            if score > best_title:
                best_title, subtitle_differs, rec_title_shown = score, sub_differs, title
        differences: list[Difference] = []
        if best_title < TITLE_SAME:
            differences.append(Difference("title", ref.title, rec_title_shown))
        elif subtitle_differs:
            differences.append(Difference("subtitle", split_title(ref.title)[1], split_title(rec_title_shown)[1]))
        author_match = None
        if ref.authors:
            # A record that names no author cannot confirm the reference's author.
            ref_words = set().union(*(name_words(a) for a in ref.authors))
            author_match = any(surname(a) and surname(a) <= ref_words for a in record.authors)
            if not author_match:
                differences.append(
                    Difference(
                        "author", "; ".join(ref.authors), "; ".join(record.authors[:3]) or "(no author in the record)"
                    )
                )
        if ref.year:
            if not any(abs(ref.year - y) <= YEAR_TOLERANCE for y in record.years):
                differences.append(Difference("year", str(ref.year), str(record.year or "(no year in the record)")))
        same_id = bool(set(ref.isbns) & record.isbns or set(ref.issns) & record.issns)
        if ref.isbns and record.isbns and not same_id and best_title >= TITLE_SAME:
            differences.append(Difference("isbn", ", ".join(ref.isbns), ", ".join(sorted(record.isbns))))

        if not differences or (
            same_id and best_title >= SIMILAR_TITLE_WITH_AUTHOR and all(d.field == "title" for d in differences)
        ):
            verdict = "held"
            message = f"The library holds this: {describe(record)}."
        elif best_title >= SIMILAR_TITLE or same_id or (author_match and best_title >= SIMILAR_TITLE_WITH_AUTHOR):
            verdict = "similar"
            what = "; ".join(f"{d.field}: reference “{d.reference}”, record “{d.record}”" for d in differences)
            message = (
                f"The library holds something close, but it differs in {what}. Closest record: {describe(record)}."
            )
        else:
            verdict, message = "not found", NOT_FOUND_TEXT
        publisher = (
            fuzz.token_set_ratio(norm_title(ref.publisher), norm_title(record.publisher)) if ref.publisher else 0.0
        )
        return RefResult(
            ref, verdict, record if verdict != "not found" else None, differences, best_title, publisher, message
        )


def _same_words(a: list[str], b: list[str]) -> bool:
    """Word for word the same title, allowing one misspelt word ("Kavalier" / "Cavalier")."""
    if len(a) != len(b):
        return False
    different = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(different) <= 1 and all(fuzz.ratio(x, y) >= 75 for x, y in different)


def _rank(result: RefResult) -> tuple:
    order = {"held": 2, "similar": 1, "not found": 0}[result.verdict]
    return (order, -len(result.differences), result.title_score, result.publisher_score)

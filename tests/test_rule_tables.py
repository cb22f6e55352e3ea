"""A row per rule: question analysis (INTENT_RULES), the evidence rules (EVIDENCE_RULES) and their named
thresholds, and the one tokenizer. Sources are real records of the demo corpus read with refdesk's readers
(no store, no model), turned into Sources the way retrieval does."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answering.evidence import EVIDENCE_RULES, THRESHOLDS, evidence_rule_for, select_evidence
from assistant.answering.questions import INTENT_RULES, analyse
from assistant.answering.retrieval import make_source
from assistant.core import text
from assistant.core.types import SourceRecord, structured_provenance
from ingest.registry import detect_format, get_reader
from tests.conftest import DEMO_CORPUS

# question -> the intents found, in priority order (the first decides routing)
INTENT_CASES = [
    ("What is the ISSN of Nature?", ["issn"]),
    ("isbn for Summerland", ["isbn"]),
    ("What is the call number of Programming Python?", ["call_number"]),
    ("Which box has the A-C photographs of the marching band?", ["container"]),
    ("When was the Internet Archive FAQ page captured?", ["capture", "date", "extent"]),  # "page" reads as extent
    ("Who wrote Summerland?", ["author"]),
    ("Who published Middlemarch?", ["publisher"]),
    ("Which editions of Pride and Prejudice do you have?", ["holding", "edition"]),
    ("Do you have Stolz und Vorurteil?", ["holding"]),
    ("Which editions of Pride and Prejudice from before 1900?", ["edition", "date"]),  # a stated year: date fields
    ("What year did Nature start?", ["date"]),
    ("What is Kavalier and Clay about?", ["subject"]),
    ("How many pages does Kavalier and Clay have?", ["extent"]),
    ("Which songs are included on the Louis Armstrong record?", ["contents"]),
    ("Tell me something nice", []),
]


def test_every_intent_rule_has_a_case_and_priorities_are_unique():
    assert {r.name for r in INTENT_RULES} <= {i for _, found in INTENT_CASES for i in found}
    priorities = [r.priority for r in INTENT_RULES]
    assert len(set(priorities)) == len(priorities)
    assert all(rule.fields for rule in INTENT_RULES)


@pytest.mark.parametrize(("question", "expected"), INTENT_CASES)
def test_intents(question, expected):
    assert list(analyse(question).intents) == expected


@pytest.mark.parametrize(
    ("question", "routed"),
    [
        ("What is the ISSN of Nature?", True),
        ("Which box has the A-C photographs?", True),
        ("When was the FAQ page captured?", True),
        ("Who wrote Summerland?", False),  # the LLM may add a lead
        ("Tell me about jazz", False),
    ],
)
def test_rule_routing_follows_the_first_intent(question, routed):
    assert analyse(question).rule_routed is routed


def test_key_terms_and_names():
    q = analyse("Which box has the A-C photographs of the Stanford marching band?")
    assert q.key_terms[0] == "a-c"  # a hyphenated label is one term, first
    assert {"photographs", "stanford", "marching", "band"} <= set(q.key_terms)
    assert "box" in q.key_terms and "which" not in q.key_terms
    assert q.names == ("a-c", "stanford")


def _sources(filename: str) -> list:
    path = DEMO_CORPUS / filename
    reader = get_reader(detect_format(Path(path)))
    records = [r for r in reader(path) if isinstance(r, SourceRecord)]
    return [
        make_source(n, f"chunk-{n}", r.text, {**r.provenance.metadata(), **r.filters}, 1.0)
        for n, r in enumerate(records, 1)
    ]


@pytest.fixture(scope="module")
def catalogue():
    sources = [s for f in ("chabon.mrc", "nature.marc") for s in _sources(f)]
    return {s.record_id: s.model_copy(update={"n": n}) for n, s in enumerate(sources, 1)}


@pytest.fixture(scope="module")
def finding_aid():
    return _sources("pc0170.xml")


@pytest.fixture(scope="module")
def archived_pages():
    return _sources("archive-org-2008-about.warc.gz")


def test_every_evidence_rule_is_exercised_below_and_priorities_are_unique():
    assert [r.name for r in sorted(EVIDENCE_RULES, key=lambda r: r.priority)] == [
        "capture_date",
        "collection_overview",
        "fields_asked_for",
        "fields_in_question_words",
        "best_sentences",
    ]


def test_fields_asked_for_quotes_the_field_the_intent_names(catalogue):
    rule, found = evidence_rule_for("What is the ISSN of Nature?", catalogue["417826"])
    assert rule == "fields_asked_for" and found == ["Nature — ISSN: 0028-0836"]


def test_fields_in_question_words_when_no_intent_field_exists(catalogue):
    rule, found = evidence_rule_for("Who founded Nature?", catalogue["417826"])
    assert rule == "fields_in_question_words"
    assert "Note: Founded and for many years edited by Sir J. N. Lockyer" in found[0]


def test_a_component_is_quoted_with_its_own_title_and_container(finding_aid):
    component = next(s for s in finding_aid if s.container == "Box 1" and "Title: A-C" in s.text)
    rule, found = evidence_rule_for("Which box has the A-C photographs?", component)
    assert rule == "fields_asked_for"
    assert found == [f"{component.title} — Location: Box 1"]


def test_collection_overview_reads_the_collection_record_not_a_folder(finding_aid):
    collection = next(s for s in finding_aid if s.format == "collection")
    folder = next(s for s in finding_aid if s.format != "collection")
    question = f"What is in the {collection.title} and how big is the collection?"
    rule, found = evidence_rule_for(question, collection)
    assert rule == "collection_overview"
    assert found[0].startswith(f"{collection.title} — Extent: ")  # "how big" asks for the extent first
    assert evidence_rule_for(question, folder)[0] != "collection_overview"


def test_capture_date_comes_from_the_structured_field(archived_pages):
    page = next(s for s in archived_pages if "faq" in s.url)
    assert page.captured.startswith("2008-04-30 ") and page.captured.endswith(" UTC")
    rule, found = evidence_rule_for("When was the Internet Archive FAQ page captured?", page)
    assert rule == "capture_date"
    assert found == [f"{page.title} was captured {page.captured} ({page.url})"]


def test_best_sentences_of_an_archived_page_speak_for_the_capture_day(archived_pages):
    # The page has "Windows: Download …" lines: prose with a colon, not catalogue fields (FIELDED_SOURCE_TYPES).
    page = next(s for s in archived_pages if "faq" in s.url)
    rule, found = evidence_rule_for("How can I listen to FLAC files?", page)
    assert rule == "best_sentences"
    assert found and all(f.startswith(f"As of {page.captured}, ") for f in found)


def test_min_coverage_keeps_near_misses_out(catalogue):
    sources = list(catalogue.values())
    picked = select_evidence("What is the ISSN of Nature?", sources)
    by_n = {s.n: s.record_id for s in sources}
    assert {by_n[e.n] for e in picked} == {"417826"}
    # With the threshold above what any record reaches, nothing is evidence.
    strict = type(THRESHOLDS)(min_coverage=1.01)
    assert select_evidence("What is the ISSN of Nature?", sources, strict) == []


def test_max_fields_bounds_one_quote(catalogue):
    one = type(THRESHOLDS)(max_fields=1)
    _, found = evidence_rule_for("Tell me about Kavalier and Clay", catalogue["11939876"], one)
    assert found and "; " not in found[0]  # one field, where three are allowed by default


def test_old_stores_still_give_the_structured_fields():
    # Chunks stored before these fields existed have them only in the locator.
    old_warc = {"source_type": "warc", "locator": "captured 2008-04-30 20:50 UTC — http://example.org/", "uri": "x"}
    old_marc = {"source_type": "marc", "locator": "Nature — call number Q1 .N2"}
    assert structured_provenance(old_warc)["captured"] == "2008-04-30 20:50 UTC"
    assert structured_provenance(old_marc)["call_number"] == "Q1 .N2"
    new = {"source_type": "marc", "locator": "Nature — call number Q1 .N2", "call_number": "QH1"}
    assert structured_provenance(new)["call_number"] == "QH1"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("Émile Zola’s “Germinal”", ["emile", "zola", "s", "germinal"]),
        ("Box 4, Folder 11", ["box", "4", "folder", "11"]),
        ("Достоевский, Фёдор", ["достоевскии", "федор"]),
        ("snake_case words", ["snake", "case", "words"]),
    ],
)
def test_the_one_tokenizer(raw, words):
    assert text.words(raw) == words


def test_hyphenated_labels_and_stems():
    assert text.hyphenated("Folders A-C and 1939-1945") == ["a-c", "1939-1945"]
    assert text.stem("dates") == "date" and text.stem("published") == "publish" and text.stem("news") == "news"
    assert text.record_fields("Title: Nature.\nISSN: 0028-0836\nfree text: no") == [
        ("Title", "Nature"),
        ("ISSN", "0028-0836"),
    ]


def test_a_kind_of_material_is_not_answered_by_a_name_alone():
    from assistant.answering.evidence import coverage

    book = next(s for s in _sources("george_eliot.marc") if "Paris, Bernard" in s.text)
    assert coverage("Do you hold any maps of Paris?", book) == 0.0  # Paris is the author here, not a map
    assert coverage("Which books by Paris do you hold?", book) > 0.0  # no kind asked for: the name answers

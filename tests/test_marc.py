"""MARC reader and catalogue ingest on the real shared files."""

import json
import shutil
import unicodedata

import pymarc
import pytest

from assistant.answering.filters import Filter
from assistant.core.settings import Settings
from assistant.core.types import SkippedRecord, SourceRecord
from assistant.services import Services
from ingest.marc import iter_records
from ingest.registry import detect_format
from tests.conftest import ingest


def read(path):
    items = list(iter_records(path))
    return [i for i in items if isinstance(i, SourceRecord)], [i for i in items if isinstance(i, SkippedRecord)]


def manifest(shared_data):
    return {m["path"]: m for m in json.loads((shared_data / "manifest.json").read_text())}


def test_record_counts_match_pymarc_on_every_valid_file(shared_data):
    checked = 0
    for rel, entry in manifest(shared_data).items():
        if not rel.startswith("marc/") or entry["format"] not in ("marc", "marcxml"):
            continue
        path = shared_data / rel
        if rel == "marc/traject/sample-oai-pmh.xml":
            continue  # filed as MARCXML but holds Dublin Core: see test_oai_dc_harvest
        assert detect_format(path) == "marc", rel
        records, skipped = read(path)
        assert len(records) == entry["record_count"], (rel, [s.reason for s in skipped])
        checked += 1
    assert checked >= 45


def test_independent_pymarc_count(shared_data):
    path = shared_data / "marc/marc4j/pride-and-prejudice-fixed.mrc"
    with path.open("rb") as fh:
        expected = sum(1 for r in pymarc.MARCReader(fh) if r is not None)
    assert len(read(path)[0]) == expected == 383


@pytest.mark.parametrize(
    "rel,expected",
    [
        ("marc/pymarc/1251.dat", "Основы гидравлического расчета"),  # cp1251 bytes, leader says MARC-8
        ("marc/pymarc/utf8_without_leader_flag.dat", "Escape from loneliness"),
        ("marc/pymarc/marc8.dat", "Escape from loneliness"),
        ("marc/openlibrary-client/bin_marc_unicode.mrc", "中英字典こんにちは"),  # UTF-8 bytes, leader says MARC-8
        ("marc/traject/one-marc8.mrc", "Por uma outra globalização"),
        ("marc/marc4j/cyrillic_capital_e.mrc", "Vor, shpion i ubiĭt︠s︡a"),
    ],
)
def test_titles_round_trip_in_every_encoding(shared_data, rel, expected):
    title = read(shared_data / rel)[0][0].provenance.title
    assert unicodedata.normalize("NFC", expected) in unicodedata.normalize("NFC", title)


@pytest.mark.parametrize(
    "rel,script_sample",
    [
        ("marc/traject/hebrew880s.marc", "אנרכיזם"),
        ("marc/openlibrary/880_arabic_french_many_linkages.mrc", "انتقال"),
        ("marc/openlibrary/880_Nihon_no_chasho.mrc", "日本 の 茶書"),
        ("marc/marc4j/greekmissingcharsetchange.mrc", "αγορά"),
    ],
)
def test_original_script_fields_are_kept(shared_data, rel, script_sample):
    (record, *_), _ = read(shared_data / rel)
    assert unicodedata.normalize("NFC", script_sample) in unicodedata.normalize("NFC", record.text)


def test_no_mojibake_in_any_title(shared_data):
    for path in sorted((shared_data / "marc").rglob("*")):
        if path.is_file() and detect_format(path) == "marc":
            for record in read(path)[0]:
                title = record.provenance.title
                assert "Ã" not in title and "\ufffd" not in title and "Ð" not in title, (path.name, title)


def test_corrupt_records_are_reported_and_neighbours_kept(shared_data):
    records, skipped = read(shared_data / "broken/marc4j_pride-and-prejudice-with-many-errors.mrc")
    assert len(records) + len(skipped) == 383 and len(records) >= 360
    assert all(s.record.startswith("record ") and " at byte " in s.record for s in skipped)
    records, skipped = read(shared_data / "broken/TRUNCATED_marc4j_pride-and-prejudice.mrc")
    assert len(records) == 13
    assert len(skipped) == 1 and "truncated record" in skipped[0].reason
    records, skipped = read(shared_data / "broken/pymarc_bad_records.mrc")
    assert records and skipped and all(s.reason for s in skipped)


def test_marcxml_variants(shared_data):
    assert [r.provenance.record_id for r in read(shared_data / "marc/marc4j/chabon.xml")[0]] == ["11939876", "12883376"]
    records, skipped = read(shared_data / "broken/pymarc_bad_tag.xml")
    assert records == [] and "bad tag" in skipped[0].reason


def test_oai_dc_harvest(shared_data):
    from ingest import oai_dc

    path = shared_data / "marc/traject/sample-oai-pmh.xml"
    assert detect_format(path) == "oai_dc"
    records = list(oai_dc.iter_records(path))
    assert len(records) == 10 and all(isinstance(r, SourceRecord) for r in records)
    first = records[0].provenance
    assert (first.record_id, first.title) == ("oai:sciencehistoryorg:mk61rg92z", "Warehouses")
    assert first.link == "https://digital.sciencehistory.org/works/mk61rg92z"


def test_record_text_and_metadata(shared_data):
    (nature,), _ = read(shared_data / "marc/traject/nature.marc")
    assert nature.provenance.record_id == "417826"
    assert "ISSN: 0028-0836" in nature.text and "Call number: Q1 .N2" in nature.text
    assert nature.filters == {"format": "serial", "language": "English", "year": 1869}
    assert nature.provenance.locator == "Nature. — call number Q1 .N2"
    (score, *_), _ = read(shared_data / "marc/traject/musical_cage.marc")
    assert score.filters["format"] == "music recording"  # leader/06 = j (a recording of the works)
    (record, *_), _ = read(shared_data / "marc/traject/manufacturing_consent.marc")
    assert record.filters["format"] == "book"  # leader/06-07 = "am"


def test_broken_empty_file_is_one_clear_error(fake_services, shared_data):
    summary = ingest(fake_services, [shared_data / "broken/EMPTY.mrc", shared_data / "marc/marc4j/chabon.mrc"])
    assert summary.records == 2
    assert summary.skipped[0].reason == "empty file" and summary.skipped[0].path.endswith("EMPTY.mrc")


def test_reingest_and_sync_remove_exactly_the_withdrawn_record(fake_services, shared_data, tmp_path):
    path = tmp_path / "catalogue.mrc"
    shutil.copy(shared_data / "marc/marc4j/chabon.mrc", path)
    first = ingest(fake_services, [path])
    assert first.records == 2
    assert ingest(fake_services, [path]).chunks_added == 0
    # The library withdraws Summerland (second record): the file now holds only the first.
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index(b"\x1d") + 1])
    kept = ingest(fake_services, [path])
    assert kept.chunks_removed == 0 and kept.chunks_added == 0
    assert fake_services.store.collection.get(where={"record_id": "12883376"})["ids"]
    synced = ingest(fake_services, [path], sync=True)
    assert synced.chunks_removed == 1
    assert fake_services.store.collection.get(where={"record_id": "12883376"})["ids"] == []
    assert fake_services.store.collection.get(where={"record_id": "11939876"})["ids"]


@pytest.fixture(scope="module")
def catalogue(real_embedder, tmp_path_factory, shared_data):
    settings = Settings.load(
        data_dir=str(tmp_path_factory.mktemp("cat")),
        llm={"backend": "fake"},
        links={"marc": "https://catalog.example.edu/Record/{id}"},
    )
    services = Services(settings, embedder=real_embedder)
    files = [
        "marc4j/chabon.mrc",
        "traject/nature.marc",
        "traject/george_eliot.marc",
        "traject/louis_armstrong.marc",
        "marc4j/pride-and-prejudice-fixed.mrc",
        "openlibrary/flatlandromanceo00abbouoft_meta.mrc",
    ]
    summary = ingest(services, [shared_data / "marc" / f for f in files])
    assert summary.files_failed == 0
    return services


def test_question_naming_a_title_retrieves_that_record_with_its_link(catalogue):
    top = catalogue.retriever.retrieve("Do you have Flatland: a romance of many dimensions?", 3)[0]
    assert top.source_type == "marc" and top.title.startswith("Flatland")
    assert top.link == f"https://catalog.example.edu/Record/{top.record_id}"
    top = catalogue.retriever.retrieve("The amazing adventures of Kavalier and Clay", 3)[0]
    assert top.record_id == "11939876"


def test_filters_by_year_format_and_language(catalogue):
    hits = catalogue.retriever.retrieve(
        "Pride and prejudice", 10, filters=[Filter.parse("year<1900"), Filter.parse("format=book")]
    )
    assert hits and all(int(h.date) < 1900 for h in hits)
    meta = catalogue.store.get([h.chunk_id for h in hits])
    assert all(m.metadata["format"] == "book" and m.metadata["year"] < 1900 for m in meta.values())
    serials = catalogue.retriever.retrieve("weekly science journal", 5, filters=[Filter.parse("format=serial")])
    assert serials[0].record_id == "417826"
    assert all(m.metadata["format"] == "serial" for m in catalogue.store.get([h.chunk_id for h in serials]).values())

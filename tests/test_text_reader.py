from pathlib import Path

import pytest

from assistant.core.types import SourceRecord
from ingest.registry import ReaderError, detect_format
from ingest.text import iter_records
from tests.conftest import ROOT

TEXT_DATA = ROOT / "tests" / "data" / "text"


def test_front_matter_gives_the_provenance():
    (record,) = iter_records(TEXT_DATA / "warc-archive-org-20080430205007-1.md")
    p = record.provenance
    assert (p.source_type, p.record_id, p.date) == (
        "text",
        "urn:uuid:ca1f8566-b6e2-441a-a211-3363fcceac7e",
        "2008-04-30T20:50:07Z",
    )
    assert p.title == "Internet Archive: Frequently Asked Questions"
    assert p.locator == "captured 2008-04-30 — http://www.archive.org/about/faq.php?faq_id=243"
    assert p.link == "https://web.archive.org/web/20080430205007/http://www.archive.org/about/faq.php?faq_id=243"
    assert record.extra["licence"].endswith("Apache-2.0")


def test_sections_become_records_with_their_own_locator():
    records = list(iter_records(TEXT_DATA / "ead-pc0170.md"))
    ids = [r.provenance.record_id for r in records]
    assert ids[0] == "ead:PC0170"
    assert "ead:PC0170#a-c" in ids and len(set(ids)) == len(ids)
    box = next(r for r in records if r.provenance.record_id == "ead:PC0170#a-c")
    assert "Box 1" in box.text
    assert box.provenance.locator == "finding aid PC0170, A-C"


def test_plain_text_without_headings_gets_line_locator(tmp_path):
    f = tmp_path / "note.txt"
    f.write_text("first line\nsecond line\n")
    (record,) = iter_records(f)
    assert record.provenance.record_id == "note"
    assert record.provenance.locator == "lines 1–2"


def test_reader_streams(tmp_path):
    f = tmp_path / "big.md"
    f.write_text("".join(f"# Part {i}\ntext {i}\n" for i in range(1000)))
    gen = iter_records(f)
    first = next(gen)
    assert isinstance(first, SourceRecord) and first.provenance.record_id == "big#part-0"


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ReaderError, match="latin1.txt.*not UTF-8"):
        list(iter_records(latin))
    unclosed = tmp_path / "open.md"
    unclosed.write_text("---\ntitle: x\n")
    with pytest.raises(ReaderError, match="open.md.*never closed"):
        list(iter_records(unclosed))


def test_format_detection():
    assert detect_format(Path("a.md")) == "text"
    assert detect_format(Path("a.TXT")) == "text"
    assert detect_format(Path("a.mrc")) == "marc"

"""Web archives on the real shared WARC/ARC files."""
import re
import shutil

import pytest
from warcio.archiveiterator import ArchiveIterator

from assistant.services import Services
from assistant.settings import Settings
from assistant.types import AlsoCaptured, Ignored, SkippedRecord, SourceRecord
from ingest import warc
from ingest.registry import ReaderError, detect_format
from tests.conftest import ingest


def items(path):
    return list(warc.iter_records(path))


def independent_html_count(path) -> int:
    """warcio alone: response records with HTTP 200 and text/html."""
    n = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=True):
            if record.rec_type == "response" and record.http_headers is not None \
                    and record.http_headers.get_statuscode() == "200" \
                    and "text/html" in (record.http_headers.get_header("Content-Type") or "").lower() \
                    and not (record.rec_headers.get_header("WARC-Target-URI") or "").endswith("/robots.txt"):
                n += 1
    return n


@pytest.mark.parametrize("rel", ["warc/aut/example.warc.gz", "warc/aut/example.arc.gz", "warc/pywb/iana.warc.gz",
                                 "warc/warcio/example.warc.gz", "warc/pywb/dupes.warc.gz"])
def test_every_html_response_is_accounted_for(shared_data, rel):
    """Each 200 text/html response becomes a page, a further capture of a page, or 'no main text'."""
    path = shared_data / rel
    assert detect_format(path) == "warc"
    got = items(path)
    pages = [i for i in got if isinstance(i, SourceRecord) and i.filters["format"] == "web page"]
    duplicates = [i for i in got if isinstance(i, AlsoCaptured) and i.via == "duplicate"]
    empty = [i for i in got if isinstance(i, Ignored) and i.reason == "no main text"]
    assert len(pages) + len(duplicates) + len(empty) == independent_html_count(path)
    assert len(pages) >= 1


def test_page_provenance(shared_data):
    pages = [i for i in items(shared_data / "warc/aut/example.warc.gz") if isinstance(i, SourceRecord)]
    faq = next(p for p in pages if p.filters["uri"] == "http://www.archive.org/about/faq.php?faq_id=243")
    p = faq.provenance
    assert p.source_type == "warc" and p.record_id == "urn:uuid:ca1f8566-b6e2-441a-a211-3363fcceac7e"
    assert p.date == "2008-04-30T20:50:07Z"
    assert p.locator == "captured 2008-04-30 20:50 UTC — http://www.archive.org/about/faq.php?faq_id=243"
    assert p.link == "https://web.archive.org/web/20080430205007/http://www.archive.org/about/faq.php?faq_id=243"
    assert "Live Music Archive" in faq.text and "FLAC" in faq.text
    assert faq.filters["warc_file"] == "example.warc.gz" and faq.filters["warc_offset"] > 0


def test_navigation_and_boilerplate_are_dropped(shared_data):
    pages = [i for i in items(shared_data / "warc/aut/example.warc.gz") if isinstance(i, SourceRecord)]
    home = next(p for p in pages if p.filters["uri"] == "http://www.archive.org/index.php")
    assert "Patron Info" not in home.text  # the site's navigation bar


def test_revisit_adds_a_capture_date_not_a_chunk(fake_services, shared_data, tmp_path):
    path = tmp_path / "example-extra.warc"
    shutil.copy(shared_data / "warc/pywb/example-extra.warc", path)
    got = items(path)
    revisits = [i for i in got if isinstance(i, AlsoCaptured) and i.via == "revisit"]
    assert revisits
    summary = ingest(fake_services, [path])
    assert summary.captures_added >= 1
    page_id = revisits[0].record_id
    stored = fake_services.store.collection.get(where={"record_id": page_id}, include=["metadatas"])
    assert len(stored["ids"]) == summary.chunks_added  # one page's chunks, nothing for the revisits
    captures = stored["metadatas"][0]["captures"].split(",")
    assert revisits[0].date in captures and len(captures) >= 2
    assert ingest(fake_services, [path]).chunks_added == 0  # re-ingest adds nothing


def test_pdf_inside_a_warc_is_cited_with_its_page(shared_data):
    pdf_pages = [i for i in items(shared_data / "warc/aut/example.pdf.warc.gz")
                 if isinstance(i, SourceRecord) and i.filters["format"] == "pdf page"]
    assert pdf_pages
    page = pdf_pages[0].provenance
    assert re.search(r"#page=\d+$", page.record_id) and re.search(r", p\. \d+$", page.locator)
    assert page.link.startswith("https://web.archive.org/web/") and re.search(r"#page=\d+$", page.link)


def test_truncated_archive_keeps_its_complete_records(shared_data):
    got = items(shared_data / "broken/TRUNCATED_aut_example.warc.gz")
    assert sum(isinstance(i, SourceRecord) for i in got) >= 5
    (broken,) = [i for i in got if isinstance(i, SkippedRecord)]
    assert "archive ends early" in broken.reason and re.match(r"byte \d+ of 300000", broken.record)


@pytest.mark.parametrize("name", ["aut_badexample.arc.gz", "warcio_example-bad-non-chunked.warc.gz", "EMPTY.warc.gz"])
def test_corrupt_archives_are_clear_errors(shared_data, name):
    with pytest.raises(ReaderError, match=re.escape(name)):
        items(shared_data / "broken" / name)


def test_skipped_kinds_are_counted_by_reason(fake_services, shared_data):
    summary = ingest(fake_services, [shared_data / "warc/aut/example.warc.gz"])
    assert summary.left_out["redirect"] == 7 and summary.left_out["robots.txt"] == 38
    assert summary.left_out["image files"] == 55 and summary.left_out["HTTP 404"] == 35
    assert "left out" in summary.text()
    assert warc.skip_reason("text/css; charset=utf-8") == "style sheets"
    assert warc.skip_reason("application/x-javascript") == "scripts"
    assert not [r for r in summary.left_out if r in ("text files", "application files")]


@pytest.fixture(scope="module")
def archive(real_embedder, tmp_path_factory, shared_data):
    settings = Settings.load(data_dir=str(tmp_path_factory.mktemp("warc")), llm={"backend": "fake"})
    services = Services(settings, embedder=real_embedder)
    ingest(services, [shared_data / "warc/pywb/iana.warc.gz"])
    return services


def test_question_about_a_page_retrieves_it_with_capture_date_and_replay_link(archive):
    top = archive.retriever.retrieve("What does IANA say about root zone management and the DNS root servers?", 3)[0]
    assert top.source_type == "warc"
    assert top.locator == "captured 2014-01-26 20:12 UTC — http://www.iana.org/domains/root/servers"
    assert top.link == "https://web.archive.org/web/20140126201227/http://www.iana.org/domains/root/servers"

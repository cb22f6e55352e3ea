"""Web archives on the real shared WARC/ARC files."""

import re
import shutil

import pytest
from warcio.archiveiterator import ArchiveIterator

from assistant.core.settings import Settings
from assistant.core.types import AlsoCaptured, Ignored, SkippedRecord, SourceRecord
from assistant.services import Services
from ingest import warc
from ingest.registry import ReaderError, detect_format
from tests.conftest import ingest, recording_extractor

# Every test here extracts the text of real crawls with trafilatura: minutes, not seconds, on 2 cores.
pytestmark = pytest.mark.slow


def items(path):
    return list(warc.iter_records(path))


def independent_html_count(path) -> int:
    """warcio alone: response records with HTTP 200 and text/html."""
    n = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=True):
            if (
                record.rec_type == "response"
                and record.http_headers is not None
                and record.http_headers.get_statuscode() == "200"
                and "text/html" in (record.http_headers.get_header("Content-Type") or "").lower()
                and not (record.rec_headers.get_header("WARC-Target-URI") or "").endswith("/robots.txt")
            ):
                n += 1
    return n


@pytest.mark.parametrize(
    "rel",
    [
        "warc/aut/example.warc.gz",
        "warc/aut/example.arc.gz",
        "warc/pywb/iana.warc.gz",
        "warc/warcio/example.warc.gz",
        "warc/pywb/dupes.warc.gz",
    ],
)
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
    # Retrieval reads metadata from the lexical index's copy: the capture is there too.
    copy = fake_services.store.lexical.records(stored["ids"])
    assert all(revisits[0].date in meta["captures"].split(",") for _text, meta in copy.values())
    assert ingest(fake_services, [path]).chunks_added == 0  # re-ingest adds nothing


def test_a_page_stating_no_language_is_guessed_where_it_is_extracted(shared_data):
    """In the run's extraction worker or, without one, in the reading thread: the same guess from the same
    main text, marked as a guess; a reader given no tagger guesses nothing."""
    from ingest.language import LanguageTagger

    path = shared_data / "warc/pywb/iana.warc.gz"  # 16 pages, none with <html lang>
    tagger = LanguageTagger()

    def page_filters(**options):
        return {
            r.provenance.record_id: r.filters
            for r in warc.iter_records(path, **options)
            if isinstance(r, SourceRecord) and r.filters["format"] == "web page"
        }

    here = page_filters(languages=tagger)
    with warc.TextExtractor() as extractor:
        in_worker = page_filters(languages=tagger, extractor=extractor)
    assert len(here) >= 10 and here == in_worker
    assert {(f["language"], f["language_source"]) for f in here.values()} == {("English", "detected")}
    assert all(0.5 <= f["language_confidence"] <= 1 for f in here.values())
    assert not any(f.get("language") or f.get("language_source") for f in page_filters().values())


def test_pdf_pages_in_an_archive_are_read_where_pages_are_extracted(shared_data):
    """pypdf and lingua hold the GIL: a PDF's pages are read, and their languages guessed, in the run's
    extraction worker, giving the records reading here gives. A page with too few words of its own is marked
    undetermined, and the read stage does not guess it from refdesk's English first line."""
    from ingest.language import LanguageTagger

    path = shared_data / "warc/aut/example.pdf.warc.gz"  # slides: some pages hold a heading and little else
    tagger = LanguageTagger()

    def pdf_pages(**options):
        return {
            r.provenance.record_id: r
            for r in warc.iter_records(path, languages=tagger, **options)
            if isinstance(r, SourceRecord) and r.filters["format"] == "pdf page"
        }

    here = pdf_pages()
    with recording_extractor() as extractor:
        in_worker = pdf_pages(extractor=extractor)
    assert "_pdf_page_texts" in extractor.handed
    assert len(here) >= 20 and here == in_worker
    sources = {r.filters["language_source"] for r in here.values()}
    assert sources == {"detected", "undetermined"}
    undetermined = [r for r in here.values() if r.filters["language_source"] == "undetermined"]
    assert all(len(r.text.split("\n", 1)[1]) < 100 for r in undetermined)  # e.g. "US$7 per TB / The TL;DR"
    assert all(not tagger.tag(r).filters.get("language") for r in undetermined)


def test_pdf_inside_a_warc_is_cited_with_its_page(shared_data):
    pdf_pages = [
        i
        for i in items(shared_data / "warc/aut/example.pdf.warc.gz")
        if isinstance(i, SourceRecord) and i.filters["format"] == "pdf page"
    ]
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


def _payloads_200(path, types=("text/html", "application/pdf")) -> list[str]:
    """warcio alone: SHA-1 of the decoded payload of each 200 response of the given types."""
    import hashlib

    out = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=True):
            if (
                record.rec_type == "response"
                and record.http_headers is not None
                and record.http_headers.get_statuscode() == "200"
                and any(t in (record.http_headers.get_header("Content-Type") or "").lower() for t in types)
            ):
                out.append(hashlib.sha1(record.content_stream().read()).hexdigest())
    return out


def _stored(services) -> dict[str, dict]:
    got = services.store.collection.get(include=["metadatas"])
    return dict(zip(got["ids"], got["metadatas"], strict=True))


def test_one_crawl_as_arc_and_warc_is_stored_once(fake_services, shared_data, tmp_path):
    """aut/example.arc.gz and aut/example.warc.gz hold the same 2008 crawl: the WARC's pages are neither
    extracted nor embedded again; each adds its capture to the ARC's record. Removing the ARC (--sync)
    reads the WARC again, so its pages are still there, now cited from the WARC."""
    corpus = tmp_path / "crawl"
    corpus.mkdir()
    arc, warc_file = corpus / "example.arc.gz", corpus / "example.warc.gz"
    shutil.copy(shared_data / "warc/aut/example.arc.gz", arc)
    alone = ingest(fake_services, [arc])
    arc_ids = set(_stored(fake_services))
    shutil.copy(shared_data / "warc/aut/example.warc.gz", warc_file)
    in_arc = set(_payloads_200(arc))
    expected_elsewhere = sum(1 for p in _payloads_200(warc_file) if p in in_arc)
    assert expected_elsewhere >= 90  # independent count: the WARC's pages found in the ARC
    both = ingest(fake_services, [corpus])
    assert (both.files_unchanged, both.chunks_added, both.stored_elsewhere) == (1, 0, expected_elsewhere)
    assert set(_stored(fake_services)) == arc_ids
    assert ingest(fake_services, [corpus]).chunks_added == 0  # re-ingest: nothing

    arc.unlink()
    synced = ingest(fake_services, [corpus], sync=True)
    stored = _stored(fake_services)
    assert synced.chunks_removed == len(arc_ids) and synced.chunks_added == alone.chunks_added == len(stored)
    assert {m["source_file"] for m in stored.values()} == {str(warc_file.resolve())}
    faq = [m for m in stored.values() if m["uri"] == "http://www.archive.org/about/faq.php?faq_id=243"]
    assert faq and all(m["warc_file"] == "example.warc.gz" for m in faq)


def test_a_revisit_in_another_file_adds_its_capture(fake_services, shared_data, tmp_path):
    """pywb's URL-agnostic pair: the revisit (2013-07-29) sits in another WARC than the page it repeats."""
    corpus = tmp_path / "pair"
    corpus.mkdir()
    orig = corpus / "example-url-agnostic-orig.warc.gz"
    revisit = corpus / "example-url-agnostic-revisit.warc.gz"
    shutil.copy(shared_data / "warc/pywb/example-url-agnostic-orig.warc.gz", orig)
    shutil.copy(shared_data / "warc/pywb/example-url-agnostic-revisit.warc.gz", revisit)
    summary = ingest(fake_services, [corpus])
    stored = _stored(fake_services)
    assert summary.chunks_added == len(stored) > 0 and summary.captures_added == 1
    assert all(m["source_file"] == str(orig.resolve()) for m in stored.values())
    assert all("2013-07-29T19:51:51Z" in m["captures"].split(",") for m in stored.values())

    # The file holding the page changes (here: its records appended once more): the file
    # whose revisit points into it is read again too.
    with orig.open("rb") as fh:
        data = fh.read()
    orig.write_bytes(data + data)
    again = ingest(fake_services, [corpus])
    assert again.files_unchanged == 0 and again.files == 2
    assert set(_stored(fake_services)) == set(stored)
    assert all("2013-07-29T19:51:51Z" in m["captures"].split(",") for m in _stored(fake_services).values())


def test_arc_records_keep_their_ids_from_one_read_to_the_next(shared_data):
    """ARC has no record ids: warcio makes up a uuid on each read, so refdesk names them by file and offset."""
    import itertools

    path = shared_data / "warc/aut/example.arc.gz"

    def ids():
        records = (r for r in warc.iter_records(path) if isinstance(r, SourceRecord))
        return [r.provenance.record_id for r in itertools.islice(records, 3)]

    first = ids()
    assert first == ids() and all(i.startswith("example.arc.gz@") for i in first)


def _pid_after(seconds: float) -> int:
    """Run in an extraction worker (module level: spawned processes import it)."""
    import os
    import time

    time.sleep(seconds)
    return os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_extractor_runs_as_many_worker_processes_as_configured(workers):
    with warc.TextExtractor(workers) as extractor:
        futures = [extractor.submit(_pid_after, 0.5) for _ in range(4)]
        assert len({f.result(timeout=120) for f in futures}) == workers


def test_pages_extracted_in_two_processes_are_stored_as_with_one(shared_data, tmp_path, clean_env):
    """ingest.extract_workers = 2 (for fast models): the same chunks, records and counts as one worker, from
    real archives with pages and PDF pages, since pages are taken back in the order they were read."""
    corpus = tmp_path / "crawls"
    corpus.mkdir()
    for name in ("warc/pywb/iana.warc.gz", "warc/aut/example.pdf.warc.gz", "warc/pywb/dupes.warc.gz"):
        shutil.copy(shared_data / name, corpus / name.replace("/", "__"))
    found = {}
    for workers in (1, 2):
        settings = Settings.load(
            data_dir=str(tmp_path / f"data{workers}"),
            embedding={"backend": "fake", "model": "hash"},
            ingest={"extract_workers": workers},
        )
        services = Services(settings)
        summary = ingest(services, [corpus])
        manifest = services.manifest()
        try:
            rows = sorted(manifest.db.execute("SELECT chunk_id, path, record_id FROM chunks"))
        finally:
            manifest.close()
        counts = {k: v for k, v in summary.as_dict().items() if "seconds" not in k and not k.endswith("_per_s")}
        found[workers] = ([(c, p.replace(str(tmp_path / f"data{workers}"), "")) for c, p, _ in rows], counts)
    assert found[2] == found[1]
    assert found[1][1]["chunks_added"] > 50 and found[1][1]["files_failed"] == 0

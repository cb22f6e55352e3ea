"""Finding aids: EAD 2002 / EAD3 and PDF inventories, on the real shared files."""

import subprocess
import sys

import pytest
from lxml import etree

from assistant.core.settings import Settings
from assistant.core.types import SkippedRecord, SourceRecord
from assistant.services import Services
from ingest import ead, pdf
from ingest.registry import ReaderError, detect_format
from tests.conftest import ingest, recording_extractor

COMPONENT_TAGS = {"c"} | {f"c{i:02d}" for i in range(1, 13)}


def records(reader, path):
    items = list(reader.iter_records(path))
    return [i for i in items if isinstance(i, SourceRecord)], [i for i in items if isinstance(i, SkippedRecord)]


def lxml_component_count(path) -> int:
    """Independent count: every c / c01..c12 element inside <dsc>."""
    tree = etree.parse(str(path))
    return sum(
        1
        for el in tree.iter()
        if isinstance(el.tag, str)
        and etree.QName(el).localname in COMPONENT_TAGS
        and any(etree.QName(a).localname == "dsc" for a in el.iterancestors())
    )


def test_component_counts_match_an_independent_lxml_count(shared_data):
    files = sorted((shared_data / "ead").rglob("*.xml"))
    assert len(files) >= 25
    for path in files:
        assert detect_format(path) == "ead", path.name
        recs, skipped = records(ead, path)
        components = [r for r in recs if r.filters["format"] == "archival component"]
        assert len(components) == lxml_component_count(path), path.name
        assert sum(r.filters["format"] == "collection" for r in recs) == 1 and not skipped


def test_ead2002_component_has_box_series_and_collection(shared_data):
    recs, _ = records(ead, shared_data / "ead/arclight/alphaomegaalpha.xml")
    comp = next(r for r in recs if r.provenance.title.startswith('"A brief account of the origin'))
    assert comp.provenance.source_type == "ead"
    assert comp.provenance.locator.startswith("Box 1, Folder 1, Series I: Administrative Records")
    assert "Collection: Alpha Omega Alpha Archives" in comp.text
    assert comp.provenance.link.startswith("https://collections.nlm.nih.gov/")  # its <dao>
    collection = recs[0]
    assert collection.filters["format"] == "collection" and "Biographical / historical note" in collection.text


def test_ead3_component(shared_data):
    recs, _ = records(ead, shared_data / "ead/ncsu/mc00185.xml")
    comp = next(r for r in recs if r.filters["format"] == "archival component")
    assert comp.provenance.locator.startswith("Box 1, Folder 1")
    assert comp.provenance.date == "1968" and comp.filters["year"] == 1968
    assert "Location: Box 1, Folder 1" in comp.text


def test_link_template(shared_data):
    items = list(
        ead.iter_records(
            shared_data / "ead/arclight/pc0170.xml",
            link_template="https://archives.example.edu/catalog/{eadid}_{component_id}",
        )
    )
    comp = next(i for i in items if i.provenance.title == "A-C")
    assert (
        comp.provenance.link
        == "https://archives.example.edu/catalog/pc0170.xml_aspace_f5907634fce75222081b9028db18b2fd"
    )


def test_dtd_declaring_file_parses_without_network(shared_data, tmp_path):
    source = (shared_data / "ead/arclight/pc0170.xml").read_text(encoding="utf-8")
    doctype = (
        '<!DOCTYPE ead PUBLIC "+//ISBN 1-931666-00-8//DTD ead.dtd (Encoded Archival Description (EAD) '
        'Version 2002)//EN" "http://www.loc.gov/ead/ead.dtd">\n'
    )
    with_dtd = tmp_path / "pc0170-dtd.xml"
    with_dtd.write_text(source.replace("?>\n", "?>\n" + doctype, 1), encoding="utf-8")
    recs, _ = records(ead, with_dtd)  # the sandbox has no route to loc.gov: a fetch would fail
    assert len(recs) == 7


def test_malformed_xml_reports_its_line_and_keeps_what_came_before(shared_data):
    path = shared_data / "broken/TRUNCATED_ncsu_mc00432.xml"
    got = []
    with pytest.raises(ReaderError, match=r"TRUNCATED_ncsu_mc00432.xml.*not well-formed XML at line \d+"):
        for item in ead.iter_records(path):
            got.append(item)
    assert len(got) > 100  # every complete component before the break


def test_large_finding_aid_streams_in_bounded_memory(shared_data):
    # VmHWM, not ru_maxrss: the latter carries the (large) pytest parent's high-water mark across exec.
    code = (
        "import re, sys; from ingest.ead import iter_records; "
        "n = sum(1 for _ in iter_records(sys.argv[1])); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(n, int(hwm) // 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(shared_data / "ead/ncsu/mc00246.xml")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.split()
    count, peak_mb = int(out[0]), int(out[1])
    assert count == 11965 + 1
    assert peak_mb < 250, f"peak RSS {peak_mb} MB while streaming a 3.3 MB, 12k-component EAD"


def test_pdf_pages_are_cited_by_page(shared_data):
    path = shared_data / "pdf/findingaid_mc00062.pdf"
    assert detect_format(path) == "pdf"
    recs, skipped = records(pdf, path)
    assert len(recs) == 26 and not skipped
    page7 = recs[6].provenance
    assert (page7.locator, page7.record_id) == ("p. 7", "findingaid_mc00062.pdf#page=7")
    assert page7.link.endswith("findingaid_mc00062.pdf#page=7")
    assert page7.title == "Guide to the William H. Johnson Papers"


def test_pdf_inventory_carries_the_box_down_the_page(shared_data):
    recs, _ = records(pdf, shared_data / "pdf/findingaid_mc00062.pdf")
    text = recs[6].text
    assert 'Box 4, Folder 10: Oxygen Depletion, I-62 - "Data," (1962)' in text
    assert 'Box 4, Folder 11: Oxygen Depletion, I-62 - "Analysis," (undated)' in text  # box printed once, carried
    assert "Box 5, Folder 1: Harvest Curing Experiment" in text


def test_pdf_pages_are_read_where_pages_are_extracted(shared_data):
    """pypdf's layout extraction and lingua hold the GIL: pages are read, and their languages guessed, in the
    ingest's extraction worker, several at a time, giving the records reading here gives (the box carried
    across pages handed to different tasks too). A page whose own words give no guess is marked undetermined,
    and the read stage does not guess it from the record."""
    from ingest.language import LanguageTagger

    tagger = LanguageTagger()

    def pages(path, **options):
        return [r for r in pdf.iter_records(path, languages=tagger, **options) if isinstance(r, SourceRecord)]

    inventory = shared_data / "pdf/findingaid_mc00062.pdf"  # 26 pages: more than one task
    here = pages(inventory)
    with recording_extractor() as extractor:
        in_worker = pages(inventory, extractor=extractor)
    assert extractor.handed.count("_extract_pages") >= 2
    assert len(here) == 26 and here == in_worker
    assert {(r.filters["language"], r.filters["language_source"]) for r in here} == {("English", "detected")}
    assert "Box 4, Folder 11:" in in_worker[6].text
    slides = pages(shared_data / "pdf/yorkspace_cost-of-a-warc-presentation.pdf")
    undetermined = [r for r in slides if r.filters["language_source"] == "undetermined"]
    assert undetermined and all("language" not in r.filters for r in undetermined)
    assert all("language" not in tagger.tag(r).filters for r in undetermined)


def test_bad_pdfs(shared_data):
    with pytest.raises(ReaderError, match="NOT_A_PDF_smile_jpeg.pdf: not a PDF"):
        list(pdf.iter_records(shared_data / "broken/NOT_A_PDF_smile_jpeg.pdf"))
    with pytest.raises(ReaderError, match="pypdf_libreoffice-writer-password.pdf: encrypted PDF"):
        list(pdf.iter_records(shared_data / "broken/pypdf_libreoffice-writer-password.pdf"))
    recs, skipped = records(pdf, shared_data / "pdf/pypdf/imagemagick-images.pdf")
    assert skipped and skipped[0].reason == "no text layer: OCR not done" and skipped[0].record == "pages 4, 5"


@pytest.fixture(scope="module")
def archives(real_embedder, tmp_path_factory, shared_data):
    settings = Settings.load(data_dir=str(tmp_path_factory.mktemp("archives")), llm={"backend": "fake"})
    services = Services(settings, embedder=real_embedder)
    summary = ingest(
        services,
        [
            shared_data / "ead/ncsu/mc00185.xml",
            shared_data / "ead/arclight/pc0170.xml",
            shared_data / "pdf/findingaid_uarc01180.pdf",
        ],
    )
    assert summary.files_failed == 0
    return services


def test_question_about_a_folder_finds_it_with_its_box_and_folder(archives):
    hits = archives.retriever.retrieve(
        "thesis on the bibliographic organization of agricultural economics literature", 3
    )
    assert hits[0].source_type == "ead" and hits[0].title.startswith("Thesis:")
    assert hits[0].locator.startswith("Box 1, Folder ")  # one of the thesis's four folders


def test_evidence_answer_from_a_finding_aid(archives):
    from assistant.backends.llm import FakeChat

    archives.answers.llm = FakeChat()
    answer = archives.answers.ask("Which box has the A-C photographs of the Stanford marching band?")
    assert "A-C — Location: Box 1" in answer.answer and not answer.refused


def test_pdf_page_evidence(archives):
    hits = archives.retriever.retrieve("Rockefeller Foundation, Wheat, Oat and Barley program folder", 3)
    page = next(h for h in hits if "Box 1, Folder 24: Rockefeller Foundation" in h.text)
    assert page.source_type == "pdf" and page.locator == "p. 5" and page.link.endswith("#page=5")


def test_evidence_answer_quotes_the_pdf_inventory_with_its_page(archives):
    from assistant.backends.llm import FakeChat

    archives.answers.llm = FakeChat()
    answer = archives.answers.ask(
        "Which box and folder hold the Rockefeller Foundation wheat, oat and barley program files?"
    )
    assert not answer.refused
    evidence = [s for s in answer.sentences if s.kind == "evidence" and s.shown]
    by_n = {s.n: s for s in answer.sources}
    pdf_quotes = [s for s in evidence if by_n[s.citations[0]].source_type == "pdf"]
    assert pdf_quotes and "Box 1, Folder 24" in pdf_quotes[0].text
    assert by_n[pdf_quotes[0].citations[0]].locator == "p. 5"

"""WACZ packages built in the test from the real shared WARCs with py-wacz (`wacz create`)."""

import io
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from assistant.cli import main
from assistant.core.settings import Settings
from assistant.core.types import Ignored, SkippedRecord, SourceRecord
from assistant.services import Services
from ingest import wacz
from ingest.registry import ReaderError, detect_format


def make_wacz(warcs, out, *extra):
    done = subprocess.run(
        [sys.executable, "-m", "wacz", "create", "-o", str(out), *extra, *map(str, warcs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def items(path):
    return list(wacz.iter_records(path))


@pytest.fixture(scope="module")
def iana_wacz(shared_data, tmp_path_factory):
    """py-wacz with a full-text page list (-t -d) over the real IANA crawl."""
    out = tmp_path_factory.mktemp("wacz") / "iana.wacz"
    return make_wacz([shared_data / "warc/pywb/iana.warc.gz"], out, "-t", "-d", "--title", "IANA crawl 2014")


def test_pages_stream_from_the_package_with_its_text_and_provenance(iana_wacz, shared_data):
    got = items(iana_wacz)
    pages = [i for i in got if isinstance(i, SourceRecord)]
    assert not [i for i in got if isinstance(i, SkippedRecord)]  # every hash in datapackage.json matches
    listed = [json.loads(line) for line in zipfile.ZipFile(iana_wacz).read("pages/pages.jsonl").splitlines()[1:]]
    with_text = {p["url"] for p in listed if len(p.get("text", "").split()) >= 5}
    assert {p.filters["uri"] for p in pages} == with_text
    home = next(p for p in pages if p.filters["uri"] == "http://www.iana.org/")
    prov = home.provenance
    assert prov.source_type == "warc" and prov.record_id.startswith("urn:uuid:")
    assert (
        prov.date == "2014-01-26T20:06:24Z"
        and prov.link == "https://web.archive.org/web/20140126200624/http://www.iana.org/"
    )
    assert prov.locator == (
        "captured 2014-01-26 20:06 UTC — http://www.iana.org/ · iana.wacz (IANA crawl 2014) "
        "· text from the WACZ page list"
    )
    assert prov.source_file == str(iana_wacz.resolve())
    assert home.filters["collection"] == "IANA crawl 2014" and home.filters["text_source"] == "pages.jsonl"
    assert "responsible for the global coordination of the DNS Root" in home.text
    # The same page ids as the WARC itself gives: a WACZ adds packaging, not different records.
    with (shared_data / "warc/pywb/iana.warc.gz").open("rb") as fh:
        ids = {r.rec_headers.get_header("WARC-Record-ID").strip("<>") for r in ArchiveIterator(fh)}
    assert {p.provenance.record_id for p in pages} <= ids
    assert detect_format(iana_wacz) == "wacz"


def test_a_hash_mismatch_is_reported_and_reading_goes_on(iana_wacz, tmp_path):
    bad = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(iana_wacz) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "datapackage.json":
                package = json.loads(data)
                for res in package["resources"]:
                    if res["path"].startswith("archive/"):
                        res["hash"] = "sha256:" + "0" * 64
                data = json.dumps(package).encode()
            dst.writestr(info, data)
    got = items(bad)
    skipped = [i for i in got if isinstance(i, SkippedRecord)]
    assert len(skipped) == 1 and skipped[0].record == "archive/iana.warc.gz"
    assert (
        skipped[0].reason.startswith("hash mismatch: datapackage.json says sha256:000")
        and "read anyway" in skipped[0].reason
    )
    assert len([i for i in got if isinstance(i, SourceRecord)]) == len(
        [i for i in items(iana_wacz) if isinstance(i, SourceRecord)]
    )


def browser_crawl_warc(shared_data, path):
    """A real page response from the shared IANA crawl, plus the two text records Browsertrix writes for
    it (urn:text at load, urn:textFinal after behaviours), built with warcio."""
    from lxml import html as lxml_html

    with (shared_data / "warc/pywb/iana.warc.gz").open("rb") as fh:
        for record in ArchiveIterator(fh):
            if (
                record.rec_type == "response"
                and record.rec_headers.get_header("WARC-Target-URI") == "http://www.iana.org/domains/root"
            ):
                payload = record.content_stream().read()
                date = record.rec_headers.get_header("WARC-Date")
                break
    rendered = " ".join(lxml_html.fromstring(payload).text_content().split())
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        uri = "http://www.iana.org/domains/root"
        writer.write_record(
            writer.create_warc_record(
                uri, "response", payload=io.BytesIO(payload), http_headers=http, warc_headers_dict={"WARC-Date": date}
            )
        )
        for kind, text in (
            ("urn:text", rendered[:400]),
            ("urn:textFinal", rendered + " Expanded after scrolling: root zone database, delegation records."),
        ):
            writer.write_record(
                writer.create_warc_record(
                    f"{kind}:{uri}",
                    "resource",
                    payload=io.BytesIO(text.encode()),
                    warc_content_type="text/plain; charset=utf-8",
                    warc_headers_dict={"WARC-Date": date},
                )
            )
    return path


def test_browser_extracted_text_is_preferred_to_the_html(shared_data, tmp_path):
    warc_path = browser_crawl_warc(shared_data, tmp_path / "crawl.warc.gz")
    package = make_wacz([warc_path], tmp_path / "crawl.wacz", "-d")
    got = items(package)
    pages = [i for i in got if isinstance(i, SourceRecord)]
    assert len(pages) == 1
    page = pages[0]
    assert page.filters["uri"] == "http://www.iana.org/domains/root"
    assert page.filters["text_source"] == "urn:textFinal"
    assert "Expanded after scrolling" in page.text
    assert page.provenance.locator.endswith("· text rendered by the crawler's browser")
    assert page.provenance.link.endswith("/http://www.iana.org/domains/root")
    reasons = {i.reason for i in got if isinstance(i, Ignored)}
    assert "HTML left for the text the browser extracted (urn:text record)" in reasons
    assert "browser text superseded by a later extraction (urn:textFinal)" in reasons


def test_broken_packages_name_the_file(iana_wacz, tmp_path):
    cut = tmp_path / "cut.wacz"
    cut.write_bytes(iana_wacz.read_bytes()[:200_000])
    with pytest.raises(ReaderError, match="cut.wacz: not a readable WACZ"):
        items(cut)
    empty = tmp_path / "nowarc.wacz"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("datapackage.json", json.dumps({"resources": [{"path": "archive/x.warc.gz", "hash": "sha256:00"}]}))
    with pytest.raises(ReaderError, match="no WARC files inside"):
        items(empty)


def test_a_folder_of_wacz_ingests_idempotently_syncs_and_answers_with_the_capture(
    iana_wacz, shared_data, tmp_path, real_embedder, capsys
):
    folder = tmp_path / "waczs"
    folder.mkdir()
    shutil.copy(iana_wacz, folder / "iana.wacz")
    make_wacz([browser_crawl_warc(shared_data, tmp_path / "crawl.warc.gz")], folder / "browsertrix.wacz", "-d")
    (folder / "broken.wacz").write_bytes(iana_wacz.read_bytes()[:100_000])
    services = Services(Settings.load(data_dir=str(tmp_path / "data")), embedder=real_embedder)
    assert main(["ingest", str(folder), "--json"], services=services) == 1  # one file failed, the others went in
    first = json.loads(capsys.readouterr().out)
    assert first["files"] == 3 and first["files_failed"] == 1 and first["chunks_added"] > 0
    assert [
        s["path"].endswith("broken.wacz") and s["reason"].startswith("not a readable WACZ") for s in first["skipped"]
    ] == [True]
    assert main(["ingest", str(folder), "--json"], services=services) == 1
    assert json.loads(capsys.readouterr().out)["chunks_added"] == 0  # re-ingest adds nothing

    answer = services.answers.ask("What does IANA say about the DNS root zone?", retrieve_only=True)
    wacz_sources = [s for s in answer.sources if s.source_file.endswith(".wacz")]
    assert wacz_sources, "the archived pages are retrieved"
    top = wacz_sources[0]
    assert top.locator.startswith("captured 2014-01-26") and top.link.startswith("https://web.archive.org/web/2014012")

    (folder / "browsertrix.wacz").unlink()
    (folder / "broken.wacz").unlink()
    assert main(["ingest", str(folder), "--sync", "--json"], services=services) == 0
    synced = json.loads(capsys.readouterr().out)
    assert synced["chunks_removed"] > 0
    left = {m.get("source_file") for m in services.store.iter_metadata()}
    assert left == {str((folder / "iana.wacz").resolve())}

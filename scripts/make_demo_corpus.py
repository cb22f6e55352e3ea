"""Regenerates demo/corpus/*.md from real files in ../shared/data (see demo/README.md).

The foundation slice ingests text; the records keep their real identifiers, dates and
locators. Later readers (MARC, EAD, WARC) will ingest the originals directly.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pymarc
from lxml import etree, html
from warcio.archiveiterator import ArchiveIterator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "demo" / "corpus"

MARC_FILES = [
    ("marc/marc4j/chabon.mrc", None, "marc4j/marc4j, LGPL-2.1"),
    ("marc/traject/nature.marc", None, "traject/traject, MIT"),
    ("marc/traject/george_eliot.marc", None, "traject/traject, MIT"),
    ("marc/traject/louis_armstrong.marc", None, "traject/traject, MIT"),
    ("marc/marc4j/pride-and-prejudice-fixed.mrc", 8, "marc4j/marc4j, LGPL-2.1"),
]
LABELS = [
    ("100", "Author"), ("110", "Corporate author"), ("245", "Title"), ("250", "Edition"), ("260", "Published"),
    ("264", "Published"), ("300", "Description"), ("020", "ISBN"), ("022", "ISSN"), ("050", "LC call number"),
    ("082", "Dewey number"), ("310", "Frequency"), ("362", "Dates of publication"), ("500", "Note"),
    ("505", "Contents"), ("511", "Performers"), ("518", "Recorded"), ("520", "Summary"), ("600", "Subject"),
    ("650", "Subject"), ("651", "Place"), ("655", "Genre"), ("700", "Other author"),
]


def clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().rstrip(" /:;,")


def marc_markdown(record: pymarc.Record, origin: str, attribution: str) -> tuple[str, str]:
    rid = record["001"].data.strip() if record["001"] else "unknown"
    title = clean(record.title or "Untitled")
    date = ""
    for tag in ("260", "264"):
        for f in record.get_fields(tag):
            date = date or clean(" ".join(f.get_subfields("c"))).strip("c[].")
    lines = ["---", f"title: {title}", f"record_id: marc:{rid}", f"date: {date}", f"locator: catalogue record {rid}",
             f"source: {origin} (record 001 = {rid})", f"licence: {attribution}", "---", f"# {title}", ""]
    for tag, label in LABELS:
        for f in record.get_fields(tag):
            if tag in ("020", "022"):
                values = f.get_subfields("a")
            elif tag == "050":
                values = [" ".join(f.get_subfields("a", "b"))]
            else:
                values = [" ".join(sf.value for sf in f.subfields if sf.code not in ("6", "8", "2", "4"))]
            for v in values:
                if clean(v):
                    lines.append(f"{label}: {clean(v)}")
    return f"marc-{rid}", "\n".join(lines) + "\n"


def ead_markdown(path: Path, attribution: str) -> str:
    ns = {"e": "urn:isbn:1-931666-22-9"}
    tree = etree.parse(str(path))
    text = lambda el: clean(" ".join(el.itertext())) if el is not None else ""
    arch = tree.find(".//e:archdesc", ns)
    title = text(arch.find("e:did/e:unittitle", ns))
    unitid = text(arch.find("e:did/e:unitid", ns))
    date = text(arch.find("e:did/e:unitdate", ns))
    lines = ["---", f"title: {title}", f"record_id: ead:{unitid}", f"date: {date}", f"locator: finding aid {unitid}",
             f"source: ead/arclight/{path.name}", f"licence: {attribution}", "---", f"# {title}", "",
             f"Collection number: {unitid}", f"Dates: {date}",
             f"Creator: {text(arch.find('e:did/e:origination', ns))}",
             f"Repository: {text(arch.find('e:did/e:repository', ns))}", ""]
    for tag in ("scopecontent", "bioghist", "accessrestrict", "userestrict"):
        el = arch.find(f"e:{tag}", ns)
        if el is not None:
            lines += [f"## {text(el.find('e:head', ns)) or tag}", ""]
            lines += [text(p) for p in el.findall("e:p", ns)] + [""]
    for c in arch.iter("{urn:isbn:1-931666-22-9}c", "{urn:isbn:1-931666-22-9}c01", "{urn:isbn:1-931666-22-9}c02"):
        did = c.find("e:did", ns)
        ctitle = text(did.find("e:unittitle", ns))
        cdate = text(did.find("e:unitdate", ns))
        containers = ", ".join(f"{(k.get('type') or 'Container').title()} {text(k)}" for k in did.findall("e:container", ns))
        lines += [f"## {ctitle}" + (f", {cdate}" if cdate else ""), "", f"Title: {ctitle}"]
        if cdate:
            lines.append(f"Date: {cdate}")
        if containers:
            lines.append(f"Location: {containers}")
        lines.append(f"Component id: {c.get('id', '')}")
        scope = c.find("e:scopecontent", ns)
        if scope is not None:
            lines.append(text(scope))
        lines.append("")
    return "\n".join(lines) + "\n"


def warc_pages(path: Path, uris: set[str], attribution: str):
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh):
            uri = rec.rec_headers.get_header("WARC-Target-URI")
            if rec.rec_type != "response" or uri not in uris:
                continue
            date = rec.rec_headers.get_header("WARC-Date")
            doc = html.fromstring(rec.content_stream().read())
            for bad in doc.xpath("//script|//style|//noscript"):
                bad.drop_tree()
            title = clean(doc.findtext(".//title") or uri)
            body = [clean(t) for t in doc.xpath("//body//text()") if len(clean(t)) > 2]
            stamp = re.sub(r"\D", "", date)[:14]
            yield stamp, "\n".join([
                "---", f"title: {title}", f"record_id: {rec.rec_headers.get_header('WARC-Record-ID').strip('<>')}",
                f"date: {date}", f"locator: captured {date[:10]} — {uri}",
                f"link: https://web.archive.org/web/{stamp}/{uri}",
                f"source: warc/aut/{path.name}", f"licence: {attribution}", "---", f"# {title}", "",
                f"Archived copy of {uri} captured {date}.", "", *body, ""])


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED}: shared data not found", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for rel, limit, attribution in MARC_FILES:
        with (SHARED / rel).open("rb") as fh:
            for i, record in enumerate(pymarc.MARCReader(fh, to_unicode=True)):
                if limit is not None and i >= limit:
                    break
                name, md = marc_markdown(record, rel, attribution)
                (OUT / f"{name}.md").write_text(md, encoding="utf-8")
    (OUT / "ead-pc0170.md").write_text(
        ead_markdown(SHARED / "ead/arclight/pc0170.xml", "projectblacklight/arclight, Apache-2.0"), encoding="utf-8")
    uris = {"http://www.archive.org/index.php", "http://www.archive.org/about/faq.php?faq_id=243"}
    for i, (stamp, md) in enumerate(warc_pages(SHARED / "warc/aut/example.warc.gz", uris, "archivesunleashed/aut, Apache-2.0")):
        (OUT / f"warc-archive-org-{stamp}-{i}.md").write_text(md, encoding="utf-8")
    print(f"wrote {len(list(OUT.glob('*.md')))} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

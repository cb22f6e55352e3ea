"""Regenerates demo/corpus/*.md from real files in ../shared/data (see demo/README.md).

The foundation slice ingests text; the records keep their real identifiers, dates and
locators. Later readers (MARC, EAD, WARC) will ingest the originals directly.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lxml import etree, html
from warcio.archiveiterator import ArchiveIterator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "demo" / "corpus"


def clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().rstrip(" /:;,")


def ead_markdown(path: Path, attribution: str) -> str:
    ns = {"e": "urn:isbn:1-931666-22-9"}
    tree = etree.parse(str(path))

    def text(el) -> str:
        return clean(" ".join(el.itertext())) if el is not None else ""

    arch = tree.find(".//e:archdesc", ns)
    title = text(arch.find("e:did/e:unittitle", ns))
    unitid = text(arch.find("e:did/e:unitid", ns))
    date = text(arch.find("e:did/e:unitdate", ns))
    lines = [
        "---",
        f"title: {title}",
        f"record_id: ead:{unitid}",
        f"date: {date}",
        f"locator: finding aid {unitid}",
        f"source: ead/arclight/{path.name}",
        f"licence: {attribution}",
        "---",
        f"# {title}",
        "",
        f"Collection number: {unitid}",
        f"Dates: {date}",
        f"Creator: {text(arch.find('e:did/e:origination', ns))}",
        f"Repository: {text(arch.find('e:did/e:repository', ns))}",
        "",
    ]
    for tag in ("scopecontent", "bioghist", "accessrestrict", "userestrict"):
        el = arch.find(f"e:{tag}", ns)
        if el is not None:
            lines += [f"## {text(el.find('e:head', ns)) or tag}", ""]
            lines += [text(p) for p in el.findall("e:p", ns)] + [""]
    for c in arch.iter("{urn:isbn:1-931666-22-9}c", "{urn:isbn:1-931666-22-9}c01", "{urn:isbn:1-931666-22-9}c02"):
        did = c.find("e:did", ns)
        ctitle = text(did.find("e:unittitle", ns))
        cdate = text(did.find("e:unitdate", ns))
        containers = ", ".join(
            f"{(k.get('type') or 'Container').title()} {text(k)}" for k in did.findall("e:container", ns)
        )
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
            yield (
                stamp,
                "\n".join(
                    [
                        "---",
                        f"title: {title}",
                        f"record_id: {rec.rec_headers.get_header('WARC-Record-ID').strip('<>')}",
                        f"date: {date}",
                        f"locator: captured {date[:10]} — {uri}",
                        f"link: https://web.archive.org/web/{stamp}/{uri}",
                        f"source: warc/aut/{path.name}",
                        f"licence: {attribution}",
                        "---",
                        f"# {title}",
                        "",
                        f"Archived copy of {uri} captured {date}.",
                        "",
                        *body,
                        "",
                    ]
                ),
            )


def write_warc_subset(source: Path, dest: Path) -> None:
    """The real records (verbatim, request + response + metadata) of the crawl's "about" and FAQ pages."""
    from warcio.warcwriter import WARCWriter

    keep = re.compile(r"^http://www\.archive\.org/(index\.php|about/(faq\.php\?faq_id=\d+|about\.php|credits\.php))$")
    with source.open("rb") as fh, dest.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for record in ArchiveIterator(fh):
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            if record.rec_type == "warcinfo" or keep.match(uri):
                writer.write_record(record)


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED}: shared data not found", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    # Catalogue records ship as the real MARC files (ingested by ingest/marc.py).
    for rel in (
        "marc/marc4j/chabon.mrc",
        "marc/traject/nature.marc",
        "marc/traject/george_eliot.marc",
        "marc/traject/louis_armstrong.marc",
    ):
        (OUT / Path(rel).name).write_bytes((SHARED / rel).read_bytes())
    raw = (SHARED / "marc/marc4j/pride-and-prejudice-fixed.mrc").read_bytes()
    (OUT / "pride-and-prejudice-first8.mrc").write_bytes(b"".join(r + b"\x1d" for r in raw.split(b"\x1d")[:8]))
    # The finding aid ships as its real EAD (ingest/ead.py); a text rendering of it is test data for the text reader.
    (OUT / "pc0170.xml").write_bytes((SHARED / "ead/arclight/pc0170.xml").read_bytes())
    (ROOT / "tests" / "data" / "text" / "ead-pc0170.md").write_text(
        ead_markdown(SHARED / "ead/arclight/pc0170.xml", "projectblacklight/arclight, Apache-2.0"), encoding="utf-8"
    )
    # The web archive ships as the real WARC (ingest/warc.py); two pages rendered to text are test data.
    write_warc_subset(SHARED / "warc/aut/example.warc.gz", OUT / "archive-org-2008-about.warc.gz")
    uris = {"http://www.archive.org/index.php", "http://www.archive.org/about/faq.php?faq_id=243"}
    text_data = ROOT / "tests" / "data" / "text"
    for i, (stamp, md) in enumerate(
        warc_pages(SHARED / "warc/aut/example.warc.gz", uris, "archivesunleashed/aut, Apache-2.0")
    ):
        (text_data / f"warc-archive-org-{stamp}-{i}.md").write_text(md, encoding="utf-8")
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

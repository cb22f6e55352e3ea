"""Test pages built from real archived pages."""

import io
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.conftest import DEMO_CORPUS

XSS_NOTICE = (
    "Security notice for the Live Music Archive: the strings &lt;script&gt;alert(1)&lt;/script&gt; "
    "and &lt;img src=x onerror=alert(1)&gt; in uploads are shown here as plain text. "
)
XSS_QUESTION = "What does the Live Music Archive security notice say?"


def xss_warc(dest: Path) -> Path:
    """The real archived FAQ page of the demo WARC, re-written with a sentence whose text is markup."""
    with (DEMO_CORPUS / "archive-org-2008-about.warc.gz").open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response" and "faq_id=252" in (
                record.rec_headers.get_header("WARC-Target-URI") or ""
            ):
                html = record.content_stream().read().decode("utf-8", "replace")
                date = record.rec_headers.get_header("WARC-Date")
                uri = record.rec_headers.get_header("WARC-Target-URI") + "&security=1"
                break
    # Inside the page's main text (the FAQ answer), where main-text extraction keeps it.
    at = html.index("FLAC stands for")
    html = html[:at] + XSS_NOTICE + html[at:]
    with dest.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=UTF-8")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                uri,
                "response",
                payload=io.BytesIO(html.encode("utf-8")),
                http_headers=http,
                warc_headers_dict={"WARC-Date": date},
            )
        )
    return dest

"""Copies of a real WARC for ingest benchmarks of web archives: each copy keeps the HTML responses only, each
page with one HTML comment naming its copy, so every copy's pages have new payload digests and are read,
extracted and embedded again (plain copies would be stored once, the rest counted as further captures).

    .venv/bin/python scripts/make_distinct_warc_copies.py ../shared/data/warc/aut/example.warc.gz 8 /tmp/copies
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# The body is re-encoded plain: headers describing the transferred bytes no longer hold.
DROPPED_HEADERS = {"content-length", "transfer-encoding", "content-encoding"}


def write_copy(source: Path, dest: Path, copy: int) -> int:
    pages = 0
    with source.open("rb") as fh, dest.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for record in ArchiveIterator(fh):
            http = record.http_headers
            content_type = (http.get_header("Content-Type") or "") if http else ""
            if record.rec_type != "response" or "html" not in content_type.lower():
                continue
            body = record.content_stream().read() + f"<!-- copy {copy} -->".encode()
            kept = [(k, v) for k, v in http.headers if k.lower() not in DROPPED_HEADERS]
            headers = StatusAndHeaders(http.statusline, kept, protocol=http.protocol)
            writer.write_record(
                writer.create_warc_record(
                    record.rec_headers.get_header("WARC-Target-URI"),
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=headers,
                    warc_headers_dict={"WARC-Date": record.rec_headers.get_header("WARC-Date")},
                )
            )
            pages += 1
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("copies", type=int)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for copy in range(args.copies):
        dest = args.dest / f"copy{copy:02d}.warc.gz"
        print(f"{dest}: {write_copy(args.source, dest, copy)} pages", flush=True)


if __name__ == "__main__":
    main()

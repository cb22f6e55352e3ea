"""Fuzzing every reader with mutations of real shared files (hypothesis, derandomised so CI is stable).

A reader may report a broken record (SkippedRecord) or give up on a file (ReaderError); either must name
the file, and a SkippedRecord its position. Any other exception is a bug that would stop a batch.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.core.types import SkippedRecord
from ingest.registry import ReaderError, get_reader

pytestmark = pytest.mark.reliability

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

# (reader, a small real file, the name the mutated copy gets: extension decides nothing, the reader does)
CASES = [
    ("marc", "marc/marc4j/summerland.mrc", "fuzz.mrc"),
    ("marc", "marc/traject/one-marc8.mrc", "fuzz.mrc"),
    ("marc", "marc/pymarc/utf8.xml", "fuzz.xml"),
    ("oai_dc", "marc/traject/sample-oai-pmh.xml", "fuzz.xml"),
    ("ead", "ead/umn/CLRC-2155.xml", "fuzz.xml"),
    ("pdf", "pdf/pypdf/habibi.pdf", "fuzz.pdf"),
    ("warc", "warc/warcio/example.warc.gz", "fuzz.warc.gz"),
    ("warc", "warc/warcio/example-iana.org-chunked.warc", "fuzz.warc"),
]


@st.composite
def mutations(draw, size: int):
    """A list of edits: flip bytes, delete a run, insert random bytes, or cut the file short."""
    edits = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        at = draw(st.integers(0, max(size - 1, 0)))
        if kind == "flip":
            edits.append((kind, at, draw(st.integers(1, 255))))
        elif kind == "delete":
            edits.append((kind, at, draw(st.integers(1, 64))))
        elif kind == "insert":
            edits.append((kind, at, draw(st.binary(min_size=1, max_size=64))))
        else:
            edits.append((kind, at, None))
    return edits


def apply(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, at, arg in edits:
        at = min(at, len(buf))
        if kind == "flip" and at < len(buf):
            buf[at] ^= arg
        elif kind == "delete":
            del buf[at : at + arg]
        elif kind == "insert":
            buf[at:at] = arg
        elif kind == "truncate":
            del buf[at:]
    return bytes(buf)


def read_all(fmt: str, path: Path) -> None:
    """Consume the reader as ingest does; only the two expected failure forms are allowed."""
    reader = get_reader(fmt)
    try:
        for item in reader(path):
            if isinstance(item, SkippedRecord):
                assert item.path.startswith(str(path)), item
                assert item.reason, item
    except ReaderError as exc:
        assert str(path) in str(exc) and exc.reason, exc


@pytest.mark.parametrize("fmt,relative,name", CASES, ids=[f"{c[0]}:{Path(c[1]).name}" for c in CASES])
def test_reader_survives_mutations_of_a_real_file(fmt, relative, name, tmp_path_factory):
    source = SHARED / relative
    if not source.exists():
        pytest.skip(f"shared data not found at {source}")
    original = source.read_bytes()
    # Mutate inside the gzip layer too, where the parser (not only zlib) meets the damage.
    gzipped = relative.endswith(".gz")
    plain = gzip.decompress(original) if gzipped else original
    folder = tmp_path_factory.mktemp(fmt)

    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(edits=mutations(len(plain)), inside_gzip=st.booleans())
    def run(edits, inside_gzip):
        data = apply(plain, edits)
        if gzipped:
            data = gzip.compress(data) if inside_gzip else apply(original, edits)
        path = folder / name
        path.write_bytes(data)
        read_all(fmt, path)
        runs.append(1)

    runs: list[int] = []
    run()
    assert len(runs) >= 20  # hypothesis really tried that many mutated files


def test_wacz_reader_survives_mutated_members(tmp_path, shared_data):
    """A WACZ is a zip: damage inside a member (the WARC, the page list, the datapackage)."""
    warc = (shared_data / "warc" / "warcio" / "example.warc.gz").read_bytes()
    members = {
        "datapackage.json": b'{"title": "fuzz", "resources": []}',
        "pages/pages.jsonl": b'{"format": "json-pages-1.0"}\n{"url": "http://example.com/", "title": "Example"}\n',
        "archive/data.warc.gz": warc,
    }

    @settings(
        max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(member=st.sampled_from(sorted(members)), edits=mutations(len(warc)))
    def run(member, edits):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in members.items():
                z.writestr(name, apply(data, edits) if name == member else data)
        path = tmp_path / "fuzz.wacz"
        path.write_bytes(buf.getvalue())
        read_all("wacz", path)

    run()

"""The chunker's sentence splitting: llama-index's, chunk for chunk, without nltk's per-pattern time limit."""

import nltk.redos
import pytest
from llama_index.core.node_parser import SentenceSplitter

from assistant.core.types import SourceRecord
from ingest.chunking import Chunker
from ingest.warc import iter_records


@pytest.fixture(scope="module")
def long_page(shared_data) -> SourceRecord:
    """The first archived page of a real WARC with over 50 k characters of text (97 k)."""
    records = iter_records(shared_data / "warc" / "aut" / "example.warc.gz")
    return next(r for r in records if isinstance(r, SourceRecord) and len(r.text) > 50_000)


def test_a_long_page_chunks_whatever_nltks_regex_time_limit(long_page, monkeypatch):
    """nltk's limit counts the CPU time of every thread of the process from the start of a scan, so under an
    ingest's embedding and store threads it failed records that split in milliseconds alone. A 2 ms limit
    stands in for that load: the page's split takes about 75 ms of CPU here (far more than 2 ms on any
    machine), each of Punkt's matches on a single word microseconds."""
    monkeypatch.setattr(nltk.redos, "DEFAULT_TIMEOUT", 0.002)
    with pytest.raises(TimeoutError):  # what llama-index's own splitter does under that limit
        SentenceSplitter(chunk_size=200, chunk_overlap=20, tokenizer=str.split).split_text(long_page.text)

    chunks = list(Chunker(chunk_tokens=200, overlap=20).chunks(long_page))

    assert len(chunks) > 50
    assert all(long_page.text.find(c.text.split("\n", 1)[-1][:200]) >= 0 for c in chunks)


def test_the_chunks_are_the_ones_llama_indexs_splitter_makes(long_page):
    """Same pieces, so the same chunk ids as before: a store ingested earlier re-ingests to nothing new."""
    default = SentenceSplitter(chunk_size=200, chunk_overlap=20, tokenizer=str.split).split_text(long_page.text)

    assert Chunker(chunk_tokens=200, overlap=20).splitter.split_text(long_page.text) == default
    assert len(default) > 50

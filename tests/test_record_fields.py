"""Labelled fields stored with each chunk: the readers' own (label, value) pairs, kept per chunk, read back whole
for a record, and the ones the evidence answers quote (never parsed back out of the display text)."""

import pytest

from assistant.answering.evidence import evidence_for
from assistant.core.types import Chunk, Provenance, Source, SourceRecord, fielded_text, fields_from_metadata
from ingest import ead, marc
from ingest.chunking import Chunker, fields_by_piece


def _records(reader, path):
    return [r for r in reader.iter_records(path) if isinstance(r, SourceRecord)]


def test_marc_fields_are_read_from_the_tags_and_shown_as_the_text(shared_data):
    (nature,) = _records(marc, shared_data / "marc/traject/nature.marc")
    assert ("ISSN", "0028-0836") in nature.fields and ("Call number", "Q1 .N2") in nature.fields
    assert ("Format", "serial") in nature.fields and ("Year", "1869") in nature.fields
    assert nature.text == fielded_text(nature.fields)
    assert all(label and value for label, value in nature.fields)


def test_ead_collection_and_component_fields(shared_data):
    kitchen = _records(ead, shared_data / "ead/saa/Kitchen_sink_AT_output_EAD_with_enumerated_Cs.xml")
    labels = [label for label, _ in kitchen[0].fields]
    assert labels[:3] == ["Collection", "Collection number", "Dates"]
    assert {"Extent", "Scope and content", "Access restrictions", "Creator"} <= set(labels)
    # A component's notes carry a reader's label ("odd" is a Note), so the answers can quote them.
    component_labels = {label for r in kitchen[1:] for label, _ in r.fields}
    assert {"Title", "Series", "Note", "Biographical / historical note"} <= component_labels
    assert not component_labels & {"odd", "bioghist", "scopecontent"}
    for record in kitchen:
        assert record.text == fielded_text(record.fields)


def test_each_field_goes_with_the_piece_its_line_starts_in():
    fields = [("Title", "A"), ("Scope and content", "long " * 30), ("Extent", "3 boxes")]
    text = fielded_text(fields)
    cut = text.index("long long long long long")
    pieces = [text[: cut + 20], text[cut + 10 :]]  # overlapping, the note split between them
    assert fields_by_piece(fields, pieces) == [[fields[0], fields[1]], [fields[2]]]
    # A field found nowhere stays with the last piece searched, not lost.
    assert fields_by_piece([("Title", "A"), ("Note", "gone")], ["Title: A"]) == [[("Title", "A"), ("Note", "gone")]]


def test_a_long_record_keeps_every_field_once_across_its_chunks(shared_data):
    (collection, *_) = _records(ead, shared_data / "ead/ncsu/mc00185.xml")
    chunks = list(Chunker(chunk_tokens=60, overlap=10).chunks(collection))
    assert len(chunks) > 3
    assert [f for c in chunks for f in c.fields or []] == collection.fields
    for c in chunks:
        for label, value in c.fields or []:
            assert f"{label}: {value}"[:40] in c.text


def test_fields_travel_in_the_chunk_metadata():
    prov = Provenance(source_type="marc", record_id="1", title="T")
    fielded = Chunk.make("Author: Chabon, Michael", prov, fields=[("Author", "Chabon, Michael")])
    assert fields_from_metadata(fielded.metadata()) == [("Author", "Chabon, Michael")]
    empty = Chunk.make("… the rest of a long note", prov, fields=[])
    assert fields_from_metadata(empty.metadata()) == []  # a fielded record's chunk that starts no field
    page = Chunk.make("Windows: download the installer", Provenance(source_type="warc", record_id="u"))
    assert "fields" not in page.metadata() and fields_from_metadata(page.metadata()) is None


def _source(**kw) -> Source:
    base = {"n": 1, "chunk_id": "c1", "source_type": "marc", "record_id": "1", "title": "Summerland"}
    return Source(**(base | kw))


def test_evidence_quotes_the_stored_fields_not_lines_parsed_from_the_text():
    # A value running over two lines: parsed from the text, the publisher would be cut at the line break.
    text = "Summerland\nAuthor: Chabon, Michael\nPublished: New York :\nMiramax Books, 2002"
    stored = _source(
        text=text, fields=[("Author", "Chabon, Michael"), ("Published", "New York :\nMiramax Books, 2002")]
    )
    assert "Miramax" in " ".join(evidence_for("Who published Summerland?", stored))
    legacy = _source(text=text)  # stored before fields were kept: the text's lines are all there is
    assert "Miramax" not in " ".join(evidence_for("Who published Summerland?", legacy))
    assert legacy.record_fields() == [("Author", "Chabon, Michael"), ("Published", "New York :")]


@pytest.mark.parametrize("source_type", ["warc", "pdf", "text"])
def test_prose_has_no_fields_even_with_colons(source_type):
    assert _source(source_type=source_type, text="Windows: download it", fields=None).record_fields() == []


def test_a_record_read_whole_from_the_store_has_all_its_fields_in_order(fake_services, shared_data):
    from assistant.answering.records import whole_records
    from assistant.answering.retrieval import make_source
    from tests.conftest import ingest

    path = shared_data / "marc/marc4j/chabon.mrc"
    ingest(fake_services, [path])
    records = _records(marc, path)
    stored = list(fake_services.store.iter_chunks())
    # Cut each record in two chunks, as a long record would be, and read one of them back as a source.
    record = records[0]
    halves = [record.fields[:3], record.fields[3:]]
    prov = record.provenance
    chunks = [Chunk.make(fielded_text(h), prov, position=i, fields=h) for i, h in enumerate(halves)]
    fake_services.store.delete([c.id for c in stored if c.metadata["record_id"] == prov.record_id])
    fake_services.store.add(chunks, [fake_services.embedder.get_text_embedding(c.text) for c in chunks])
    second = chunks[1]
    (source,) = whole_records(fake_services.store, [make_source(1, second.id, second.text, second.metadata(), 1.0)])
    assert source.fields == record.fields
    assert [cid for cid, _ in source.record_chunks] == [c.id for c in chunks]


def test_the_chunkers_token_counts_are_minilms_own_so_chunks_and_ids_stay_the_same(shared_data, tmp_path):
    """model_tokenizer asks the Rust tokenizer for ids (faster than transformers' wrapper): for whole records,
    longer than the window tokenizer.json pads and cuts to, it counts what MiniLM's tokenizer counts, so the
    chunks (and their ids) are the ones the wrapper made; a model dir without tokenizer.json uses the wrapper."""
    import shutil

    from transformers import AutoTokenizer

    from assistant.backends.embeddings import resolve_model_path
    from ingest.chunking import model_tokenizer

    model = resolve_model_path("bundled:all-MiniLM-L6-v2")
    wrapper = AutoTokenizer.from_pretrained(model)
    records = _records(marc, shared_data / "marc/pymarc/test.dat") + _records(ead, shared_data / "ead/ncsu/mc00185.xml")
    texts = [r.text for r in records]
    assert max(len(wrapper.tokenize(t)) for t in texts) > 512  # past the file's own padding and cut
    fast = model_tokenizer(model)
    assert [len(fast(t)) for t in texts] == [len(wrapper.tokenize(t)) for t in texts]
    made = Chunker(200, 20, fast)
    before = Chunker(200, 20, wrapper.tokenize)
    assert [c.id for r in records for c in made.chunks(r)] == [c.id for r in records for c in before.chunks(r)]

    no_json = tmp_path / "model"
    shutil.copytree(model, no_json, ignore=shutil.ignore_patterns("tokenizer.json", "*.safetensors"))
    assert len(model_tokenizer(str(no_json))(texts[0])) == len(wrapper.tokenize(texts[0]))

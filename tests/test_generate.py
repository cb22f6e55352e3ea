"""The generated question sets: read independently of refdesk's readers, yet every gold record is one that
refdesk's own ingest of the same files stores; splits are disjoint by record and stable for a seed."""

from __future__ import annotations

import json
import random

from assistant.core.types import SourceRecord
from eval.generate import generate, marc_books, marc_questions, split_of
from ingest.registry import detect_format, get_reader


def refdesk_ids(paths) -> set[tuple[str, str]]:
    out = set()
    for path in paths:
        for item in get_reader(detect_format(path))(path):
            if isinstance(item, SourceRecord):
                out.add((item.provenance.source_type, item.provenance.record_id))
    return out


def test_gold_records_are_records_refdesk_stores(shared_data, tmp_path):
    data = tmp_path / "data"
    (data / "marc").mkdir(parents=True)
    (data / "ead").mkdir()
    files = [shared_data / "marc/marc4j/pride-and-prejudice-fixed.mrc", shared_data / "marc/traject/george_eliot.marc"]
    for f in files:
        (data / "marc" / f.name).write_bytes(f.read_bytes())
    ead = shared_data / "ead/arclight/pc0170.xml"
    (data / "ead" / ead.name).write_bytes(ead.read_bytes())
    summary = generate(data, 7, tmp_path / "sets")
    assert summary["questions"] >= 300
    items = [json.loads(line) for name in ("dev", "heldout") for line in (tmp_path / "sets" / f"{name}.jsonl").open()]
    assert len(items) == summary["questions"]
    stored = refdesk_ids([*(data / "marc").iterdir(), *(data / "ead").iterdir()])
    gold = {(g["source_type"], g["record_id"]) for item in items for g in item["gold"]}
    assert gold and gold <= stored, sorted(gold - stored)[:5]
    kinds = {t for item in items for t in item["tags"] if t.startswith("type:")}
    assert {"type:known-item", "type:identifier-isbn", "type:author-of", "type:finding-aid", "type:negative"} <= kinds
    assert all(not item["gold"] for item in items if "type:negative" in item["tags"])


def test_splits_are_by_record_and_stable(shared_data):
    books = marc_books(shared_data / "marc" / "marc4j")
    one = marc_questions(books, random.Random(3))
    two = marc_questions(books, random.Random(3))
    assert [q.question for q in one] == [q.question for q in two]
    for q in one:  # every question about a record lands in that record's split
        assert split_of(3, q.key) == split_of(3, q.key)
    keys = {q.key for q in one}
    dev = {k for k in keys if split_of(3, k) == "dev"}
    assert 0.3 < len(dev) / len(keys) < 0.7
    assert dev != {k for k in keys if split_of(4, k) == "dev"}  # another seed, another split

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
    # The answer sets: key facts read from the record's own fields, conditions the records do not meet.
    answers = [
        json.loads(line) for name in ("dev", "heldout") for line in (tmp_path / "sets" / f"answers-{name}.jsonl").open()
    ]
    assert len(answers) == summary["answer_sets"]["questions"] >= 50
    by_kind: dict[str, list] = {}
    for item in answers:
        by_kind.setdefault(next(t for t in item["tags"] if t.startswith("type:")), []).append(item)
    assert {"type:fact-author", "type:follow-up", "type:condition-year-not-held", "type:collection"} <= set(by_kind)
    assert all(item["key_facts"] for k in ("type:fact-author", "type:follow-up") for item in by_kind[k])
    assert all(item["history"] and item["question"].endswith("it?") for item in by_kind["type:follow-up"])
    assert all(item["expect"] == "not_held" for item in by_kind["type:condition-year-not-held"])
    answer_gold = {(g["source_type"], g["record_id"]) for item in answers for g in item["gold"]}
    assert answer_gold <= stored
    # A record's questions share its split across both kinds of set.
    split_of_record = {
        g["record_id"]: name
        for name in ("dev", "heldout")
        for line in (tmp_path / "sets" / f"{name}.jsonl").open()
        for g in json.loads(line)["gold"][:1]
        if len(json.loads(line)["gold"]) == 1
    }
    for name in ("dev", "heldout"):
        for line in (tmp_path / "sets" / f"answers-{name}.jsonl").open():
            item = json.loads(line)
            if "type:fact-author" in item["tags"] and len(item["gold"]) == 1:
                assert split_of_record.get(item["gold"][0]["record_id"], name) == name


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

"""Whole records for the evidence: a catalogue record is chunked (its title and imprint in one chunk, its
ISBNs and call numbers in the next), but a librarian reads the record. Each retrieved chunk of a fielded
record (FIELDED_SOURCE_TYPES) is replaced by the record it belongs to, read from the store in position
order, and the record takes one source place however many of its chunks were retrieved. The checker then
verifies a citation against every chunk of that record (each by its content hash)."""

from __future__ import annotations

from assistant.core.types import FIELDED_SOURCE_TYPES, Source, fields_from_metadata

MAX_RECORD_CHUNKS = 12  # a record longer than this (a long finding-aid note) stays the retrieved chunk only


def whole_records(store, sources: list[Source]) -> list[Source]:
    fielded = [s for s in sources if s.source_type in FIELDED_SOURCE_TYPES and s.record_id and s.source_file]
    parts: dict[tuple[str, str], list] = {}
    if fielded:
        clauses = [
            {"$and": [{"record_id": s.record_id}, {"source_file": s.source_file}]}
            for s in {(s.record_id, s.source_file): s for s in fielded}.values()
        ]
        where = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        for chunk in store.iter_chunks(where=where):
            record = (str(chunk.metadata.get("record_id", "")), str(chunk.metadata.get("source_file", "")))
            parts.setdefault(record, []).append(chunk)
    out: list[Source] = []
    seen: set[tuple[str, str]] = set()
    for source in sources:
        key = (source.source_type, source.record_id)
        if source.source_type in FIELDED_SOURCE_TYPES:
            if key in seen:
                continue  # another chunk of a record already given a place
            seen.add(key)
            found = parts.get((source.record_id, source.source_file), [])
            chunks = sorted(found, key=lambda c: int(c.metadata.get("position", 0) or 0))
            if 1 < len(chunks) <= MAX_RECORD_CHUNKS and any(c.id == source.chunk_id for c in chunks):
                stored_fields = [fields_from_metadata(c.metadata) for c in chunks]
                source = source.model_copy(
                    update={
                        "text": "\n".join(c.text for c in chunks),
                        "record_chunks": [(c.id, str(c.metadata.get("content_hash", ""))) for c in chunks],
                        # Each chunk holds the fields whose line starts in it: in position order, the record's.
                        "fields": None
                        if any(f is None for f in stored_fields)
                        else [field for f in stored_fields for field in f or []],
                    }
                )
        out.append(source)
    return [s.model_copy(update={"n": n}) for n, s in enumerate(out, 1)]

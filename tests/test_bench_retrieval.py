"""`refdesk bench retrieval`'s synthetic store: real chunks re-numbered, indexed like an ingest, kept and
reused when asked (a million chunks take an hour to copy)."""

from tests.conftest import catalogue_and_finding_aid, ingest


def test_a_kept_synthetic_store_is_made_once_and_timed_again(fake_services, demo_copy, tmp_path):
    from eval.bench import bench_retrieval, temp_services

    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    real = fake_services.store.count()
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who wrote Summerland?"}\n{"question": "Do you have Middlemarch?"}\n')
    keep = tmp_path / "synthetic"
    size = 2 * real + 3

    first = bench_retrieval(fake_services, size, str(questions), n=2, keep=str(keep))
    assert first["reused"] is False and first["chunks"] == size and first["real_chunks"] == real
    assert first["hybrid_p95_ms"] > 0 and first["dense_p95_ms"] > 0 and first["store_mb"] > first["lexical_index_mb"]
    synthetic = temp_services(fake_services.settings, str(keep)).store
    assert synthetic.lexical.count() == synthetic.count() == size  # the index holds every copy
    records = {c.metadata["record_id"] for c in synthetic.iter_chunks()}
    assert any(r.endswith("~2") for r in records)  # the third round of copies has its own record ids

    again = bench_retrieval(fake_services, size, str(questions), n=2, keep=str(keep))
    assert again["reused"] is True and again["chunks"] == size and "chroma_add_s" not in again

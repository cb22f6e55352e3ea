"""The Ray Data engine against the local one: the same chunk ids, records and counts from real shared files,
writes to a real Chroma server, re-ingest, a changed record, --sync and a resumed run, on a local Ray
cluster with 2 worker nodes."""

import shutil

import numpy as np
import pytest

from assistant.core.settings import Settings
from assistant.services import Services

pytestmark = pytest.mark.integration

# One of each kind, small: a MARC file, an EAD, a PDF inventory, a WARC, a page and its revisit in another
# WARC (stored once, across files), a MARC file that breaks part-way and one that cannot be read at all.
FILES = [
    "marc/pymarc/multi_isbn.dat",
    "marc/marc4j/chabon.mrc",
    "ead/umn/CLRC-2155.xml",
    "pdf/findingaid_mc00062.pdf",
    "warc/warcio/example.warc.gz",
    "warc/pywb/example-url-agnostic-orig.warc.gz",
    "warc/pywb/example-url-agnostic-revisit.warc.gz",
    "broken/TRUNCATED_marc4j_pride-and-prejudice.mrc",
    "broken/EMPTY.mrc",
]
COUNTS = (
    "files",
    "files_unchanged",
    "files_failed",
    "records",
    "chunks_added",
    "chunks_unchanged",
    "chunks_removed",
    "captures_added",
    "stored_elsewhere",
    "left_out",
)


@pytest.fixture
def corpus(shared_data, tmp_path):
    dest = tmp_path / "corpus"
    dest.mkdir()
    for name in FILES:
        shutil.copy(shared_data / name, dest / name.replace("/", "__"))
    return dest


def _services(tmp_path, name, embedding, store=None, **ray):
    settings = Settings.load(
        data_dir=str(tmp_path / name),
        embedding=embedding,
        store=store or {"mode": "embedded"},
        ingest={"ray": ray},
    )
    return Services(settings)


def _ingest(services, paths, engine, sync=False):
    manifest = services.manifest()
    try:
        return services.ingestor(manifest, progress=False, engine=engine).ingest([str(p) for p in paths], sync=sync)
    finally:
        manifest.close()


def _manifest_rows(services):
    manifest = services.manifest()
    try:
        return sorted(manifest.db.execute("SELECT chunk_id, path, record_id FROM chunks"))
    finally:
        manifest.close()


def _counts(summary):
    return {k: v for k, v in summary.as_dict().items() if k in COUNTS}


def test_ray_and_local_engines_store_the_same_chunks(ray_cluster, chroma_server, clean_env, tmp_path, corpus):
    """The real MiniLM in 2 embedding actors, writing to a Chroma server, against the local engine."""
    local = _services(tmp_path, "local", {})
    server = {"mode": "server", "host": chroma_server["host"], "port": chroma_server["port"], "collection": "ray"}
    on_ray = _services(tmp_path, "ray", {}, server, address=ray_cluster)
    by_local = _ingest(local, [corpus], "local")
    by_ray = _ingest(on_ray, [corpus], "ray")
    assert by_ray.engine == "ray" and by_local.engine == "local"
    assert _counts(by_ray) == _counts(by_local)
    assert by_ray.files_failed == 1 and by_ray.stored_elsewhere >= 1 and by_ray.chunks_added > 50
    assert sorted(s.line() for s in by_ray.skipped) == sorted(s.line() for s in by_local.skipped)
    failed = {s.path.rsplit("/", 1)[-1] for s in by_ray.skipped}
    assert {"broken__EMPTY.mrc", "broken__TRUNCATED_marc4j_pride-and-prejudice.mrc"} <= failed
    assert _manifest_rows(on_ray) == _manifest_rows(local)
    # The server holds the chunks (the lexical index beside it too), with the same vectors as the local run.
    chunk_ids = [row[0] for row in _manifest_rows(local)]
    ids, vectors = on_ray.store.vectors(chunk_ids)
    local_ids, local_vectors = local.store.vectors(chunk_ids)
    assert on_ray.store.count() == on_ray.store.lexical.count() == len(ids) == len(local_ids) == by_local.chunks_added
    order = {chunk_id: i for i, chunk_id in enumerate(local_ids)}
    cosines = [float(np.dot(vectors[i], local_vectors[order[c]])) for i, c in enumerate(ids)]
    assert min(cosines) > 0.999
    hit = on_ray.retriever.retrieve("Summerland Chabon baseball fairies", 1)[0]
    assert hit.record_id == "12883376"


def test_ray_reingest_change_sync_and_resume(ray_cluster, clean_env, tmp_path, corpus):
    import signal

    def clean_stop(signum, frame):  # what `refdesk ingest` sets; ray.init would replace it with sys.exit()
        raise KeyboardInterrupt

    services = _services(tmp_path, "data", {"backend": "fake", "model": "hash"}, address=ray_cluster)
    previous = signal.signal(signal.SIGTERM, clean_stop)
    try:
        first = _ingest(services, [corpus], "ray")
        assert signal.getsignal(signal.SIGTERM) is clean_stop
    finally:
        signal.signal(signal.SIGTERM, previous)
    stored = services.store.count()
    assert first.chunks_added == stored > 0

    again = _ingest(services, [corpus], "ray")
    assert (again.chunks_added, again.chunks_removed, again.chunks_unchanged) == (0, 0, stored)
    assert again.files_unchanged == len(FILES) - 1  # the broken file is read again each time

    ead = corpus / "ead__umn__CLRC-2155.xml"
    text = ead.read_text()
    assert "<unittitle> Corrected Page Proof </unittitle>" in text
    ead.write_text(text.replace("Corrected Page Proof", "Corrected Page Proof, second state", 1))
    changed = _ingest(services, [ead], "ray")
    assert (changed.chunks_added, changed.chunks_removed) == (1, 1)
    assert changed.chunks_unchanged > 0  # the file's other chunks were not embedded again
    assert services.store.count() == stored

    # A run that stopped after storing a file's chunks but before its manifest entry: the next run finds
    # them stored, stores nothing twice and records the file.
    marc = str(corpus / "marc__marc4j__chabon.mrc")
    manifest = services.manifest()
    chabon = manifest.chunk_ids(marc)
    manifest.forget_file(marc)
    manifest.close()
    resumed = _ingest(services, [corpus], "ray")
    assert (resumed.chunks_added, resumed.files_unchanged) == (0, len(FILES) - 2)
    assert resumed.chunks_unchanged == stored
    manifest = services.manifest()
    assert manifest.chunk_ids(marc) == chabon
    manifest.close()

    (corpus / "pdf__findingaid_mc00062.pdf").unlink()
    synced = _ingest(services, [corpus], "ray", sync=True)
    assert synced.chunks_removed > 0 and synced.chunks_added == 0
    assert services.store.count() == stored - synced.chunks_removed

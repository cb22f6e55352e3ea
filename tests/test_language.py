"""The language of records that state none, guessed by lingua, and stated languages as one English name."""

import pytest

from assistant.core.types import Provenance, SourceRecord
from ingest import ead, marc
from ingest.language import LanguageTagger, language_name


@pytest.fixture(scope="module")
def tagger():
    return LanguageTagger()


def _real(reader, path):
    return [r for r in reader.iter_records(path) if isinstance(r, SourceRecord)]


def _unstated(record: SourceRecord) -> SourceRecord:
    """The record's own text as a PDF page would hold it: no coded language."""
    prov = Provenance(source_type="pdf", record_id=record.provenance.record_id, title=record.provenance.title)
    return SourceRecord(provenance=prov, text=record.text)


def test_stated_codes_become_the_names_the_catalogue_uses(tagger):
    assert [language_name(c) for c in ("fr", "fre", "fra", "ger", "he")] == [
        "French",
        "French",
        "French",
        "German",
        "Hebrew",
    ]
    assert language_name("English") == "English" and language_name("xx") == "xx"
    page = SourceRecord(provenance=Provenance(source_type="warc", record_id="u"), text="…", filters={"language": "de"})
    assert tagger.tag(page).filters == {"language": "German"}  # <html lang="de">: stated, so not guessed


def test_an_unstated_language_is_guessed_with_its_confidence(tagger, shared_data):
    # Real records whose catalogue codes German: read as if nothing said so.
    german = [r for r in _real(marc, shared_data / "marc/marc4j/pride-and-prejudice-fixed.mrc")]
    german = [r for r in german if r.filters.get("language") == "German" and len(r.text) > 200][:3]
    assert german
    for record in german:
        guessed = tagger.tag(_unstated(record)).filters
        assert guessed["language_source"] == "detected" and 0.5 <= guessed["language_confidence"] <= 1.0


def test_an_english_finding_aid_is_english_and_too_little_text_is_no_guess(tagger, shared_data):
    records = _real(ead, shared_data / "ead/ncsu/mc00185.xml")
    tagged = [tagger.tag(r).filters.get("language") for r in records]
    assert tagged.count("English") >= len(records) // 2
    assert set(tagged) <= {"English", None}
    short = SourceRecord(provenance=Provenance(source_type="pdf", record_id="p"), text="Box 3, Folder 12")
    assert "language" not in tagger.tag(short).filters


def test_web_addresses_are_not_evidence_of_a_language(tagger):
    # The main text of the shared aut/example.arc.gz home page: with its address read as words, lingua said Maori.
    page = "Please visit our website at:\nhttp://www.archive.org"
    assert tagger.guess_language(page) is None  # 23 letters of words are too few to guess from
    assert tagger.guess_language(page + " " + "https://www.archive.org/details/texts " * 5) is None
    english = "Please visit our website, where the archive keeps copies of web pages and books for everyone."
    assert tagger.guess_language(english + " http://www.archive.org").name == "English"


def test_labels_are_not_evidence_of_a_language(tagger):
    fields = [
        ("Title", "Korrespondenz mit dem Verlag über die zweite Auflage und ihre Abbildungen"),
        ("Location", "Box 3"),
    ]
    record = SourceRecord(
        provenance=Provenance(source_type="ead", record_id="c1", title=fields[0][1]),
        text="\n".join(f"{k}: {v}" for k, v in fields),
        fields=fields,
    )
    assert "Title:" not in tagger._sample(record) and "Box 3" not in tagger._sample(record)
    assert tagger.tag(record).filters["language"] == "German"


def test_ingest_stores_the_guess_in_the_chunk_metadata(fake_services, shared_data):
    from tests.conftest import ingest

    ingest(fake_services, [shared_data / "ead/ncsu/mc00185.xml"])
    metas = [c.metadata for c in fake_services.store.iter_chunks()]
    detected = [m for m in metas if m.get("language_source") == "detected"]
    assert detected and all(m["language"] == "English" for m in detected)
    assert all(isinstance(m["language_confidence"], float) for m in detected)


class _TasksHere:
    """The extraction worker's interface, each task run at once in this process; broken: the worker is gone."""

    def __init__(self, broken: bool = False):
        self.inline_only = False
        self.broken = broken
        self.tasks: list[int] = []  # samples handed in each task

    def submit(self, work, samples, *args):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        self.tasks.append(len(samples))
        future: Future = Future()
        if self.broken:
            future.set_exception(BrokenProcessPool("the worker died"))
        else:
            future.set_result(work(samples, *args))
        return future


def _german_and_french(shared_data) -> tuple[list[SourceRecord], SourceRecord]:
    """Real German catalogue records, read as if nothing said so, and one whose language is stated ("fr")."""
    german = [r for r in _real(marc, shared_data / "marc/marc4j/pride-and-prejudice-fixed.mrc")]
    german = [_unstated(r) for r in german if r.filters.get("language") == "German" and len(r.text) > 200]
    stated = SourceRecord(
        provenance=Provenance(source_type="warc", record_id="s"), text="…", filters={"language": "fr"}
    )
    return german, stated


def test_guesses_made_in_the_worker_come_back_in_the_order_read(tagger, shared_data):
    """Records wait for their task's guesses; everything read after them waits too, so the reader's order
    holds; a reader error comes after the records read before it."""
    from assistant.core.types import Ignored
    from ingest.language import GUESSES_PER_TASK
    from ingest.registry import ReaderError

    german, stated = _german_and_french(shared_data)
    batch = (german * GUESSES_PER_TASK)[: GUESSES_PER_TASK + 3]  # one full task and three more
    items = [stated, Ignored(reason="redirect"), *batch]

    def reader():
        yield from items
        raise ReaderError("x.mrc", "cut off", record="after record 70")

    worker = _TasksHere()
    out = []
    with pytest.raises(ReaderError, match="cut off"):
        for item in tagger.tag_all(reader(), worker):
            out.append(item)
    assert out == items and worker.tasks == [GUESSES_PER_TASK, 3]
    assert stated.filters == {"language": "French"}  # stated: named, not guessed
    here = [tagger.tag(r.model_copy(deep=True)).filters for r in german]  # guessed in this thread
    assert [r.filters for r in german] == here and "German" in {f["language"] for f in here}


def test_records_with_nothing_to_guess_pass_on_at_once(tagger, shared_data):
    """A catalogue whose records state their language: each comes out as soon as it is read, no task made."""
    _, stated = _german_and_french(shared_data)
    read = []

    def reader():
        for n in range(3):
            read.append(n)
            yield stated

    worker = _TasksHere()
    out = tagger.tag_all(reader(), worker)
    next(out)
    assert read == [0]
    assert len(list(out)) == 2 and worker.tasks == []


def test_guesses_are_made_here_once_the_worker_is_gone(tagger, shared_data):
    german, _ = _german_and_french(shared_data)
    worker = _TasksHere(broken=True)
    here = [tagger.tag(r.model_copy(deep=True)).filters for r in german]
    out = list(tagger.tag_all(iter(german), worker))
    assert out == german and worker.inline_only
    assert [r.filters for r in out] == here and all(f["language_source"] == "detected" for f in here)


def test_a_finding_aid_is_guessed_in_the_extraction_worker_as_it_is_here(tagger, shared_data):
    """The real worker process: the same guesses as in this thread, dozens of folders a task."""
    from ingest.language import GUESSES_PER_TASK
    from tests.conftest import recording_extractor

    path = shared_data / "ead/ncsu/mc00062.xml"  # hundreds of folders: several tasks
    here = [tagger.tag(r) if isinstance(r, SourceRecord) else r for r in ead.iter_records(path)]
    with recording_extractor() as extractor:
        in_worker = list(tagger.tag_all(ead.iter_records(path), extractor))
    assert in_worker == here
    records = sum(isinstance(r, SourceRecord) for r in here)
    assert 2 <= extractor.handed.count("guess_languages") <= records // GUESSES_PER_TASK + 1

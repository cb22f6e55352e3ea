"""Web archives read each on its own, with the holders a first pass assigned them (ingest.payloads), decide
every page as one sequential read of the run does: the same chunks, the same further captures of the same
stored records, the same payloads claimed, so the Ray engine can read a run's archives in parallel.

Real shared files that share content: an ARC and its WARC conversion (94 identical pages), the same crawl
cut off part-way, a page and its revisit in another file, a WARC of duplicates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assistant.core.settings import Settings
from assistant.services import read_stage_for
from ingest.payloads import Holder, PayloadIndex, PlannedPayload, holders_before
from ingest.registry import detect_format
from ingest.stages import FileJob, FileRead

FILES = [
    "warc/pywb/example-url-agnostic-revisit.warc.gz",  # its revisit's original comes in a later file
    "warc/aut/example.arc.gz",
    "broken/TRUNCATED_aut_example.warc.gz",
    "warc/pywb/example-url-agnostic-orig.warc.gz",
    "warc/aut/example.warc.gz",
    "warc/pywb/dupes.warc.gz",
    "warc/pywb/example-url-agnostic-revisit.warc.gz",
]

PACKAGED = ["warc/pywb/example-url-agnostic-orig.warc.gz", "warc/pywb/dupes.warc.gz", "warc/warcio/example.warc.gz"]


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    settings = Settings.load(
        data_dir=str(tmp_path_factory.mktemp("data")),
        embedding={"backend": "fake", "model": "hash"},
        ingest={"detect_language": False},
    )
    return read_stage_for(settings)


def _jobs(shared_data: Path, names: list[str]) -> list[FileJob]:
    jobs = []
    for name in dict.fromkeys(names):  # a file is read once a run
        path = (shared_data / name).resolve()
        jobs.append(FileJob(path, detect_format(path) or "", "", path.stat().st_size))
    return jobs


@pytest.fixture(scope="module")
def package(shared_data, tmp_path_factory) -> Path:
    """A WACZ (py-wacz, page text listed) of three real WARCs: its members share what they have seen."""
    from tests.test_wacz import make_wacz

    out = tmp_path_factory.mktemp("wacz") / "three.wacz"
    return make_wacz([shared_data / name for name in PACKAGED], out, "-t", "-d")


def _read(stage, job: FileJob, payloads: PayloadIndex) -> tuple[list[str], dict]:
    *chunks, read = stage.file(job, payloads)
    assert isinstance(read, FileRead)
    found = {f.name: getattr(read, f.name) for f in dataclasses.fields(read) if f.name != "job"}
    return [chunk.id for chunk in chunks], found


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_archives_read_alone_with_their_planned_holders_decide_as_one_sequential_read(stage, shared_data, order):
    names = FILES if order == "as listed" else FILES[::-1]
    jobs = _jobs(shared_data, names)
    earlier_run = {"sha1:not-in-these-files": Holder("/elsewhere.warc.gz", "urn:uuid:1")}

    shared = PayloadIndex(earlier_run)
    sequential = {job.path.name: _read(stage, job, shared) for job in jobs}

    views = holders_before([stage.payload_plan(job) for job in jobs], earlier_run)
    planned = list(zip(jobs, views, strict=True))
    alone = {job.path.name: _read(stage, job, PayloadIndex(view)) for job, view in reversed(planned)}  # any order

    assert alone == sequential
    # The files do share content, so the plan had something to decide: stored once, captured again elsewhere.
    assert sum(found["stored_elsewhere"] for _, found in sequential.values()) >= 100
    assert sum(len(found["payloads"]) for _, found in sequential.values()) >= 90
    assert sum(len(found["captures"]) for _, found in sequential.values()) >= 1


def test_a_web_archive_package_read_alone_decides_as_in_the_sequential_read(stage, shared_data, package):
    """A WACZ between WARCs holding the same pages: before them, then after them."""
    # The package's three WARCs on their own, and a revisit of the package's first page.
    warcs = _jobs(shared_data, [*PACKAGED, "warc/pywb/example-url-agnostic-revisit.warc.gz"])
    (wacz,) = [FileJob(package, "wacz", "", package.stat().st_size)]
    for jobs in ([wacz, *warcs], [*warcs, wacz]):
        shared = PayloadIndex()
        sequential = {job.path.name: _read(stage, job, shared) for job in jobs}
        views = holders_before([stage.payload_plan(job) for job in jobs], {})
        alone = {job.path.name: _read(stage, job, PayloadIndex(view)) for job, view in zip(jobs, views, strict=True)}
        assert alone == sequential
        assert sum(found["stored_elsewhere"] for _, found in sequential.values()) >= 2


def test_a_file_is_planned_with_the_holders_before_it_not_its_own_claims():
    """The replay's rules, one by one: a payload seen earlier in its file is not stored again; one held by
    another file is not; storing claims every key not held yet; a file's view leaves its own claims out
    (the reader's claim would skip a key it finds held, and the manifest would lose it)."""
    a, b = "/a.warc.gz", "/b.warc.gz"
    plan_a = [
        PlannedPayload(a, ("d1", "s1"), "a1", True),
        PlannedPayload(a, ("d1", "s1"), "a2", True),  # the same payload again in the file
        PlannedPayload(a, ("d9",), "a3", False),  # looked up only (a revisit, a type not indexed)
    ]
    plan_b = [
        PlannedPayload(b, ("d2", "s1"), "b1", True),  # same content, another digest: held by a
        PlannedPayload(b, ("d3", "s3"), "b2", True),
        PlannedPayload(b, ("d0",), "b3", False),
    ]
    known = {"d0": Holder("/old.warc.gz", "o1")}

    view_a, view_b = holders_before([plan_a, plan_b], known)

    assert view_a == {}
    assert view_b == {"s1": Holder(a, "a1"), "d0": Holder("/old.warc.gz", "o1")}
    # b1 was held elsewhere, so its own digest was never claimed; a third file sees what a and b claimed.
    (view_c,) = holders_before([plan_a, plan_b, [PlannedPayload("/c", ("d1", "d2", "s3", "d9"), "c1", True)]], known)[
        2:
    ]
    assert view_c == {"d1": Holder(a, "a1"), "s3": Holder(b, "b2")}

"""The real path: bundled MiniLM + embedded Chroma + vLLM on CPU serving the bundled SmolLM2."""

import json
import os
import subprocess
import sys

import pytest

from assistant.backends.llm import OpenAICompatibleChat
from assistant.core.settings import LLMSettings, Settings
from assistant.services import Services
from tests.conftest import ROOT, ingest

pytestmark = [pytest.mark.integration, pytest.mark.vllm]


@pytest.fixture(scope="module")
def real_services(vllm_server, real_embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("vllm-data")
    settings = Settings.load(data_dir=str(data))
    llm = OpenAICompatibleChat(LLMSettings(base_url=vllm_server["base_url"], model=vllm_server["model"]))
    services = Services(settings, llm=llm, embedder=real_embedder)
    ingest(services, [ROOT / "demo" / "corpus"])
    return services


def test_llm_status_reports_the_running_server(vllm_server):
    out = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--data-dir", str(ROOT / "data"), "llm", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    status = json.loads(out.stdout)
    assert status["healthy"] is True and status["url"] == vllm_server["base_url"]


@pytest.mark.parametrize(
    "question,routed",
    [
        ("Who wrote Summerland?", False),
        ("What is the ISSN of Nature?", True),
        ("Which box holds the A-C photographs of the Stanford marching band?", True),
    ],
)
def test_real_answers_cite_only_stored_retrieved_chunks(real_services, question, routed):
    answer = real_services.answers.ask(question)
    assert answer.error == ""
    assert ("generate" in answer.timings) is not routed  # look-ups never reach the model
    assert not answer.refused, "the demo corpus answers this question"
    assert_citations_resolve(real_services, answer)


@pytest.mark.parametrize(
    "question", ["Who wrote Summerland?", "What photographs of the Stanford marching band do you hold?"]
)
def test_plain_model_output_goes_through_the_checker(real_services, question):
    """Without evidence-first, every sentence the real model writes is checked; only supported ones show."""
    real_services.answers.evidence_first = False
    try:
        answer = real_services.answers.ask(question)
    finally:
        real_services.answers.evidence_first = True
    assert answer.error == "" and answer.timings["generate"] > 0
    assert answer.sentences, "the model produced no text"
    assert_citations_resolve(real_services, answer)
    supported = [s for s in answer.sentences if s.status == "supported"]
    assert answer.refused == (not supported) and answer.handoff_offered == answer.refused
    shown = [s for s in answer.sentences if s.shown]
    assert shown == supported


def assert_citations_resolve(services, answer):
    retrieved = {s.n: s for s in answer.sources}
    stored = services.store.get([s.chunk_id for s in answer.sources])
    for sentence in answer.sentences:
        for n in sentence.citations:
            assert n in retrieved
            assert stored[retrieved[n].chunk_id].metadata["content_hash"] == retrieved[n].content_hash
        if sentence.shown and sentence.kind != "template":
            assert sentence.citations and sentence.status == "supported"


def test_cli_ask_json_against_the_real_server(real_services, vllm_server):
    env = dict(
        os.environ,
        REFDESK_DATA_DIR=str(real_services.settings.data_dir),
        REFDESK_LLM__BASE_URL=vllm_server["base_url"],
        HF_HUB_OFFLINE="1",
    )
    out = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", "Who published Summerland?", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout)
    assert answer["error"] == "" and answer["sources"]
    record_ids = {s["record_id"] for s in answer["sources"]}
    assert "12883376" in record_ids
    numbers = {s["n"] for s in answer["sources"]}
    assert all(set(s["citations"]) <= numbers for s in answer["sentences"])

"""The real path: bundled MiniLM + embedded Chroma + vLLM on CPU serving the bundled SmolLM2."""
import json
import os
import subprocess
import sys

import pytest

from assistant.llm import OpenAICompatibleChat
from assistant.services import Services
from assistant.settings import LLMSettings, Settings
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
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "--data-dir", str(ROOT / "data"), "llm", "status",
                          "--json"], capture_output=True, text=True, timeout=60)
    status = json.loads(out.stdout)
    assert status["healthy"] is True and status["url"] == vllm_server["base_url"]


@pytest.mark.parametrize("question", [
    "Who wrote Summerland?",
    "What is the ISSN of Nature?",
    "Which box holds the A-C photographs of the Stanford marching band?",
])
def test_real_model_answer_cites_only_stored_retrieved_chunks(real_services, question):
    answer = real_services.answers.ask(question)
    assert answer.error == ""
    assert answer.timings["generate"] > 0
    assert answer.sentences, "the model produced no text"
    retrieved = {s.n: s for s in answer.sources}
    stored = real_services.store.get([s.chunk_id for s in answer.sources])
    for sentence in answer.sentences:
        for n in sentence.citations:
            assert n in retrieved
            assert stored[retrieved[n].chunk_id].metadata["content_hash"] == retrieved[n].content_hash
    supported = [s for s in answer.sentences if s.status == "supported"]
    assert answer.refused == (not supported)
    assert answer.handoff_offered == answer.refused
    for s in answer.sentences:  # default policy: only checked sentences are shown
        assert (s.text in answer.answer) == (s.status == "supported") or s.text in " ".join(x.text for x in supported)


def test_cli_ask_json_against_the_real_server(real_services, vllm_server):
    env = dict(os.environ, REFDESK_DATA_DIR=str(real_services.settings.data_dir),
               REFDESK_LLM__BASE_URL=vllm_server["base_url"], HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "Who published Summerland?", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout)
    assert answer["error"] == "" and answer["sources"]
    record_ids = {s["record_id"] for s in answer["sources"]}
    assert "12883376" in record_ids
    numbers = {s["n"] for s in answer["sources"]}
    assert all(set(s["citations"]) <= numbers for s in answer["sentences"])

"""Services dying under a running refdesk: the Chroma server restarts mid-session, vLLM is killed in the
middle of an answer and started again. Patrons get a clear message (never a traceback) and refdesk
recovers without being restarted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for_http

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def start_chroma(path: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("chroma")
    log = path.with_suffix(".log")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, log, 60, "chroma run")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(15)


def test_chroma_server_restart_mid_session(tmp_path, clean_env, demo_copy):
    from assistant.backends.llm import FakeChat
    from assistant.core.settings import Settings
    from assistant.services import Services
    from tests.conftest import LiveServer, catalogue_and_finding_aid, ingest

    port = free_port()
    db = tmp_path / "chroma-db"
    chroma = start_chroma(db, port)
    try:
        settings = Settings.load(
            data_dir=str(tmp_path / "data"),
            embedding={"backend": "fake", "model": "hash"},
            llm={"backend": "fake"},
            retrieval={"min_score": 0.0},
            verify={"semantic_threshold": 0.0},
            store={"mode": "server", "host": "127.0.0.1", "port": port},
        )
        services = Services(settings, llm=FakeChat())
        ingest(services, catalogue_and_finding_aid(demo_copy))
        _key, secret = services.accounts.create_key("t")
        ask = {"messages": [{"role": "user", "content": "Who wrote Summerland?"}]}
        auth = {"authorization": f"Bearer {secret}"}
        with LiveServer(services) as live:
            url = f"{live.url}/v1/chat/completions"
            assert "Chabon" in httpx.post(url, json=ask, headers=auth, timeout=60).text
            stop(chroma)
            down = httpx.post(url, json=ask, headers=auth, timeout=60)
            assert down.status_code == 200 and "Traceback" not in down.text
            body = down.json()
            assert "not reachable right now" in body["choices"][0]["message"]["content"]
            assert body["refdesk"]["handoff_offered"] is True
            chroma = start_chroma(db, port)  # same data, same port: refdesk itself is not restarted
            again = httpx.post(url, json=ask, headers=auth, timeout=60)
            assert again.status_code == 200 and "Chabon" in again.text
    finally:
        stop(chroma)


@pytest.mark.vllm
def test_vllm_killed_mid_answer_then_restarted(vllm_server, tmp_path, clean_env, demo_copy):
    from assistant.core.settings import Settings
    from assistant.services import Services
    from tests.conftest import catalogue_and_finding_aid, ingest

    settings = Settings.load(
        data_dir=str(tmp_path / "data"),
        embedding={"backend": "fake", "model": "hash"},
        retrieval={"min_score": 0.0},
        verify={"semantic_threshold": 0.0},
        llm={"base_url": vllm_server["base_url"], "model": vllm_server["model"], "timeout_s": 30},
        # The model dying mid-request is the subject here, not the lead's time budget: wait for its answer.
        answer={"lead_budget_s": 60},
    )
    services = Services(settings)
    ingest(services, catalogue_and_finding_aid(demo_copy))
    question = "Tell me about the Louis Armstrong recording and its performers."
    assert services.answers.ask(question).error == ""
    launcher = vllm_server["launcher"]
    result = {}
    asking = threading.Thread(target=lambda: result.setdefault("answer", services.answers.ask(question)))
    asking.start()
    time.sleep(0.3)  # the request is in flight at the model
    launcher.stop(log=lambda *_: None)
    asking.join(120)
    answer = result["answer"]
    assert answer.error and "not reachable" in answer.error and "Traceback" not in answer.answer
    assert answer.sources  # the patron still sees what was found
    launcher.start(wait=True, log=lambda *_: None)  # the same refdesk Services, no restart
    recovered = services.answers.ask(question)
    assert recovered.error == "" and any(s.status == "supported" for s in recovered.sentences)

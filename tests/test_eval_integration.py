"""An evaluator's path: `refdesk eval run` on the demo set against real vLLM, and the report in a real browser."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ARTIFACTS, ROOT
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.integration, pytest.mark.vllm, pytest.mark.browser]


def test_demo_set_runs_against_real_vllm_and_the_report_shows_its_plots(vllm_server, tmp_path):
    from playwright.sync_api import sync_playwright

    env = dict(
        os.environ,
        REFDESK_DATA_DIR=str(tmp_path / "data"),
        REFDESK_LLM__BASE_URL=vllm_server["base_url"],
        HF_HUB_OFFLINE="1",
    )
    cli = [sys.executable, "-m", "assistant.cli"]
    subprocess.run([*cli, "ingest", str(ROOT / "demo/corpus")], env=env, check=True, capture_output=True, timeout=600)
    out = tmp_path / "run"
    done = subprocess.run(
        [*cli, "eval", "run", str(ROOT / "eval/sets/demo.jsonl"), "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    n = sum(1 for line in (ROOT / "eval/sets/demo.jsonl").read_text().splitlines() if line.strip())
    assert summary["questions"] == n and not summary["set_errors"]
    assert "error" not in summary["outcomes"], summary["outcomes"]  # every question reached the live model or a rule
    assert summary["latency_s"]["generate"]["n"] > 0
    # What refdesk exists for: nothing unsupported is shown, no shown citation dangles.
    assert summary["metrics"]["unsupported_shown_rate"]["value"] == 0.0
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        retrieved = {(r["source_type"], r["record_id"]) for r in record["retrieved"]}
        assert {(c["source_type"], c["record_id"]) for c in record["cited"]} <= retrieved, record["id"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto((out / "report.html").as_uri(), wait_until="load")
        plots = page.locator("figure.plot svg")
        assert plots.count() == 4
        for i in range(4):
            box = plots.nth(i).bounding_box()
            assert plots.nth(i).is_visible() and box["width"] > 200 and box["height"] > 80, box
        assert page.locator("figure.plot svg path").count() > 10  # bars, boxes and axes were drawn
        assert page.get_by_role("heading", name="Metrics").is_visible()
        page.screenshot(path=str(ARTIFACTS / "eval-report.png"), full_page=True)
        browser.close()

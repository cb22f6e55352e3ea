"""A real browser (Debian's headless chromium via Playwright) asks the Gradio app a question."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ARTIFACTS, ROOT, free_port, wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.vllm]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class ServedApp(str):
    """The app's URL, carrying the environment its CLI commands need."""

    def __new__(cls, url, env):
        obj = super().__new__(cls, url)
        obj.env = env
        return obj


@pytest.fixture(scope="module")
def served_app(vllm_server, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: `make system-deps` installs Debian's chromium")
    data = tmp_path_factory.mktemp("serve-data")
    env = dict(os.environ, REFDESK_DATA_DIR=str(data), REFDESK_LLM__BASE_URL=vllm_server["base_url"],
               HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    cli = [sys.executable, "-m", "assistant.cli"]
    subprocess.run([*cli, "ingest", str(ROOT / "demo" / "corpus")], env=env, check=True, capture_output=True,
                   timeout=600)
    port = free_port()
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", proc, data / "serve.log", 180, "refdesk serve")
    yield ServedApp(url, env)
    proc.terminate()
    proc.wait(30)


def test_console_answers_with_numbered_demo_sources(served_app):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(served_app, wait_until="load")
        page.locator("#ask").wait_for(timeout=60_000)
        page.locator("#question textarea").fill("Who wrote Summerland?")
        page.locator("#ask").click()
        page.locator("#sources .source-card").first.wait_for(timeout=300_000)
        page.locator("#answer .refdesk-answer").wait_for(timeout=300_000)
        cards = page.locator("#sources .source-card")
        record_ids = [cards.nth(i).get_attribute("data-record-id") for i in range(cards.count())]
        assert "12883376" in record_ids
        assert page.locator("#source-1").count() == 1
        # Every [n] shown in the answer links to a source card on the page.
        for link in page.locator("#answer a.cite").all():
            target = link.get_attribute("href")
            assert page.locator(target).count() == 1, target
        answer_text = page.locator("#answer").inner_text()
        assert "Chabon, Michael" in answer_text  # quoted from the catalogue record, evidence first
        cites = page.locator("#answer a.cite")
        assert cites.count() >= 1
        assert page.locator("#answer .sentence.supported .badge.ok").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
        assert dialogs == []
        browser.close()


def test_refusal_offers_a_librarian_and_the_request_is_queued(served_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(served_app, wait_until="load")
        page.locator("#ask").wait_for(timeout=60_000)
        # Nothing in the demo corpus is near this: refused before the LLM is asked.
        page.locator("#question textarea").fill("What is the capital of Burkina Faso?")
        page.locator("#ask").click()
        page.locator("#answer .refusal").wait_for(timeout=120_000)
        page.locator("#contact textarea, #contact input").first.fill("patron@example.org")
        page.locator("#ask-librarian").click()
        page.locator("#handoff-status .handoff-done").wait_for(timeout=60_000)
        text = page.locator("#handoff-status").inner_text()
        assert "Sent to a librarian as request #" in text and "patron@example.org" in text
        page.screenshot(path=str(ARTIFACTS / "console-handoff.png"), full_page=True)
        browser.close()
    queued = subprocess.run([sys.executable, "-m", "assistant.cli", "handoff", "list", "--json"], env=served_app.env,
                            capture_output=True, text=True, timeout=120)
    items = __import__("json").loads(queued.stdout)
    assert [h["question"] for h in items] == ["What is the capital of Burkina Faso?"]
    assert items[0]["contact"] == "patron@example.org" and items[0]["sources"]

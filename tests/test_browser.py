"""A real browser (Debian's headless chromium via Playwright) uses the console and the patron widget."""

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ARTIFACTS, ROOT, free_port, wait_for_http
from tests.webpages import XSS_QUESTION, xss_warc

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.vllm]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


PASSWORD = "desk-password-123"


class ServedApp(str):
    """The app's URL, carrying the environment its CLI commands need and two library web sites."""

    def __new__(cls, url, env, data, site, other_site):
        obj = super().__new__(cls, url)
        obj.env, obj.data, obj.site, obj.other_site = env, data, site, other_site
        return obj


def library_site(folder, app_url):
    """A library's web page with the widget loader, served from its own origin (another port)."""
    import functools
    import http.server
    import threading

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(
        f"<!doctype html><html><body><h1>Library home</h1><script src='{app_url}/embed.js'></script></body></html>"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def served_app(vllm_server, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: `make system-deps` installs Debian's chromium")
    data = tmp_path_factory.mktemp("serve-data")
    extra = tmp_path_factory.mktemp("xss")
    logs = tmp_path_factory.mktemp("serve-logs")  # outside the data dir: the privacy test reads all of it
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    site_server, site = library_site(extra / "site", url)
    other_server, other_site = library_site(extra / "other-site", url)
    env = dict(
        os.environ,
        REFDESK_DATA_DIR=str(data),
        REFDESK_LLM__BASE_URL=vllm_server["base_url"],
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        REFDESK_SERVE__LIBRARY_NAME="Demo Library",
        REFDESK_WIDGET__ALLOWED_ORIGINS=f'["{site}"]',
    )
    cli = [sys.executable, "-m", "assistant.cli"]
    subprocess.run(
        [*cli, "ingest", str(ROOT / "demo" / "corpus"), str(xss_warc(extra / "xss.warc.gz"))],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    subprocess.run(
        [*cli, "user", "add", "librarian", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (logs / "serve.log").open("wb")
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_http(f"{url}/healthz", proc, logs / "serve.log", 180, "refdesk serve")
    yield ServedApp(url, env, data, site, other_site)
    proc.terminate()
    proc.wait(30)
    site_server.shutdown()
    other_server.shutdown()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def watch_dialogs(page) -> list:
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def sign_in(page, url):
    page.goto(f"{url}/", wait_until="load")
    if "/login" in page.url:
        page.locator("#username").fill("librarian")
        page.locator("#password").fill(PASSWORD)
        page.locator("#sign-in").click()
        page.wait_for_url(f"{url}/", timeout=60_000)


def console_ask(page, url, question):
    sign_in(page, url)
    page.locator("#ask").wait_for(timeout=60_000)
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.locator("#answer .refdesk-answer").wait_for(timeout=300_000)
    wait_final(page)


def wait_final(page):
    """The evidence answer comes first; the model's lead (or its budget running out) ends the answer."""
    page.locator("#progress .working").wait_for(state="detached", timeout=60_000)


def test_console_answers_with_numbered_sources_and_working_links(served_app, browser):
    page = browser.new_page()
    dialogs = watch_dialogs(page)
    console_ask(page, served_app, "Who wrote Summerland?")
    cards = page.locator("#sources .source-card")
    record_ids = [cards.nth(i).get_attribute("data-record-id") for i in range(cards.count())]
    assert "12883376" in record_ids
    answer_text = page.locator("#answer").inner_text()
    assert "Chabon, Michael" in answer_text  # quoted from the catalogue record, evidence first
    assert page.locator("#answer .sentence.supported .badge.ok").count() >= 1
    # Every [n] shown in the answer links to its source card; following it lands on the card.
    cites = page.locator("#answer a.cite")
    assert cites.count() >= 1
    for link in cites.all():
        assert page.locator(link.get_attribute("href")).count() == 1
    target = cites.first.get_attribute("href")
    cites.first.click()
    assert page.evaluate("location.hash") == target
    # Matched terms are highlighted in the snippet; the card's link opens the stored record.
    card = page.locator(f"#sources {target}")
    assert card.locator("mark").count() >= 1
    with page.context.expect_page() as opened:
        card.locator("a.source-link").click()
    record = opened.value
    record.wait_for_load_state()
    assert "Summerland" in record.locator("#record-text").inner_text()
    record.close()
    # Retrieved-but-not-cited sources appear only on request.
    shown_before = page.locator("#sources .source-card").count()
    page.locator("#show-uncited input").check()
    page.locator("#sources .source-card.uncited").first.wait_for(timeout=30_000)
    assert page.locator("#sources .source-card").count() > shown_before
    # Feedback goes into the data dir's SQLite.
    page.locator("#feedback-comment textarea").fill("right author")
    page.locator("#feedback-up").click()
    page.locator("#feedback-status .feedback-done").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    rows = (
        sqlite3.connect(served_app.data / "feedback.sqlite")
        .execute("SELECT question, rating, comment FROM feedback")
        .fetchall()
    )
    assert rows == [("Who wrote Summerland?", 1, "right author")]
    assert dialogs == []


def test_console_filters_restrict_the_sources(served_app, browser):
    page = browser.new_page()
    sign_in(page, served_app)
    page.locator("#ask").wait_for(timeout=60_000)
    page.locator("#filters").click()
    page.locator("#filter-type").get_by_label("Finding-aid component").check()
    page.locator("#question textarea").fill("photographs")
    page.locator("#ask").click()
    page.locator("#answer .refdesk-answer").wait_for(timeout=300_000)
    wait_final(page)
    page.locator("#show-uncited input").check()
    page.locator("#sources .source-card").first.wait_for(timeout=30_000)
    types = {c.get_attribute("data-source-type") for c in page.locator("#sources .source-card").all()}
    assert types == {"ead"}


def test_refusal_hand_off_reaches_the_queue_and_is_closed_there(served_app, browser):
    page = browser.new_page()
    console_ask(page, served_app, "What is the capital of Burkina Faso?")
    assert page.locator("#answer .refusal").count() == 1
    page.locator("#contact textarea, #contact input").first.fill("patron@example.org")
    page.locator("#ask-librarian").click()
    page.locator("#handoff-status .handoff-done").wait_for(timeout=60_000)
    text = page.locator("#handoff-status").inner_text()
    assert "Sent to a librarian as request #" in text and "patron@example.org" in text
    request_id = int(text.split("#")[1].split(".")[0])
    page.locator("#ask-librarian").click()  # a second press: one hand-off per answer
    page.get_by_text("already sent to a librarian").wait_for(timeout=30_000)
    # The request came after the page was loaded: opening the tab shows it, no Refresh pressed.
    page.get_by_role("tab", name="Hand-off queue").click()
    row = page.locator(f"#handoff-queue tr[data-handoff-id='{request_id}']")
    row.wait_for(timeout=30_000)
    assert "Burkina Faso" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)
    page.locator("#close-id input").fill(str(request_id))
    page.locator("#close-note textarea").fill("Pointed the patron to an atlas.")
    page.locator("#close-handoff").click()
    page.locator("#queue-status .closed").wait_for(timeout=30_000)
    assert page.locator(f"#handoff-queue tr[data-handoff-id='{request_id}']").count() == 0
    closed = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "handoff", "show", str(request_id), "--json"],
        env=served_app.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    item = __import__("json").loads(closed.stdout)
    assert item["status"] == "closed" and item["note"] == "Pointed the patron to an atlas."


def test_console_reference_check_and_collection_status_tabs(served_app, browser):
    page = browser.new_page()
    sign_in(page, served_app)
    page.get_by_role("tab", name="Reference check").click()
    page.locator("#refcheck-input textarea").fill(
        "Chabon, M. (2002). Summerland. Miramax.\nSmith, J. (2019). The hidden architecture of memory. Imaginary Press."
    )
    page.locator("#refcheck-run").click()
    page.locator("#refcheck-report .summary").wait_for(timeout=60_000)
    assert page.locator("#refcheck-report .summary").inner_text() == "2 references: 1 held, 0 similar, 1 not found"
    page.get_by_role("tab", name="Collection status").click()  # read when opened, no Refresh pressed
    status = page.locator("#collection-status")
    status.wait_for(timeout=30_000)
    assert "Catalogue record" in status.inner_text() and "Last ingest runs" in status.inner_text()


def widget_ask(page, url, question):
    page.goto(f"{url}/widget/", wait_until="load")
    page.locator("#w-send").wait_for(timeout=60_000)
    before = page.locator(".msg.library").count()
    page.locator("#w-question textarea").fill(question)
    page.locator("#w-send").click()
    # The evidence shows first (.pending); the answer is whole once the model's lead came or its budget ran out.
    page.locator(".msg.library:not(.pending)").nth(before).wait_for(timeout=300_000)
    return page.locator(".msg.library").nth(before)


def test_widget_answers_with_source_links_on_a_phone_screen(served_app, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    dialogs = watch_dialogs(page)
    reply = widget_ask(page, served_app, "Who wrote Summerland?")
    assert "Chabon" in reply.inner_text()
    link = reply.locator(".w-sources a").first
    assert link.count() == 1
    with page.context.expect_page() as opened:
        link.click()
    record = opened.value
    record.wait_for_load_state()
    assert "Summerland" in record.locator("#record-text").inner_text()
    record.close()
    # Accessible: the conversation is a live log, the input has a label, the button is reachable by keyboard.
    assert page.locator("[role=log][aria-live=polite]").count() == 1
    assert page.get_by_label("Your question").count() == 1
    page.locator("#w-question textarea").fill("Who published Summerland?")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id || document.activeElement.closest('[id]').id") == "w-send"
    page.keyboard.press("Enter")
    page.locator(".msg.library:not(.pending)").nth(1).wait_for(timeout=300_000)
    page.screenshot(path=str(ARTIFACTS / "widget-mobile.png"), full_page=True)
    assert dialogs == []


def test_widget_conversation_conditions_and_follow_ups(served_app, browser):
    page = browser.new_page()
    first = widget_ask(page, served_app, "Do you have a 1950 edition of The amazing adventures of Kavalier and Clay?")
    text = first.inner_text()
    assert "None of the records we found is from 1950" in text and "2000" in text  # not held as asked; what is
    # The next question on the same page refers back; the widget keeps the conversation.
    page.locator("#w-question textarea").fill("Do you have Summerland?")
    page.locator("#w-send").click()
    page.locator(".msg.library").nth(1).wait_for(timeout=300_000)
    # Asked while the previous answer may still wait for its lead: it runs right after, nothing is lost.
    page.locator("#w-question textarea").fill("Who published it?")
    page.locator("#w-send").click()
    page.locator(".msg.library:not(.pending)").nth(2).wait_for(timeout=300_000)
    assert "Miramax" in page.locator(".msg.library").nth(2).inner_text()


def test_console_follow_up_is_read_with_the_previous_question(served_app, browser):
    page = browser.new_page()
    console_ask(page, served_app, "Do you have Summerland?")
    page.locator("#question textarea").fill("Who published it?")
    page.locator("#ask").click()
    page.locator("#answer .refdesk-answer", has_text="Miramax").wait_for(timeout=300_000)


def test_widget_refusal_offers_a_librarian(served_app, browser):
    page = browser.new_page()
    reply = widget_ask(page, served_app, "What is the capital of Burkina Faso?")
    assert reply.locator(".refusal").count() == 1
    page.locator("#w-contact textarea, #w-contact input").first.fill("reader@example.org")
    page.locator("#w-ask-librarian").click()
    page.locator("#w-handoff-status .handoff-done").wait_for(timeout=60_000)
    assert "reader@example.org" in page.locator("#w-handoff-status").inner_text()


def test_archived_markup_stays_text_in_both_front_ends(served_app, browser):
    page = browser.new_page()
    dialogs = watch_dialogs(page)
    console_ask(page, served_app, XSS_QUESTION)
    page.locator("#show-uncited input").check()
    page.locator("#sources .source-card").first.wait_for(timeout=30_000)
    seen = page.locator("#answer").inner_text() + page.locator("#sources").inner_text()
    assert "<script>alert(1)</script>" in seen or "<img src=x onerror=alert(1)>" in seen
    assert page.locator("#answer script, #sources script, #answer img, #sources img").count() == 0
    reply = widget_ask(page, served_app, XSS_QUESTION)
    assert reply.locator("script, img").count() == 0
    page.screenshot(path=str(ARTIFACTS / "widget-xss.png"), full_page=True)
    page.wait_for_timeout(500)
    assert dialogs == []


def test_console_needs_a_librarian(served_app, browser):
    page = browser.new_page()
    page.goto(f"{served_app}/", wait_until="load")
    assert "/login" in page.url
    page.locator("#username").fill("librarian")
    page.locator("#password").fill("not the password")
    page.locator("#sign-in").click()
    assert "Wrong user name or password" in page.locator("[role=alert]").inner_text()
    sign_in(page, served_app)
    page.locator("#ask").wait_for(timeout=60_000)
    page.locator("#sign-out").click()
    page.wait_for_url("**/login", timeout=30_000)
    page.goto(f"{served_app}/", wait_until="load")
    assert "/login" in page.url


def test_widget_embeds_on_the_librarys_site_and_nowhere_else(served_app, browser):
    page = browser.new_page()
    page.goto(served_app.site, wait_until="load")
    frame = page.locator("iframe[title='Ask the library']")
    frame.wait_for(timeout=60_000)
    frame.content_frame.locator("#w-send").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "widget-embedded.png"), full_page=True)
    # The same page on another origin: the browser refuses to show the widget (CSP frame-ancestors).
    other = browser.new_page()
    other.goto(served_app.other_site, wait_until="load")
    other.locator("iframe[title='Ask the library']").wait_for(timeout=60_000)
    other.wait_for_timeout(3000)
    child = other.frames[1] if len(other.frames) > 1 else None
    assert child is not None
    assert child.url.startswith("chrome-error://"), child.url  # blocked, not merely slow to load
    # Nor can another site frame the console.
    sneaky = browser.new_page()
    sneaky.goto(served_app.other_site, wait_until="load")
    sneaky.evaluate(
        "(src) => { const f = document.createElement('iframe'); f.src = src; document.body.appendChild(f); }",
        f"{served_app}/login",
    )
    sneaky.wait_for_timeout(3000)
    children = [f for f in sneaky.frames if f != sneaky.main_frame]
    assert children and all(f.url.startswith("chrome-error://") for f in children), [f.url for f in children]


def test_no_patron_address_is_written_to_the_data_dir(served_app, browser):
    page = browser.new_page()
    widget_ask(page, served_app, "Who wrote Summerland?")
    leaks = []
    for path in served_app.data.rglob("*"):
        if path.is_file() and b"127.0.0.1" in path.read_bytes():
            leaks.append(str(path))
    assert leaks == []
    assert not (served_app.data / "transcripts.sqlite").exists()  # transcripts are off by default

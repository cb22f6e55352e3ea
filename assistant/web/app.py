"""The web front ends, mounted on one FastAPI app: the librarian console (/), the patron widget
(/widget), the OpenAI-compatible API (/v1) and /healthz. All are thin adapters over the services."""

import logging

from assistant.web.render import CSS, SOURCE_LABELS, answer_html, message_html, plain_text, sources_html
from assistant.web.templates import render, utc

logger = logging.getLogger(__name__)


def build_filters(types, files, year_from, year_to, language):
    from assistant.answering.filters import Filter

    filters = []
    if types:
        filters.append(Filter("source_type", "in", tuple(types)))
    if files:
        filters.append(Filter("source_file", "in", tuple(files)))
    if year_from:  # empty (None, "", 0): no bound; no material is dated year 0
        filters.append(Filter("year", ">=", int(year_from)))
    if year_to:
        filters.append(Filter("year", "<=", int(year_to)))
    if language:
        filters.append(Filter("language", "=", language))
    return filters


def handoff_table(services) -> str:
    return render("handoff_queue.html", items=services.handoffs.list("open"))


def status_html(services) -> str:
    counts = services.store.counts()
    manifest = services.manifest()
    try:
        runs = manifest.last_runs(5)
    finally:
        manifest.close()
    run_rows, skipped = [], []
    for run in runs:
        when = utc(run.get("finished_at", 0))
        s = run.get("summary", run)
        keys = ("files", "files_failed", "records", "chunks_added", "chunks_removed")
        run_rows.append({"when": when, "s": {**{k: s.get(k, "") for k in keys}, "skipped": s.get("skipped", [])}})
        skipped += [
            (when, {k: item.get(k, "") for k in ("path", "record", "reason")}) for item in s.get("skipped", [])[:50]
        ]
    types = [(SOURCE_LABELS.get(t, t), v) for t, v in counts["by_type"].items()]
    return render("collection_status.html", counts=counts, types=types, runs=run_rows, skipped=skipped)


def refcheck_html(report) -> str:
    return render("refcheck_report.html", report=report)


def build_console(services):
    import gradio as gr

    from assistant.answering.questions import key_terms
    from assistant.core.types import Answer
    from assistant.web.facets import collection_facets

    settings = services.settings
    facets = collection_facets(services.store)

    def ask(question, k, types, files, year_from, year_to, language, show_uncited, previous=None):
        """Answers come in stages: the sources as soon as they are retrieved, then the checked evidence, then
        the model's checked lead if it came in time. Nothing the checker has not passed is ever on screen.
        previous: the last answer shown; a follow-up ("who published it?") is read with its question."""
        question = (question or "").strip()
        history = []
        if isinstance(previous, dict) and isinstance(previous.get("question"), str):
            history = [str(previous.get("resolved_question") or previous["question"])]
        hidden = gr.update(visible=False)
        if not question:
            yield (message_html("Type a question first."), "", "", "", None, hidden, "", "")
            return
        try:
            filters = build_filters(types, files, year_from, year_to, language)
        except (TypeError, ValueError) as exc:
            yield (message_html(f"Bad filter: {exc}", "alert"), "", "", "", None, hidden, "", "")
            return
        terms = key_terms(question)
        yield (message_html("Searching the collections…", cls="working"), "", "", "", None, hidden, "", "")
        found = services.answers.ask(question, k=int(k), retrieve_only=True, filters=filters, history=history)
        yield (
            message_html(f"Checking an answer against {len(found.sources)} source(s)…", cls="working"),
            "",
            sources_html(found.sources, None, True, terms),
            "",
            None,
            hidden,
            "",
            "",
        )
        answer = found
        for answer in services.answers.stream(question, k=int(k), filters=filters, retrieved=found, history=history):
            if not answer.final:
                yield (
                    message_html("Checking a summary from the model…", cls="working"),
                    answer_html(answer),
                    sources_html(answer.sources, answer, bool(show_uncited), terms),
                    plain_text(answer),
                    answer.model_dump(),  # feedback and the uncited toggle work on what is shown meanwhile
                    hidden,
                    "",
                    "",
                )
        if answer.handoff_offered:
            answer.handoff_token = services.patron_limits.offers.offer()
        yield (
            "",
            answer_html(answer),
            sources_html(answer.sources, answer, bool(show_uncited), terms),
            plain_text(answer),
            answer.model_dump(),
            gr.update(visible=answer.handoff_offered),
            "",
            "",
        )

    def toggle_uncited(answer_state, show_uncited):
        if not answer_state:
            return gr.update()
        answer = Answer.model_validate(answer_state)
        return sources_html(answer.sources, answer, bool(show_uncited), key_terms(answer.question))

    def hand_off(answer_state, contact, request: gr.Request):
        from assistant.backends.handoff import HandoffRefused

        try:
            answer = Answer.model_validate(answer_state) if isinstance(answer_state, dict) else None
            handoff = services.handoffs.create_offered(answer, contact, services.patron_limits.offers)
        except HandoffRefused as refused:
            return message_html(str(refused)), answer_state
        services.accounts.audit(services.auth.actor(request), "hand-off created", f"#{handoff.id}")
        return (
            message_html(
                f"Sent to a librarian as request #{handoff.id}. "
                + (f"They will contact you at {handoff.contact}." if handoff.contact else ""),
                cls="handoff-done",
            ),
            dict(answer_state, handoff_token=""),
        )

    def feedback(rating: int):
        def save(answer_state, comment):
            if not answer_state:
                return message_html("Ask a question first.")
            answer = Answer.model_validate(answer_state)
            by_n = {s.n: s for s in answer.sources}
            cited = [
                f"{by_n[n].source_type}:{by_n[n].record_id}"
                for s in answer.sentences
                if s.shown
                for n in s.citations
                if n in by_n
            ]
            fid = services.feedback.add(answer.question, answer.answer, cited, rating, comment or "")
            return message_html(f"Thank you: feedback #{fid} saved.", cls="feedback-done")

        return save

    def close_handoff(handoff_id, note, request: gr.Request):
        from assistant.backends.handoff import HandoffError

        try:
            services.handoffs.close(int(handoff_id), note or "")
            services.accounts.audit(services.auth.actor(request), "hand-off closed", f"#{int(handoff_id)}")
            message = message_html(f"Request #{int(handoff_id)} marked answered.", cls="closed")
        except (HandoffError, TypeError, ValueError) as exc:
            message = message_html(str(exc), "alert")
        return handoff_table(services), message

    def check_references(text):
        report = services.refcheck.check_text(text or "")
        return refcheck_html(report), report.text()

    type_choices = [(SOURCE_LABELS.get(t, t), t) for t in sorted(facets["types"])]
    file_choices = [(name, path) for name, path, _n in facets["files"]]
    with gr.Blocks(title=f"{settings.serve.library_name} — reference desk", analytics_enabled=False) as blocks:
        with gr.Row():
            gr.Markdown(f"## {settings.serve.library_name} — reference desk console")
            gr.HTML(
                '<form method="post" action="/logout" style="text-align:right">'
                '<button type="submit" id="sign-out">Sign out</button></form>'
            )
        with gr.Tabs():
            with gr.Tab("Ask", id="ask-tab"):
                answer_state = gr.State(None)
                with gr.Row():
                    question = gr.Textbox(
                        label="Question", placeholder="e.g. Who wrote Summerland?", scale=5, elem_id="question"
                    )
                    k = gr.Slider(
                        1, 20, value=settings.retrieval.top_k, step=1, label="Sources (top-k)", scale=1, elem_id="top-k"
                    )
                with gr.Accordion("Filters", open=False, elem_id="filters"):
                    with gr.Row():
                        types = gr.CheckboxGroup(type_choices, label="Source type", elem_id="filter-type")
                        files = gr.Dropdown(
                            file_choices, multiselect=True, label="Collection / file", elem_id="filter-file"
                        )
                    with gr.Row():
                        year_from = gr.Number(None, label="From year", precision=0, elem_id="filter-year-from")
                        year_to = gr.Number(None, label="To year", precision=0, elem_id="filter-year-to")
                        language = gr.Dropdown(
                            [""] + facets["languages"], value="", label="Language", elem_id="filter-language"
                        )
                ask_button = gr.Button("Ask", variant="primary", elem_id="ask")
                progress = gr.HTML(elem_id="progress")
                answer_box = gr.HTML(elem_id="answer")
                with gr.Group(visible=False, elem_id="handoff") as handoff_group:
                    contact = gr.Textbox(label="Patron's e-mail or phone (optional)", elem_id="contact")
                    handoff_button = gr.Button("Ask a librarian", elem_id="ask-librarian")
                handoff_box = gr.HTML(elem_id="handoff-status")
                with gr.Row(elem_id="feedback"):
                    up = gr.Button("✓ Good answer", elem_id="feedback-up", size="sm")
                    down = gr.Button("✗ Bad answer", elem_id="feedback-down", size="sm")
                    comment = gr.Textbox(label="Comment (optional)", elem_id="feedback-comment", scale=3)
                feedback_box = gr.HTML(elem_id="feedback-status")
                with gr.Accordion("Copy answer with citations", open=False):
                    copy_box = gr.Textbox(show_label=False, lines=6, buttons=["copy"], elem_id="copy-answer")
                gr.Markdown("### Sources")
                show_uncited = gr.Checkbox(
                    label="Show sources retrieved but not cited", value=False, elem_id="show-uncited"
                )
                sources_box = gr.HTML(elem_id="sources")
            with gr.Tab("Hand-off queue", id="queue-tab") as queue_tab:
                queue = gr.HTML(handoff_table(services), elem_id="handoff-queue")
                with gr.Row():
                    handoff_id = gr.Number(label="Request #", precision=0, elem_id="close-id")
                    note = gr.Textbox(label="What was done", elem_id="close-note", scale=3)
                with gr.Row():
                    close_button = gr.Button("Mark answered", elem_id="close-handoff")
                    refresh_queue = gr.Button("Refresh", elem_id="refresh-queue")
                queue_status = gr.HTML(elem_id="queue-status")
            with gr.Tab("Reference check", id="refcheck-tab"):
                pasted = gr.Textbox(
                    label="Paste a reference list (one per line), BibTeX or RIS", lines=8, elem_id="refcheck-input"
                )
                check_button = gr.Button("Check the references", elem_id="refcheck-run")
                refcheck_box = gr.HTML(elem_id="refcheck-output")
                with gr.Accordion("Copy the report for the patron", open=False):
                    refcheck_text = gr.Textbox(show_label=False, lines=8, buttons=["copy"], elem_id="refcheck-copy")
            with gr.Tab("Collection status", id="status-tab") as status_tab:
                status_box = gr.HTML(status_html(services), elem_id="status")
                refresh_status = gr.Button("Refresh", elem_id="refresh-status")

        outputs = [progress, answer_box, sources_box, copy_box, answer_state, handoff_group, handoff_box, feedback_box]
        inputs = [question, k, types, files, year_from, year_to, language, show_uncited, answer_state]
        # A question asked while the previous answer still waits for its lead runs right after it.
        ask_button.click(ask, inputs, outputs, api_name="ask", trigger_mode="always_last")
        question.submit(ask, inputs, outputs, trigger_mode="always_last")
        show_uncited.change(toggle_uncited, [answer_state, show_uncited], [sources_box])
        handoff_button.click(hand_off, [answer_state, contact], [handoff_box, answer_state])
        up.click(feedback(1), [answer_state, comment], [feedback_box])
        down.click(feedback(-1), [answer_state, comment], [feedback_box])
        close_button.click(close_handoff, [handoff_id, note], [queue, queue_status])
        refresh_queue.click(lambda: handoff_table(services), None, [queue])
        check_button.click(check_references, [pasted], [refcheck_box, refcheck_text])
        refresh_status.click(lambda: status_html(services), None, [status_box])
        # What the tabs show is read when they are opened (and the queue every 30 s), never only when the
        # server started.
        blocks.load(lambda: (handoff_table(services), status_html(services)), None, [queue, status_box])
        queue_tab.select(lambda: handoff_table(services), None, [queue])
        status_tab.select(lambda: status_html(services), None, [status_box])
        gr.Timer(30).tick(lambda: handoff_table(services), None, [queue])
    return blocks


def build_app(services):
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse, Response

    from assistant.web import api
    from assistant.web.auth.guard import AccessGuard, WidgetEndpoints, install_login_routes
    from assistant.web.widget import EMBED_JS, WIDGET_CSS, build_widget

    app = FastAPI(title="refdesk", docs_url=None, redoc_url=None, openapi_url=None)
    install_login_routes(app, services.auth)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "chunks": services.store.count()}

    @app.get("/record")
    def record(chunk: str = ""):
        """A stored record as a page: where a source links when no catalogue/finding-aid URL is configured."""
        from fastapi.responses import HTMLResponse

        stored = services.store.get([chunk]).get(chunk) if chunk else None
        if stored is None:
            return HTMLResponse(
                "<!doctype html><title>Not found</title><p>No such record in the store.</p>", status_code=404
            )
        fields = ("source_type", "record_id", "locator", "date")
        return HTMLResponse(render("record.html", meta=stored.metadata, fields=fields, text=stored.text))

    @app.get("/embed.js")
    def embed_js():
        return Response(EMBED_JS, media_type="text/javascript")

    @app.get("/widget", include_in_schema=False)
    def widget_slash():
        return RedirectResponse("/widget/", status_code=307)

    api.install(app, services)
    widget = build_widget(services)
    app = gr.mount_gradio_app(app, widget, path="/widget", css=WIDGET_CSS(services.settings.widget))
    app = gr.mount_gradio_app(app, build_console(services), path="/", css=CSS)
    # Every request, Gradio's own endpoints included, passes the guard first.
    app.add_middleware(
        AccessGuard, auth=services.auth, limits=services.patron_limits, widget_endpoints=WidgetEndpoints.of(widget)
    )
    return app


def serve(services, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    settings = services.settings
    host = host or settings.serve.host
    port = port or settings.serve.port
    app = build_app(services)
    logger.info("refdesk is serving at http://%s:%s/ (patron widget: /widget/, API: /v1)", host, port)
    if not services.accounts.has_users() and not settings.auth.trusted_header:
        logger.warning(
            "No librarian accounts: the console answers only on this machine (localhost). "
            "Add one with `refdesk user add NAME`."
        )
    # No access log: it would write patrons' IP addresses.
    # Patrons' open event streams must not hold a stop (or a restart) for ever.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=10)

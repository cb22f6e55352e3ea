"""The Gradio chat (mounted on FastAPI): a thin adapter over AnswerService and the hand-off queue."""
from __future__ import annotations

import html

from assistant.render import CSS, answer_html, plain_text, sources_html


def build_blocks(services):
    import gradio as gr

    settings = services.settings

    def ask(question: str, k: float):
        answer = services.answers.ask(question or "", k=int(k))
        show_handoff = gr.update(visible=answer.handoff_offered)
        return (answer_html(answer), sources_html(answer.sources), plain_text(answer), answer.model_dump(),
                show_handoff, "")

    def hand_off(answer_state: dict | None, contact: str):
        from assistant.types import Answer

        if not answer_state:
            return "Ask a question first."
        handoff = services.handoffs.create(Answer.model_validate(answer_state), contact=contact or "")
        return (f'<p class="handoff-done" role="status">Sent to a librarian as request #{handoff.id}. '
                f'{"They will contact you at " + html.escape(handoff.contact) + "." if handoff.contact else ""}</p>')

    with gr.Blocks(title=settings.serve.library_name) as blocks:
        gr.Markdown(f"## {settings.serve.library_name} — ask the collections")
        answer_state = gr.State(None)
        with gr.Row():
            question = gr.Textbox(label="Your question", placeholder="e.g. Who wrote Summerland?", scale=5,
                                  elem_id="question")
            k = gr.Slider(1, 20, value=settings.retrieval.top_k, step=1, label="Sources (top-k)", scale=1,
                          elem_id="top-k")
        ask_button = gr.Button("Ask", variant="primary", elem_id="ask")
        answer_box = gr.HTML(elem_id="answer")
        with gr.Group(visible=False, elem_id="handoff") as handoff_group:
            contact = gr.Textbox(label="Your e-mail or phone (optional, only if you want a reply)", elem_id="contact")
            handoff_button = gr.Button("Ask a librarian", elem_id="ask-librarian")
        handoff_box = gr.HTML(elem_id="handoff-status")
        with gr.Accordion("Copy answer with citations", open=False):
            copy_box = gr.Textbox(show_label=False, lines=6, buttons=["copy"], elem_id="copy-answer")
        gr.Markdown("### Sources")
        sources_box = gr.HTML(elem_id="sources")
        outputs = [answer_box, sources_box, copy_box, answer_state, handoff_group, handoff_box]
        ask_button.click(ask, [question, k], outputs, api_name="ask")
        question.submit(ask, [question, k], outputs)
        handoff_button.click(hand_off, [answer_state, contact], [handoff_box])
    return blocks


def build_app(services):
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI(title="refdesk")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "chunks": services.store.count()}

    return gr.mount_gradio_app(app, build_blocks(services), path="/", css=CSS)


def serve(services, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    settings = services.settings
    host = host or settings.serve.host
    port = port or settings.serve.port
    app = build_app(services)
    print(f"refdesk is serving at http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

"""The Gradio chat (mounted on FastAPI): a thin adapter over AnswerService."""
from __future__ import annotations

from assistant.render import CSS, answer_html, sources_html


def build_blocks(services):
    import gradio as gr

    settings = services.settings

    def ask(question: str, k: float):
        answer = services.answers.ask(question or "", k=int(k))
        return answer_html(answer), sources_html(answer.sources)

    with gr.Blocks(title=settings.serve.library_name) as blocks:
        gr.Markdown(f"## {settings.serve.library_name} — ask the collections")
        with gr.Row():
            question = gr.Textbox(label="Your question", placeholder="e.g. Who wrote Summerland?", scale=5,
                                  elem_id="question")
            k = gr.Slider(1, 20, value=settings.retrieval.top_k, step=1, label="Sources (top-k)", scale=1,
                          elem_id="top-k")
        ask_button = gr.Button("Ask", variant="primary", elem_id="ask")
        answer_box = gr.HTML(elem_id="answer")
        gr.Markdown("### Sources")
        sources_box = gr.HTML(elem_id="sources")
        ask_button.click(ask, [question, k], [answer_box, sources_box], api_name="ask")
        question.submit(ask, [question, k], [answer_box, sources_box])
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

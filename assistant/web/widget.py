"""The patron chat widget (/widget): small, mobile-friendly, embeddable, private by default.

Kept per browser session in server memory only while the page is open: the conversation. Written to
disk: nothing, unless privacy.keep_transcripts (question + answer + a random session id, deleted after
privacy.retention_days), or the patron asks for a librarian (question, sources, the contact they typed).
"""

import gradio as gr  # not lazy: gradio reads the gr.Request annotations of the handlers at build time
from markupsafe import Markup

from assistant.web.render import chat_html, message_html

MAX_TURNS = 20  # turns kept per open widget page

EMBED_JS = """(function () {
  var s = document.currentScript;
  var base = s.src.replace(/\\/embed\\.js(\\?.*)?$/, "");
  var f = document.createElement("iframe");
  f.src = base + "/widget/";
  f.title = s.getAttribute("data-title") || "Ask the library";
  f.style.cssText = "border:0;width:" + (s.getAttribute("data-width") || "380px") + ";height:" +
    (s.getAttribute("data-height") || "600px") + ";max-width:100%";
  f.setAttribute("loading", "lazy");
  s.parentNode.insertBefore(f, s.nextSibling);
})();
"""


def WIDGET_CSS(cfg) -> str:  # noqa: N802 - a constant made from settings
    return f"""
:root {{ --rd-primary: {cfg.primary_color}; --rd-bg: {cfg.background_color}; --rd-text: {cfg.text_color}; }}
.gradio-container {{ max-width: 560px !important; margin: 0 auto !important; background: var(--rd-bg); color: var(--rd-text); }}
footer {{ display: none !important; }}
#w-title h1, #w-title h2 {{ font-size: 1.2em; margin: 0.2em 0; color: var(--rd-primary); }}
.chat-log {{ display: flex; flex-direction: column; gap: 0.5em; max-height: 55vh; overflow-y: auto; }}
.msg {{ border-radius: 10px; padding: 0.4em 0.7em; max-width: 92%; }}
.msg p {{ margin: 0.2em 0; }}
.msg.patron {{ align-self: flex-end; background: var(--rd-primary); }}
.msg.patron, .msg.patron p {{ color: #fff !important; }}
.msg.library {{ align-self: flex-start; background: #f1f3f5; color: var(--rd-text); }}
.msg .who {{ position: absolute; left: -10000px; }}
.msg .refusal {{ font-style: italic; }}
.w-sources {{ font-size: 0.85em; margin: 0.3em 0 0 1em; padding: 0; }}
.w-sources a {{ color: var(--rd-primary); }}
#w-disclaimer {{ font-size: 0.8em; color: #555; }}
#w-send button, button#w-send {{ background: var(--rd-primary); color: #fff; }}
"""


def log_html(turns: list[dict], name: str) -> str:
    """The conversation as a live region screen readers announce."""
    return Markup('<div role="log" aria-live="polite" aria-label="Conversation">{}</div>').format(
        Markup(chat_html(turns, name))
    )


def _request_identity(services, request) -> tuple[str, str]:
    """(address, per-session key) of a widget call: the session is the server-issued cookie, never the
    client-chosen Gradio session_hash."""
    client = getattr(request, "client", None)
    address = getattr(client, "host", "") or ""
    cookies = getattr(request, "cookies", None) or {}
    return address, services.patron_limits.session_key(cookies.get(services.patron_limits.sessions.COOKIE), address)


def _notice(text: str) -> str:
    return message_html(text, "alert")


def build_widget(services):
    from assistant.core.types import Answer
    from assistant.web.ratelimit import Busy

    settings = services.settings
    cfg = settings.widget
    limits = services.patron_limits
    name = cfg.library_name or settings.serve.library_name
    no_handoff = gr.update(visible=False)

    def send(question, turns, request: gr.Request):
        question = question.strip() if isinstance(question, str) else ""
        turns = list(turns) if isinstance(turns, list) else []
        if not question:
            yield gr.update(), "", turns, None, no_handoff, ""
            return
        if len(question) > cfg.max_question_chars:
            yield (
                gr.update(),
                question[: cfg.max_question_chars],
                turns,
                None,
                no_handoff,
                _notice(f"Please keep questions under {cfg.max_question_chars} characters."),
            )
            return
        _address, session = _request_identity(services, request)
        if not limits.questions.allow(session):
            wait = limits.questions.retry_after(session)
            yield (
                gr.update(),
                question,
                turns,
                None,
                no_handoff,
                _notice(f"You have asked many questions in a short time. Please try again in {wait} s."),
            )
            return
        history = [t["question"] for t in turns if isinstance(t, dict) and isinstance(t.get("question"), str)]
        answer = Answer(question=question)
        asked = ""  # the question box: cleared by the first update only; the patron may type the next meanwhile
        try:
            with limits.answers.slot():
                # The evidence answer is shown at once; the model's checked lead, if in time, follows.
                for answer in services.answers.stream(question, history=history):
                    if not answer.final:
                        shown = (turns + [{"question": question, "answer": answer.model_dump()}])[-MAX_TURNS:]
                        yield (log_html(shown, name), asked, turns, None, no_handoff, "")
                        asked = gr.update()
        except Busy as busy:
            yield (
                gr.update(),
                question,
                turns,
                None,
                no_handoff,
                _notice(f"The library's assistant is busy right now. Please try again in {busy.retry_after_s} s."),
            )
            return
        if services.transcripts is not None:
            services.transcripts.add(session, question, answer.answer)
        # Only the last few turns are kept in the session (server memory): bounded whatever a patron sends.
        turns = (turns + [{"question": question, "answer": answer.model_dump()}])[-MAX_TURNS:]
        if answer.handoff_offered:
            answer.handoff_token = limits.offers.offer()
        yield (log_html(turns, name), asked, turns, answer.model_dump(), gr.update(visible=answer.handoff_offered), "")

    def hand_off(state, contact, request: gr.Request):
        """One hand-off per answer that offered one; contact bounded; per session and address per hour;
        the queue itself bounded."""
        from assistant.backends.handoff import HandoffRefused

        address, session = _request_identity(services, request)
        try:
            answer = Answer.model_validate(state) if isinstance(state, dict) else None
            handoff = services.handoffs.create_offered(
                answer,
                contact,
                limits.offers,
                lambda: limits.handoffs_per_session.allow(session) and limits.handoffs_per_address.allow(address),
            )
        except HandoffRefused as refused:
            return _notice(str(refused)), state
        message = message_html(
            f"Your question went to a librarian (request #{handoff.id})."
            + (f" They will reply to {handoff.contact}." if handoff.contact else ""),
            cls="handoff-done",
        )
        return message, dict(state, handoff_token="")

    with gr.Blocks(title=f"{name} — ask the library", analytics_enabled=False) as blocks:
        gr.HTML(Markup("<h1>{}</h1>").format(name), elem_id="w-title")
        turns = gr.State([])
        last_answer = gr.State(None)
        log = gr.HTML(log_html([], name), elem_id="w-log")
        notice = gr.HTML(elem_id="w-notice")
        question = gr.Textbox(
            label="Your question",
            placeholder="Ask about our books, archives or web archive",
            lines=1,
            max_lines=4,
            max_length=cfg.max_question_chars,
            elem_id="w-question",
        )
        send_button = gr.Button("Send", variant="primary", elem_id="w-send")
        with gr.Group(visible=False, elem_id="w-handoff") as handoff_group:
            contact = gr.Textbox(
                label="Your e-mail or phone, if you want a reply (optional)",
                max_length=cfg.max_contact_chars,
                elem_id="w-contact",
            )
            handoff_button = gr.Button("Ask a librarian", elem_id="w-ask-librarian")
        handoff_status = gr.HTML(elem_id="w-handoff-status")
        gr.HTML(Markup('<p id="w-disclaimer">{}</p>').format(cfg.disclaimer))

        outputs = [log, question, turns, last_answer, handoff_group, notice]
        # No Gradio-side concurrency limit: its queue would hold questions without bound. The answer gate
        # (widget.concurrency + widget.max_waiting) decides, and says "busy" past capacity.
        # A question sent while the previous answer still waits for its lead is asked right after it (not
        # dropped, as Gradio's default "once" would; not run beside it, which would race on the conversation).
        send_button.click(
            send, [question, turns], outputs, api_name="ask", concurrency_limit=None, trigger_mode="always_last"
        )
        question.submit(
            send, [question, turns], outputs, api_name=False, concurrency_limit=None, trigger_mode="always_last"
        )
        handoff_button.click(
            hand_off, [last_answer, contact], [handoff_status, last_answer], api_name="hand_off", concurrency_limit=None
        )
    return blocks

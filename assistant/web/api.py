"""OpenAI-compatible chat completions over AnswerService: model "refdesk", the checked answer with its
[n] markers as the message, the sources in an extra "refdesk" field. Errors are JSON, never tracebacks."""

import json
import time
import uuid

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations at runtime

from assistant.core.errors import RefdeskError

MODEL = "refdesk"
MAX_HISTORY = 4  # earlier user messages read for follow-ups (answering/conversation.py keeps as many)


def _error(status: int, message: str, kind: str = "invalid_request_error"):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}})


class BadMessages(RefdeskError, ValueError):
    pass


def _user_texts(messages: list) -> list[str]:
    """The user messages' texts, oldest first (the last is the question, the rest its conversation)."""
    texts: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadMessages(f"messages[{i}]: an object with a string role is required")
        content = message.get("content")
        if isinstance(content, list):
            if not all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
            ):
                raise BadMessages(f'messages[{i}].content: parts must be {{type: "text", text: string}}')
            content = " ".join(p["text"] for p in content)
        elif content is not None and not isinstance(content, str):
            raise BadMessages(f"messages[{i}].content: a string or a list of text parts is required")
        if message["role"] == "user" and content and content.strip():
            texts.append(content)
    if not texts:
        raise BadMessages("messages: no user message with text content")
    return texts


def _busy(busy):
    response = _error(503, f"busy: try again in {busy.retry_after_s} s", "busy")
    response.headers["Retry-After"] = str(busy.retry_after_s)
    return response


def _chunk(completion_id: str, created: int, delta: dict, finish: str | None, extra: dict | None = None) -> str:
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra is not None:
        chunk["refdesk"] = extra
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


async def _stream(services, question: str, history: list[str]):
    """Server-sent events: one chunk per checked sentence as soon as it is ready (the evidence answer at
    once, the model's lead after it when it comes in time), then the sources and verdicts, then [DONE]. A
    sentence is sent only after the checker passed it; the answer gate is held while the answer is made."""
    import threading

    from fastapi.responses import StreamingResponse
    from starlette.background import BackgroundTask
    from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

    from assistant.web.ratelimit import Busy

    gate = services.patron_limits.answers.slot()
    try:
        await run_in_threadpool(gate.__enter__)  # busy is answered with a 503 before any event is sent
    except Busy as busy:
        return _busy(busy)
    once = threading.Lock()

    def release():
        # From the generator's end, or the response's background task when the client went away first.
        if once.acquire(blocking=False):
            gate.__exit__(None, None, None)

    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def events():
        sent: list[str] = []
        try:
            yield _chunk(completion_id, created, {"role": "assistant", "content": ""}, None)
            answer = None
            for answer in services.answers.stream(question, history=history):
                for line in _shown_lines(answer):
                    if line not in sent:
                        yield _chunk(completion_id, created, {"content": ("\n" if sent else "") + line}, None)
                        sent.append(line)
            extra = {k: v for k, v in answer.public_dict(web=True).items() if k != "answer"} if answer else {}
            yield _chunk(completion_id, created, {}, "stop", extra)
            yield "data: [DONE]\n\n"
        finally:
            release()

    return StreamingResponse(
        iterate_in_threadpool(events()), media_type="text/event-stream", background=BackgroundTask(release)
    )


def _shown_lines(answer) -> list[str]:
    if answer.sentences:
        return [line for line in answer.answer.split("\n") if line]
    return [answer.answer] if answer.answer else []


def install(app, services) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return _error(
            400, "invalid request: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/v1/"):
            return _error(exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "http_error")
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        return _error(500, f"internal error ({type(exc).__name__}); see the server log", "server_error")

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "refdesk"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = await request.json()
        except ValueError:  # JSON and UTF-8 decoding errors both
            return _error(400, "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages: a non-empty list of {role, content} is required")
        try:
            *history, question = _user_texts(messages)
        except BadMessages as exc:
            return _error(400, str(exc))
        if body.get("model") not in (None, MODEL):
            return _error(404, f"model {str(body.get('model'))[:80]!r} does not exist; use {MODEL!r}", "not_found")
        if len(question) > services.settings.widget.max_question_chars * 4:
            return _error(413, "question too long")
        from starlette.concurrency import run_in_threadpool

        from assistant.web.ratelimit import Busy

        # The conversation is what the client sends: bounded like the question (count and size).
        history = [h[: services.settings.widget.max_question_chars * 4] for h in history[-MAX_HISTORY:]]
        if body.get("stream"):
            return await _stream(services, question, history)

        def answer_within_capacity():
            with services.patron_limits.answers.slot():
                return services.answers.ask(question, history=history)

        try:
            answer = await run_in_threadpool(answer_within_capacity)
        except Busy as busy:
            return _busy(busy)
        created = int(time.time())
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "refdesk": {k: v for k, v in answer.public_dict(web=True).items() if k != "answer"},
        }
        return payload

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def unknown(rest: str):
        return _error(
            404, f"/v1/{rest}: no such endpoint (refdesk serves /v1/chat/completions and /v1/models)", "not_found"
        )

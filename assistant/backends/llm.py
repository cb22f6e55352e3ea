"""Chat backends: any OpenAI-compatible server (vLLM) through llama-index, or a scripted fake for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from assistant.core.errors import RefdeskError
from assistant.core.registry import Registry
from assistant.core.settings import LLMSettings


class LLMUnavailable(RefdeskError):
    def __init__(self, url: str, detail: str = "", timed_out: bool = False):
        self.url = url
        self.detail = detail
        self.timed_out = timed_out
        super().__init__(f"LLM server not reachable at {url}: {detail}")


class LLMRequestRejected(RefdeskError):
    """The server answered but refused the request (HTTP 400: a prompt longer than its context, say)."""

    def __init__(self, url: str, detail: str = ""):
        self.url = url
        self.detail = detail
        super().__init__(f"LLM server at {url} refused the request: {detail}")


class ChatModel(Protocol):
    name: str

    def chat(self, messages: list[dict[str, str]], timeout_s: float | None = None) -> str: ...


class OpenAICompatibleChat:
    """vLLM's OpenAI-compatible API (CPU SmolLM2 by default; GPU Llama-3.1-8B by configuration)."""

    def __init__(self, settings: LLMSettings):
        from llama_index.llms.openai_like import OpenAILike

        self.settings = settings
        self.name = settings.model
        self.url = settings.base_url
        self._llm = OpenAILike(
            api_base=settings.base_url,
            api_key=settings.api_key,
            model=settings.model,
            is_chat_model=True,
            context_window=settings.context_window,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            timeout=settings.timeout_s,
            max_retries=0,  # a down server must be reported at once, not after retries with back-off
            additional_kwargs=(
                {"extra_body": {"repetition_penalty": settings.repetition_penalty}}
                if settings.repetition_penalty
                else {}
            ),
        )

    def chat(self, messages: list[dict[str, str]], timeout_s: float | None = None) -> str:
        """timeout_s: this request's limit (the lead budget); the client closes the connection when it passes,
        and vLLM stops generating for a closed connection."""
        import openai
        from llama_index.core.llms import ChatMessage

        extra = {"timeout": timeout_s} if timeout_s is not None else {}
        try:
            response = self._llm.chat([ChatMessage(role=m["role"], content=m["content"]) for m in messages], **extra)
        except openai.APITimeoutError as exc:
            raise LLMUnavailable(self.url, str(exc), timed_out=True) from exc
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            raise LLMUnavailable(self.url, str(exc)) from exc
        except openai.NotFoundError as exc:
            raise LLMUnavailable(self.url, f"model {self.name!r} not served there: {exc}") from exc
        except openai.BadRequestError as exc:  # the server is up but refuses this request (a prompt too long)
            raise LLMRequestRejected(self.url, str(exc)) from exc
        return response.message.content or ""


def first_line_of_source_1(messages: list[dict[str, str]]) -> str:
    """Default fake answer: the first text line of source [1], cited — supported by construction."""
    import re

    block = re.search(r'<source n="1">\n[^\n]*\n(.*?)</source>', messages[-1]["content"], re.DOTALL)
    lines = [ln.strip().rstrip(".") for ln in (block.group(1).splitlines() if block else []) if len(ln.split()) >= 3]
    return f"{lines[0]} [1]." if lines else "I could not find this in the collections."


class FakeChat:
    """Deterministic stand-in: `script(messages)` gives the reply; default cites source [1]."""

    def __init__(
        self, settings: LLMSettings | None = None, script: Callable[[list[dict[str, str]]], str] | None = None
    ):
        self.name = "fake"
        self.url = "fake://llm"
        self.calls: list[list[dict[str, str]]] = []
        self.script = script or first_line_of_source_1

    def chat(self, messages: list[dict[str, str]], timeout_s: float | None = None) -> str:
        self.calls.append(messages)
        return self.script(messages)


LLM_BACKENDS = Registry(
    "LLM backend", {"openai": "assistant.backends.llm:OpenAICompatibleChat", "fake": "assistant.backends.llm:FakeChat"}
)


def build_llm(settings: LLMSettings) -> ChatModel:
    return LLM_BACKENDS.get(settings.backend)(settings)

"""AnswerService: retrieve -> prompt -> generate -> check every citation against the store -> Answer."""
from __future__ import annotations

import time

from assistant.llm import ChatModel, LLMUnavailable
from assistant.prompts import Prompts
from assistant.types import Answer
from assistant.verify.checker import CitationChecker


class AnswerService:
    def __init__(self, store, retriever, llm: ChatModel | None, prompts: Prompts, checker: CitationChecker,
                 top_k: int = 5, min_score: float = 0.0):
        self.store = store
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.checker = checker
        self.top_k = top_k
        self.min_score = min_score

    def ask(self, question: str, k: int | None = None, retrieve_only: bool = False, filters=None) -> Answer:
        started = time.perf_counter()
        question = question.strip()
        answer = Answer(question=question)
        try:
            if not question:
                answer.error = "empty question"
                return answer
            if self.store.count() == 0:
                answer.error = self.prompts.render("empty_store")
                self._refuse(answer, text=answer.error)
                return answer
            answer.sources = self.retriever.retrieve(question, k or self.top_k, answer.timings, filters=filters)
            if retrieve_only or self.llm is None:
                return answer
            if not answer.sources or answer.sources[0].score < self.min_score:
                # Nothing relevant was found: do not let the model guess from its own memory.
                self._refuse(answer)
                return answer
            t0 = time.perf_counter()
            try:
                draft = self.llm.chat(self.prompts.answer_messages(question, answer.sources))
            except LLMUnavailable as exc:
                answer.error = self.prompts.render("llm_unavailable", url=exc.url)
                answer.answer = answer.error
                return answer
            finally:
                answer.timings["generate"] = time.perf_counter() - t0
            self.finish(answer, draft)
            return answer
        finally:
            answer.timings["total"] = time.perf_counter() - started

    def finish(self, answer: Answer, draft: str) -> Answer:
        """Checks a draft (from our LLM or pasted from elsewhere) against answer.sources."""
        t1 = time.perf_counter()
        answer.sentences, answer.invalid_markers = self.checker.check(answer.question, answer.sources, draft)
        answer.timings["check"] = time.perf_counter() - t1
        if not any(s.status == "supported" for s in answer.sentences):
            self._refuse(answer)
        else:
            answer.answer = self.checker.shown_text(answer.sentences)
        return answer

    def _refuse(self, answer: Answer, text: str | None = None) -> None:
        answer.refused = True
        answer.handoff_offered = True
        answer.answer = text or self.prompts.render("refusal")

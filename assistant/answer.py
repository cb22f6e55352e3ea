"""AnswerService: retrieve -> prompt -> generate -> check citations against the store -> Answer."""
from __future__ import annotations

import time
from typing import Literal

from assistant.citations import sentences_with_markers, with_markers
from assistant.llm import ChatModel, LLMUnavailable
from assistant.prompts import Prompts
from assistant.types import Answer, Sentence, Source


class AnswerService:
    def __init__(self, store, retriever, llm: ChatModel | None, prompts: Prompts, top_k: int = 5,
                 uncited: Literal["drop", "flag"] = "drop"):
        self.store = store
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.top_k = top_k
        self.uncited = uncited

    def ask(self, question: str, k: int | None = None, retrieve_only: bool = False) -> Answer:
        started = time.perf_counter()
        question = question.strip()
        answer = Answer(question=question)
        if not question:
            answer.error = "empty question"
            return answer
        if self.store.count() == 0:
            answer.refused = True
            answer.error = self.prompts.render("empty_store")
            answer.answer = answer.error
            answer.timings["total"] = time.perf_counter() - started
            return answer
        answer.sources = self.retriever.retrieve(question, k or self.top_k, answer.timings)
        if retrieve_only or self.llm is None:
            answer.timings["total"] = time.perf_counter() - started
            return answer
        t0 = time.perf_counter()
        try:
            draft = self.llm.chat(self.prompts.answer_messages(question, answer.sources))
        except LLMUnavailable as exc:
            answer.timings["generate"] = time.perf_counter() - t0
            answer.error = self.prompts.render("llm_unavailable", url=exc.url)
            answer.answer = answer.error
            answer.timings["total"] = time.perf_counter() - started
            return answer
        answer.timings["generate"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        self._check(answer, draft)
        answer.timings["check"] = time.perf_counter() - t1
        answer.timings["total"] = time.perf_counter() - started
        return answer

    def _valid_numbers(self, sources: list[Source]) -> set[int]:
        """[n] is valid only if source n was retrieved now AND its chunk is still stored unchanged."""
        stored = self.store.get([s.chunk_id for s in sources])
        return {
            s.n for s in sources
            if s.chunk_id in stored and stored[s.chunk_id].metadata.get("content_hash") == s.content_hash
        }

    def _check(self, answer: Answer, draft: str) -> None:
        valid = self._valid_numbers(answer.sources)
        shown: list[str] = []
        seen: set[str] = set()
        for text, numbers in sentences_with_markers(draft):
            if text.lower() in seen:
                continue  # small models loop; a repeated sentence adds nothing
            seen.add(text.lower())
            good = [n for n in numbers if n in valid]
            bad = [n for n in numbers if n not in valid]
            answer.invalid_markers += len(bad)
            sentence = Sentence(text=with_markers(text, good), citations=good,
                                status="cited" if good else "uncited", dropped_markers=bad)
            answer.sentences.append(sentence)
            if good or self.uncited == "flag":
                shown.append(sentence.text if good else f"{sentence.text} [no source]")
        if not any(s.status == "cited" for s in answer.sentences):
            answer.refused = True
            answer.answer = self.prompts.render("refusal")
        else:
            answer.answer = " ".join(shown)

"""AnswerService: retrieve -> evidence from the records (+ an LLM lead) -> check every sentence -> Answer.

The answer is built evidence first: fields and sentences quoted from the retrieved records,
each citing its record. The LLM only writes a short lead, shown only if the checker accepts
it; otherwise a plain template lead introduces the evidence. Questions a rule can answer
(identifier look-ups, "which box", capture dates) never reach the LLM.
"""

from __future__ import annotations

import logging
import time

from assistant.answering.evidence import rule_routed, select_evidence
from assistant.answering.prompts import Prompts
from assistant.answering.verify.checker import CitationChecker
from assistant.backends.llm import ChatModel, LLMUnavailable
from assistant.core.types import Answer, Sentence, Source, content_hash

MAX_LEAD_SENTENCES = 2


log = logging.getLogger(__name__)


class AnswerService:
    def __init__(
        self,
        store,
        retriever,
        llm: ChatModel | None,
        prompts: Prompts,
        checker: CitationChecker,
        top_k: int = 5,
        min_score: float = 0.0,
        evidence_first: bool = True,
    ):
        self.store = store
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.checker = checker
        self.top_k = top_k
        self.min_score = min_score
        self.evidence_first = evidence_first
        from assistant.backends.store import unreachable_errors

        self.store_down = unreachable_errors()

    def ask(
        self,
        question: str,
        k: int | None = None,
        retrieve_only: bool = False,
        filters=None,
        contexts: list[str] | None = None,
        retrieved: Answer | None = None,
    ) -> Answer:
        """contexts: passages given with the question (evaluation sets that bring their own); they replace
        retrieval and are the only evidence the checker accepts. retrieved: an earlier retrieve_only
        answer to the same question (the console shows its sources first), so retrieval runs once."""
        started = time.perf_counter()
        question = question.strip()
        answer = Answer(question=question)
        valid: dict[int, str] | None = None
        try:
            if not question:
                answer.error = "empty question"
                return answer
            if contexts:
                answer.sources = context_sources(contexts)
                # As for stored chunks, the source's title heads its text ("Context 1" may be quoted).
                valid = {s.n: f"{s.title}\n{s.text}" for s in answer.sources}
            else:
                if self.store.count() == 0:
                    answer.error = self.prompts.render("empty_store")
                    self._refuse(answer, text=answer.error)
                    return answer
                if retrieved is not None:
                    answer.sources = list(retrieved.sources)
                    answer.timings.update({s: t for s, t in retrieved.timings.items() if s != "total"})
                else:
                    answer.sources = self.retriever.retrieve(question, k or self.top_k, answer.timings, filters=filters)
            if retrieve_only or self.llm is None:
                return answer
            if not contexts and not any(
                s.score >= self.min_score or s.matched_by == "identifier" for s in answer.sources
            ):
                # Nothing relevant was found: do not let the model guess from its own memory.
                self._refuse(answer)
                return answer
            if not self.evidence_first:
                draft = self._generate(answer)
                if draft is not None:
                    self.finish(answer, draft, valid)
                return answer
            t0 = time.perf_counter()
            evidence = select_evidence(question, answer.sources)
            answer.timings["evidence"] = time.perf_counter() - t0
            if not evidence:
                self._refuse(answer)  # retrieved, but nothing in it answers this question
                return answer
            lead: list[Sentence] = []
            if valid is None:
                valid = self.checker.stored_texts(answer.sources)  # one store read for every sentence below
            if not rule_routed(question):
                draft = self._generate(answer)
                if draft is None:
                    return answer  # LLM unreachable: the error names it, the sources are shown
                t1 = time.perf_counter()
                lead, answer.invalid_markers = self.checker.check(question, answer.sources, draft, valid)
                answer.timings["check"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            quoted = [
                self.checker.check_sentence(question, answer.sources, e.text, [e.n], valid, kind="evidence")
                for e in evidence
            ]
            answer.timings["check"] = answer.timings.get("check", 0.0) + time.perf_counter() - t1
            shown_lead = [s for s in lead if s.shown][:MAX_LEAD_SENTENCES]
            for s in lead:
                s.shown = s in shown_lead
            if not any(s.status == "supported" for s in shown_lead):
                lead.insert(
                    0,
                    Sentence(
                        text=self.prompts.render("evidence_lead"), status="supported", shown=True, kind="template"
                    ),
                )
            answer.sentences = lead + quoted
            if not any(s.status == "supported" and s.kind != "template" for s in answer.sentences):
                self._refuse(answer)
            else:
                answer.answer = self.checker.shown_text(answer.sentences)
            return answer
        except self.store_down as exc:
            # The Chroma server went away (or is restarting): say so, offer a librarian, keep serving; the
            # next question reconnects by itself.
            log.warning("store unreachable while answering: %s: %s", type(exc).__name__, exc)
            answer.error = self.prompts.render("store_unavailable")
            self._refuse(answer, text=answer.error)
            return answer
        finally:
            answer.timings["total"] = time.perf_counter() - started

    def _generate(self, answer: Answer) -> str | None:
        t0 = time.perf_counter()
        if self.llm is None:  # callers check first; an answer without a model has no lead
            return None
        try:
            return self.llm.chat(self.prompts.answer_messages(answer.question, answer.sources))
        except LLMUnavailable as exc:
            answer.error = self.prompts.render("llm_unavailable", url=exc.url)
            answer.answer = answer.error
            return None
        finally:
            answer.timings["generate"] = time.perf_counter() - t0

    def finish(self, answer: Answer, draft: str, valid: dict[int, str] | None = None) -> Answer:
        """Checks a draft (from our LLM or pasted from elsewhere) against answer.sources
        (as stored now, or `valid`: source n -> text, for given contexts)."""
        t1 = time.perf_counter()
        answer.sentences, answer.invalid_markers = self.checker.check(answer.question, answer.sources, draft, valid)
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


def context_sources(contexts: list[str]) -> list[Source]:
    return [
        Source(
            n=i,
            chunk_id=f"context-{i}",
            source_type="context",
            record_id=f"context-{i}",
            title=f"Context {i}",
            score=1.0,
            text=text,
            content_hash=content_hash(text),
        )
        for i, text in enumerate(contexts, 1)
    ]

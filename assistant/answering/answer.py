"""AnswerService: retrieve -> evidence from the records (+ an LLM lead) -> check every sentence -> Answer.

The answer is built evidence first: fields and sentences quoted from the retrieved records,
each citing its record, and what the records say about the question's conditions ("none of the records
we found is from 1950"). That answer is ready as soon as retrieval is (stream() yields it at once). The
LLM only writes a short lead, asked for in the background while the evidence is gathered, and added only if
it arrives within answer.lead_budget_s and the checker accepts it: a patron never waits for a sentence the
checker would throw away. Questions a rule can answer (identifier look-ups, "which box", capture dates)
never reach the LLM. Follow-up questions ("who published it?") are read with the conversation's history.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from assistant.answering.conversation import resolve
from assistant.answering.evidence import analyse, gather
from assistant.answering.prompts import Prompts
from assistant.answering.records import whole_records
from assistant.answering.verify.checker import CitationChecker
from assistant.backends.llm import ChatModel, LLMRequestRejected, LLMUnavailable
from assistant.core.types import Answer, Sentence, Source, content_hash

MAX_LEAD_SENTENCES = 2


@dataclass(frozen=True)
class Draft:
    text: str | None  # None: no text (unreachable, refused, or past the budget)
    unreachable_url: str  # the server that could not be reached, "" otherwise
    seconds: float
    rejected: str = ""  # why the server refused the request (HTTP 400), "" otherwise


DEFAULT_LEAD_BUDGET_S = 3.0
# The prompt template for each condition outcome (conditions.py); "met" needs no word.
CONDITION_TEMPLATES = {"not_met": "condition_not_met", "not_found": "work_not_found", "silent": "record_silent"}
SERVICE_NAMES = {"scan": "a scan", "copy": "a copy", "visit": "a visit", "hours": "opening hours"}


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
        lead_budget_s: float = DEFAULT_LEAD_BUDGET_S,
        lead_workers: int = 4,
    ):
        self.store = store
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.checker = checker
        self.top_k = top_k
        self.min_score = min_score
        self.evidence_first = evidence_first
        self.lead_budget_s = lead_budget_s
        # Leads are written beside the evidence; a bounded pool, as the answer gate bounds answers.
        self._leads = ThreadPoolExecutor(max_workers=max(1, lead_workers), thread_name_prefix="refdesk-lead")
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
        history: list[str] | None = None,
    ) -> Answer:
        """The finished answer (the last stage of stream())."""
        *_, answer = self.stream(question, k, retrieve_only, filters, contexts, retrieved, history)
        return answer

    def stream(
        self,
        question: str,
        k: int | None = None,
        retrieve_only: bool = False,
        filters=None,
        contexts: list[str] | None = None,
        retrieved: Answer | None = None,
        history: list[str] | None = None,
    ) -> Iterator[Answer]:
        """Yields the answer as it grows: first the evidence answer (answer.final False when a lead may
        follow), then, within the lead budget, the same answer with the model's checked lead.

        contexts: passages given with the question (evaluation sets that bring their own); they replace
        retrieval and are the only evidence the checker accepts. retrieved: an earlier retrieve_only
        answer to the same question (the console shows its sources first), so retrieval runs once.
        history: the user's earlier questions in this conversation, oldest first (follow-ups)."""
        started = time.perf_counter()
        # Decomposed accents (as some keyboards and pasted catalogue text send them) read as composed ones.
        question = unicodedata.normalize("NFC", question.strip())
        history = [unicodedata.normalize("NFC", h) for h in history or []]
        answer = Answer(question=question)
        valid: dict[int, str] | None = None
        try:
            if not question:
                answer.error = "empty question"
                yield answer
                return
            resolved = resolve(question, history)
            asked = resolved.question  # what is searched and answered: the question with its context
            if resolved.followup:
                answer.resolved_question = asked
            if contexts:
                answer.sources = context_sources(contexts)
                # As for stored chunks, the source's title heads its text ("Context 1" may be quoted).
                valid = {s.n: f"{s.title}\n{s.text}" for s in answer.sources}
            else:
                if self.store.count() == 0:
                    answer.error = self.prompts.render("empty_store")
                    self._refuse(answer, text=answer.error)
                    yield answer
                    return
                if retrieved is not None:
                    answer.sources = list(retrieved.sources)
                    answer.timings.update({s: t for s, t in retrieved.timings.items() if s != "total"})
                else:
                    answer.sources = self.retriever.retrieve(asked, k or self.top_k, answer.timings, filters=filters)
            if retrieve_only or self.llm is None:
                yield answer
                return
            if not contexts and not any(
                s.score >= self.min_score or s.matched_by == "identifier" for s in answer.sources
            ):
                # Nothing relevant was found: do not let the model guess from its own memory.
                self._refuse(answer)
                yield answer
                return
            if not self.evidence_first:
                draft = self._generate(answer, asked)
                if draft is not None:
                    self.finish(answer, draft, valid)
                yield answer
                return
            if not contexts:
                # A catalogue record is read whole (its imprint and its ISBNs may be chunked apart).
                t0 = time.perf_counter()
                answer.sources = whole_records(self.store, answer.sources)
                answer.timings["records"] = time.perf_counter() - t0
            yield from self._evidence_first(answer, asked, valid, started)
        except self.store_down as exc:
            # The Chroma server went away (or is restarting): say so, offer a librarian, keep serving; the
            # next question reconnects by itself.
            log.warning("store unreachable while answering: %s: %s", type(exc).__name__, exc)
            answer.error = self.prompts.render("store_unavailable")
            answer.final = True
            self._refuse(answer, text=answer.error)
            yield answer
        finally:
            answer.timings["total"] = time.perf_counter() - started

    def _evidence_first(
        self, answer: Answer, asked: str, valid: dict[int, str] | None, started: float
    ) -> Iterator[Answer]:
        q = analyse(asked)
        t0 = time.perf_counter()
        gathered = gather(q, answer.sources)
        answer.timings["evidence"] = time.perf_counter() - t0
        if not gathered.evidence:
            self._refuse(answer)  # retrieved, but nothing in it answers this question: the model is not asked
            yield answer
            return
        # The lead is written while the evidence is checked and shown; it is used only if it is in time. Not when a
        # condition is unmet or the records are silent on it: the model cannot know that, and would say "yes".
        lead_started = time.perf_counter()
        unmet = any(result.outcome != "met" for result in gathered.conditions)
        wants_lead = not q.rule_routed and not unmet and self.lead_budget_s > 0
        pending = (
            self._leads.submit(self._write, asked, list(answer.sources), self.lead_budget_s) if wants_lead else None
        )
        if valid is None:
            valid = self.checker.stored_texts(answer.sources)  # one store read for every sentence below
        t1 = time.perf_counter()
        quoted = [
            self.checker.check_sentence(asked, answer.sources, e.text, [e.n], valid, kind="evidence")
            for e in gathered.evidence
        ]
        answer.timings["check"] = time.perf_counter() - t1
        notices = self._notices(answer, q, gathered.conditions)
        opening = notices or [self._template(self.prompts.render("evidence_lead"))]
        answer.sentences = opening + quoted
        if not any(s.status == "supported" and s.kind != "template" for s in answer.sentences):
            if pending is not None:
                pending.cancel()  # not started yet (the pool is busy), or its lead is simply not used
            self._refuse(answer)
            yield answer
            return
        answer.answer = self.checker.shown_text(answer.sentences)
        answer.timings["first_sentence"] = time.perf_counter() - started
        if pending is None:
            yield answer
            return
        answer.final = False
        yield answer  # the evidence answer, at once
        draft = self._lead_in_time(answer, pending, lead_started)
        answer.final = True
        if draft:
            t1 = time.perf_counter()
            lead, answer.invalid_markers = self.checker.check(asked, answer.sources, draft, valid)
            answer.timings["check"] += time.perf_counter() - t1
            quoted_sources = {n for s in quoted if s.shown for n in s.citations}
            for s in lead:
                if s.status == "supported" and not set(s.citations) <= quoted_sources:
                    # A lead about a record the evidence does not quote answers another question.
                    s.status, s.shown = "unsupported", False
                    s.reasons.append("cites a source the evidence does not quote")
            shown = [s for s in lead if s.shown][:MAX_LEAD_SENTENCES]
            for s in lead:
                s.shown = s in shown
            # After the evidence, as it arrives after it: what was streamed stays as it was, in order.
            answer.sentences = opening + quoted + lead
            answer.answer = self.checker.shown_text(answer.sentences)
        yield answer

    def _lead_in_time(self, answer: Answer, pending: Future, lead_started: float) -> str | None:
        remaining = self.lead_budget_s - (time.perf_counter() - lead_started)
        try:
            return self._apply(answer, pending.result(timeout=max(0.0, remaining)))
        except FutureTimeout:
            pending.cancel()
            answer.timings["generate"] = time.perf_counter() - lead_started  # the time given to the model
            answer.timings["lead_late"] = self.lead_budget_s
            log.debug("the model's lead missed the %.1f s budget; the evidence answer stands", self.lead_budget_s)
            return None

    def _notices(self, answer: Answer, q, conditions) -> list[Sentence]:
        """What is said before the evidence: conditions no record meets or the records are silent on, and
        services (a scan, a visit) a librarian provides — each with the offer of a librarian where useful."""
        out = []
        for result in conditions:
            template = CONDITION_TEMPLATES.get(result.outcome)
            if template:
                answer.notices.append(f"{result.rule}:{result.outcome}")
                out.append(self._template(self.prompts.render(template, condition=result.phrase)))
                answer.handoff_offered = answer.handoff_offered or result.outcome == "silent"
        if q.services:
            answer.notices.extend(f"service:{name}" for name in q.services)
            wanted = " and ".join(SERVICE_NAMES[name] for name in q.services)
            out.append(self._template(self.prompts.render("service_offer", service=wanted)))
            answer.handoff_offered = True
        return out

    @staticmethod
    def _template(text: str) -> Sentence:
        return Sentence(text=text, status="supported", shown=True, kind="template")

    def _generate(self, answer: Answer, asked: str) -> str | None:
        """The model's answer without a budget (evidence_first off); None when it is unreachable."""
        draft = self._write(asked, answer.sources, None)
        if draft.rejected:
            answer.error = draft.rejected  # the model's answer is all there is in this mode: say why there is none
        return self._apply(answer, draft)

    def _write(self, asked: str, sources: list[Source], timeout_s: float | None) -> Draft:
        """Runs in the lead pool: touches nothing shared. timeout_s: the request is abandoned after this long
        (the client closes the connection, and vLLM stops generating for a closed connection)."""
        t0 = time.perf_counter()
        if self.llm is None:  # callers check first; an answer without a model has no lead
            return Draft(None, "", 0.0)
        try:
            text = self.llm.chat(self.prompts.answer_messages(asked, sources), timeout_s=timeout_s)
            return Draft(text, "", time.perf_counter() - t0)
        except LLMUnavailable as exc:
            # Late is not down: past the budget the evidence answer simply stands.
            down = "" if (timeout_s is not None and exc.timed_out) else exc.url
            return Draft(None, down, time.perf_counter() - t0)
        except LLMRequestRejected as exc:
            # The server is up but refused this prompt: a lead is simply left out (see _apply).
            log.warning("%s", exc)
            return Draft(None, "", time.perf_counter() - t0, rejected=str(exc))

    def _apply(self, answer: Answer, draft: Draft) -> str | None:
        answer.timings["generate"] = draft.seconds
        if draft.unreachable_url:
            answer.error = self.prompts.render("llm_unavailable", url=draft.unreachable_url)
            if not answer.answer:
                answer.answer = answer.error
        return draft.text

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

"""Runs the structural check and the configured verifiers over every sentence of a draft answer."""

from __future__ import annotations

from typing import Literal

from assistant.answering.citations import sentences_with_markers, with_markers
from assistant.answering.verify.base import CitedSource, SentenceCheck, Verifier
from assistant.answering.verify.injection import split_instructions
from assistant.core.registry import Registry
from assistant.core.types import Sentence, SentenceKind, Source

VERIFIERS = Registry(
    "verifier",
    {
        "lexical": "assistant.answering.verify.lexical:LexicalVerifier",
        "injection": "assistant.answering.verify.injection:InjectionVerifier",
        "semantic": "assistant.answering.verify.semantic:SemanticVerifier",
        "nli": "assistant.answering.verify.nli:NLIVerifier",
    },
)


def build_verifiers(settings, embedder) -> list[Verifier]:
    """settings: VerifySettings. Each verifier gets only what it needs."""
    out: list[Verifier] = []
    for name in settings.verifiers:
        cls = VERIFIERS.get(name)
        if name == "semantic":
            out.append(cls(embedder, settings.semantic_threshold))
        elif name == "nli":
            if settings.nli_model:
                out.append(cls(settings.nli_model, settings.nli_threshold))
        elif name == "lexical":
            out.append(cls(settings.min_coverage))
        else:
            out.append(cls())
    return out


class CitationChecker:
    def __init__(self, store, verifiers: list[Verifier], unsupported: Literal["drop", "flag"] = "drop"):
        self.store = store
        self.verifiers = verifiers
        self.unsupported = unsupported

    def stored_texts(self, sources: list[Source]) -> dict[int, str]:
        """Source n -> its text as stored now; only for chunks retrieved AND still stored unchanged."""
        ids = [s.chunk_id for s in sources] + [c for s in sources for c, _ in s.record_chunks]
        stored = self.store.get(list(dict.fromkeys(ids)))  # Chroma refuses repeated ids
        out = {}
        for s in sources:
            chunk = stored.get(s.chunk_id)
            if chunk is None or chunk.metadata.get("content_hash") != s.content_hash:
                continue
            meta = chunk.metadata
            # The stored provenance (title, locator, date) is evidence too: "captured 2008-04-30" lives there.
            header = "\n".join(str(meta.get(k, "")) for k in ("title", "locator", "date") if meta.get(k))
            text = chunk.text
            if s.record_chunks:
                # A whole record: every one of its chunks must still be stored as it was read.
                parts = [stored.get(cid) for cid, _ in s.record_chunks]
                if any(
                    p is None or p.metadata.get("content_hash") != h
                    for p, (_, h) in zip(parts, s.record_chunks, strict=True)
                ):
                    continue
                text = "\n".join(p.text for p in parts if p is not None)
            out[s.n] = f"{header}\n{text}" if header else text
        return out

    def check(
        self, question: str, sources: list[Source], draft: str, valid: dict[int, str] | None = None
    ) -> tuple[list[Sentence], int]:
        """Per-sentence verdicts for a draft with [n] markers, and how many markers resolved to nothing.
        valid: stored_texts(sources), when the caller already read it."""
        valid = self.stored_texts(sources) if valid is None else valid
        sentences: list[Sentence] = []
        seen: set[str] = set()
        for text, numbers in sentences_with_markers(draft):
            if text.lower() in seen:
                continue  # small models loop; a repeated sentence adds nothing
            seen.add(text.lower())
            sentences.append(self.check_sentence(question, sources, text, numbers, valid))
        return sentences, sum(len(s.dropped_markers) for s in sentences)

    def check_sentence(
        self,
        question: str,
        sources: list[Source],
        text: str,
        numbers: list[int],
        valid: dict[int, str] | None = None,
        kind: SentenceKind = "generated",
    ) -> Sentence:
        valid = self.stored_texts(sources) if valid is None else valid
        retrieved = {s.n: s for s in sources}
        good = [n for n in numbers if n in valid]
        bad = [n for n in numbers if n not in valid]
        reasons = [
            f"[{n}] changed or deleted in the store" if n in retrieved else f"[{n}] points to no retrieved source"
            for n in bad
        ]
        if not good:
            if not numbers:
                reasons.append("no citation")
        else:
            check = SentenceCheck(
                text=text,
                question=question,
                cited=[CitedSource(n, retrieved[n].chunk_id, *split_instructions(valid[n])) for n in good],
            )
            for verifier in self.verifiers:
                reasons.extend(f"{verifier.name}: {r}" for r in verifier.reasons(check))
        supported = bool(good) and not any(not r.startswith("[") for r in reasons)
        return Sentence(
            text=with_markers(text, good),
            citations=good,
            dropped_markers=bad,
            status="supported" if supported else "unsupported",
            reasons=reasons,
            shown=supported or self.unsupported == "flag",
            kind=kind,
        )

    def shown_text(self, sentences: list[Sentence]) -> str:
        return "\n".join(s.text if s.status == "supported" else f"{s.text} [unverified]" for s in sentences if s.shown)

"""Builds the services from Settings (constructor injection everywhere else)."""

from __future__ import annotations

from functools import cached_property

from assistant.core.settings import DERIVED_EMBEDDING_BACKENDS, Settings


class Services:
    """Lazily built, shared parts; the CLI, the Gradio app and the tests all start here."""

    def __init__(self, settings: Settings, llm=None, embedder=None):
        self.settings = settings
        self._llm = llm
        self._embedder = embedder

    @cached_property
    def embedder(self):
        if self._embedder is not None:
            return self._embedder
        from assistant.backends.embeddings import build_embedder

        return build_embedder(self.settings.embedder)

    @cached_property
    def embedder_name(self) -> str:
        from assistant.backends.embeddings import embedder_name

        return embedder_name(self.settings.embedder)

    @cached_property
    def store(self):
        from assistant.backends.store import ChunkStore

        return ChunkStore.from_settings(self.settings, self.embedder_name)

    @cached_property
    def llm(self):
        if self._llm is not None:
            return self._llm
        from assistant.backends.llm import build_llm

        return build_llm(self.settings.llm)

    @cached_property
    def prompts(self):
        from assistant.answering.prompts import Prompts

        return Prompts(self.settings.prompts_path, self.settings.llm.prompt_chars_per_source)

    @cached_property
    def retriever(self):
        from assistant.answering.retrieval import Retriever

        return Retriever(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def answers(self):
        from assistant.answering.answer import AnswerService

        return AnswerService(
            self.store,
            self.retriever,
            self.llm,
            self.prompts,
            self.checker,
            top_k=self.settings.retrieval.top_k,
            min_score=self.settings.retrieval.min_score,
            evidence_first=self.settings.answer.evidence_first,
            lead_budget_s=self.settings.answer.lead_budget_s,
            lead_workers=self.settings.answer.lead_workers,
        )

    @cached_property
    def checker(self):
        from assistant.answering.verify.checker import CitationChecker, build_verifiers

        verify = self.settings.verify
        return CitationChecker(self.store, build_verifiers(verify, self.embedder), verify.unsupported)

    @cached_property
    def refcheck(self):
        from assistant.refcheck.check import ReferenceChecker

        return ReferenceChecker(self.store, self.embedder, self.settings.refcheck.max_references)

    @cached_property
    def accounts(self):
        from assistant.web.auth.accounts import Accounts

        return Accounts(self.settings.users_path)

    @cached_property
    def auth(self):
        from assistant.web.auth.guard import Auth

        return Auth(self.settings, self.accounts)

    @cached_property
    def feedback(self):
        from assistant.web.feedback import FeedbackStore

        return FeedbackStore(self.settings.feedback_path)

    @cached_property
    def transcripts(self):
        """None unless privacy.keep_transcripts: by default the widget keeps nothing."""
        privacy = self.settings.privacy
        if not privacy.keep_transcripts:
            return None
        from assistant.web.transcripts import TranscriptStore

        return TranscriptStore(self.settings.transcripts_path, privacy.retention_days)

    @cached_property
    def patron_limits(self):
        """Rate limits, the answer gate and hand-off offers of the anonymous side (memory only)."""
        from assistant.web.ratelimit import PatronLimits

        return PatronLimits(self.settings.widget)

    @cached_property
    def handoffs(self):
        from assistant.backends.handoff import HandoffQueue

        widget = self.settings.widget
        return HandoffQueue(self.settings.handoff_path, widget.max_contact_chars, widget.max_open_handoffs)

    def manifest(self):
        from ingest.manifest import Manifest

        return Manifest(self.settings.manifest_path)

    def chunker(self):
        from ingest.chunking import Chunker, model_tokenizer

        emb = self.settings.embedding
        tokenizer = None
        # The derived models keep MiniLM's vocabulary: the same tokenizer cuts the same chunks (same ids).
        if emb.backend == "huggingface" or emb.backend in DERIVED_EMBEDDING_BACKENDS:
            from assistant.backends.embeddings import resolve_model_path

            tokenizer = model_tokenizer(resolve_model_path(emb.model))
        return Chunker(emb.chunk_tokens, emb.chunk_overlap, tokenizer, self.settings.ingest.max_chunk_chars)

    def read_stage(self):
        """The read stage of ingest (readers, language, chunks), the same in both engines."""
        from ingest.stages import ReadStage

        return ReadStage(
            self.chunker(),
            self.language_tagger(),
            self.settings.links.model_dump(),
            {"max_payload_bytes": self.settings.ingest.max_payload_bytes},
        )

    def ingestor(self, manifest, progress: bool = True, engine: str | None = None):
        """The executor ingest.engine names (or engine): "local" (threads here) or "ray" (Ray Data)."""
        from functools import partial

        if (engine or self.settings.ingest.engine) == "ray":
            from ingest.ray_engine import RayIngestor

            return RayIngestor(
                self.settings.ingest.ray,
                partial(read_stage_for, self.settings),
                partial(embed_function_for, self.settings.embedder),  # with a derived model's dir filled in
                self.store,
                self.embedder_name,
                manifest,
                progress,
            )
        from ingest.pipeline import Ingestor

        return Ingestor(
            self.store,
            lambda texts: self.embedder.get_text_embedding_batch(texts),
            self.embedder_name,
            manifest,
            self.read_stage(),
            progress,
            make_read_stage=partial(read_stage_for, self.settings),
            read_worker_min_bytes=self.settings.ingest.read_worker_min_bytes,
            extract_workers=self.settings.ingest.extract_workers,
        )

    def language_tagger(self):
        ingest = self.settings.ingest
        if not ingest.detect_language:
            return None
        from ingest.language import LanguageTagger

        return LanguageTagger(ingest.language_min_confidence)


# Module-level, so Ray ships them to its workers by reference (with their settings) rather than by value.
def read_stage_for(settings: Settings):
    """The read stage a Ray read task runs: the same readers, language tagger and chunker as here."""
    return Services(settings).read_stage()


def embed_function_for(embedding, use_gpu: bool = False):
    """texts -> vectors with the configured model, for a Ray embedding actor (on the GPU when it has one)."""
    from assistant.backends.embeddings import build_embedder

    if use_gpu:
        embedding = embedding.model_copy(update={"device": "cuda"})
    return build_embedder(embedding).get_text_embedding_batch

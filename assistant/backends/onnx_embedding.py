"""The packaged MiniLM exported here to ONNX and quantised to int8, run by ONNX Runtime.

Why not sentence-transformers' `backend="onnx"`: it exports through optimum, whose current release pins
transformers below the version the rest of refdesk runs on (installing it would downgrade transformers and
tokenizers). The export below is torch's own (`torch.onnx.export`), the quantisation ONNX Runtime's
(`quantize_dynamic`: int8 weights per output channel, activations quantised on the fly), the pooling the
one all-MiniLM-L6-v2 declares (mean over real tokens, then L2-normalised). The export checks itself: the
int8 model must agree with the torch model on sample texts (mean cosine >= MIN_MEAN_COSINE) or nothing is
written. Nothing is downloaded: the source is a local directory, the result goes under the data dir.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
from pydantic import PrivateAttr

from assistant.backends.embeddings import EncodingEmbedding

logger = logging.getLogger(__name__)

READY = "refdesk-onnx.json"  # written last: its presence means the export finished and passed its check
MODEL_FILE = "model_int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
ENCODE_BATCH = 16  # texts per run, sorted by length: little padding (64 unsorted texts at once: a third of the speed)
MIN_MEAN_COSINE = 0.97  # int8 vs torch on the check texts; measured 0.991 for all-MiniLM-L6-v2
CHECK_TEXTS = (
    "Do you have Pride and prejudice?",
    "Who wrote Rereading George Eliot?",
    "Which box holds the correspondence of the Alpha Omega Alpha society, 1920-1935?",
    "What did the IANA home page say, as archived in 2014?",
    "Stolz und Vorurteil : Roman / Jane Austen ; aus dem Englischen übersetzt.",
    "Series 3: Financial records. Box 12, Folder 4. Ledgers and account books.",
)


def export(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Exports a local sentence-transformers BERT model to int8 ONNX under out_dir; returns out_dir."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    reference = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    max_length = int(reference.max_seq_length)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    # Eager attention: the exported graph then holds plain matmuls that ONNX Runtime quantises.
    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(list(CHECK_TEXTS[:2]), padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(prefix="refdesk-onnx-") as tmp:
        fp32 = Path(tmp) / "model.onnx"
        logger.info("exporting %s to ONNX", model_dir)
        torch.onnx.export(
            LastHidden(bert),
            tuple(sample[name] for name in INPUTS),
            str(fp32),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
        staging = Path(tmp) / "out"
        staging.mkdir()
        logger.info("quantising to int8")
        quantize_dynamic(str(fp32), str(staging / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        tokenizer.save_pretrained(str(staging))
        embedder = OnnxEncoder(staging, max_length, threads=0)
        got = embedder.encode(list(CHECK_TEXTS))
        want = reference.encode(list(CHECK_TEXTS), normalize_embeddings=True)
        agreement = float(np.mean(np.sum(got * want, axis=1)))
        if agreement < MIN_MEAN_COSINE:
            raise ValueError(
                f"{model_dir}: the int8 ONNX model agrees with the torch model only to a mean cosine of "
                f"{agreement:.3f} (< {MIN_MEAN_COSINE}); not written"
            )
        (staging / READY).write_text(
            json.dumps({"source": str(model_dir), "max_length": max_length, "check_mean_cosine": round(agreement, 4)})
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, out_dir)
    logger.info("int8 ONNX model written to %s (mean cosine to torch %.3f)", out_dir, agreement)
    return out_dir


class OnnxEncoder:
    """Tokenise, run the int8 graph, mean-pool over real tokens, normalise."""

    def __init__(self, model_dir: Path, max_length: int, threads: int = 0):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.max_length = max_length

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        hidden = self.session.run(None, {name: enc[name].astype(np.int64) for name in INPUTS})[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class OnnxEmbedding(EncodingEmbedding):
    """The int8 ONNX model as a llama-index embedding (the interface ingest and retrieval share)."""

    model_dir: str = ""
    _encoder: OnnxEncoder = PrivateAttr()

    def __init__(self, model_dir: str | Path, threads: int = 0, **kwargs):
        super().__init__(model_dir=str(model_dir), **kwargs)
        ready = Path(model_dir) / READY
        if not ready.is_file():
            raise FileNotFoundError(f"{model_dir}: no ONNX model here (refdesk models prepare writes it)")
        max_length = int(json.loads(ready.read_text())["max_length"])
        self._encoder = OnnxEncoder(Path(model_dir), max_length, threads)

    @classmethod
    def class_name(cls) -> str:
        return "OnnxEmbedding"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        # Similar lengths together: less padding per run (sentence-transformers' encode does the same).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: dict[int, list[float]] = {}
        for start in range(0, len(order), ENCODE_BATCH):
            part = order[start : start + ENCODE_BATCH]
            for i, vector in zip(part, self._encoder.encode([texts[i] for i in part]).tolist(), strict=True):
                vectors[i] = vector
        return [vectors[i] for i in range(len(texts))]

"""Optional entailment check with a local cross-encoder NLI model (off by default).

Enabled by `verify.nli_model = "/path/to/local/model"`; refdesk never downloads one.
"""

from __future__ import annotations

from pathlib import Path

from assistant.answering.verify.base import SentenceCheck


class NLIVerifier:
    name = "nli"

    def __init__(self, model_dir: str, threshold: float = 0.5, model=None, entailment_label: str = "entailment"):
        if model is None:
            path = Path(model_dir).expanduser()
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path}: verify.nli_model must be a local cross-encoder directory")
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(str(path), device="cpu")
        self.model = model
        self.threshold = threshold
        labels = getattr(getattr(model, "config", None), "id2label", None) or {
            0: "contradiction",
            1: "entailment",
            2: "neutral",
        }
        self.entail_index = next((int(i) for i, label in labels.items() if str(label).lower() == entailment_label), 1)

    def reasons(self, check: SentenceCheck) -> list[str]:
        if not check.cited:
            return []
        pairs = [(c.text, check.text) for c in check.cited]
        scores = self.model.predict(pairs, apply_softmax=True)
        best = max(float(row[self.entail_index]) for row in scores)
        if best < self.threshold:
            return [f"not entailed by the cited source (p={best:.2f})"]
        return []

"""Citation checking: a registry of small verifiers run on every answer sentence."""

from assistant.answering.verify.base import CitedSource, SentenceCheck, Verifier
from assistant.answering.verify.checker import VERIFIERS, CitationChecker

__all__ = ["CitationChecker", "CitedSource", "SentenceCheck", "Verifier", "VERIFIERS"]

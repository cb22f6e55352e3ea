"""Citation checking: a registry of small verifiers run on every answer sentence."""
from assistant.verify.base import CitedSource, SentenceCheck, Verifier
from assistant.verify.checker import CitationChecker, VERIFIERS

__all__ = ["CitationChecker", "CitedSource", "SentenceCheck", "Verifier", "VERIFIERS"]

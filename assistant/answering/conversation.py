"""Follow-up questions in a conversation: "Who published it?" after "Do you have Kavalier and Clay?".

A question that refers back (FOLLOWUP_RULES: "it", "that one", "the 2004 one", a leading "and …") and names
nothing of its own is read together with what the previous question was about; any other question starts a
new topic. The previous question is itself resolved first, so "and the 2004 one?" after "who published
it?" still knows the work. Only the user's own earlier questions are used: never the assistant's text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answering.questions import PatternRule, intents, key_terms, names, without_conditions

FOLLOWUP_RULES: tuple[PatternRule, ...] = (
    PatternRule("pronoun", re.compile(r"\b(it|its|it's|this one|that one|this book|that book|this record"
                                      r"|that record|this item|that item|the same|them|they|those|these)\b", re.I)),
    PatternRule("the other one", re.compile(r"\bthe (\d{4}|first|second|third|last|other|earlier|later|older|newer"
                                            r"|latest|oldest) (one|edition|version|copy|printing)\b", re.I)),
    PatternRule("continuation", re.compile(r"^\s*(and|also|what about|how about)\b", re.I)),
)  # fmt: skip
MAX_HISTORY = 4  # earlier questions kept for resolving: a conversation drifts; older turns say little
MAX_CHARS_PER_TURN = 500  # a pasted essay in the history must not become a query


@dataclass(frozen=True)
class Resolved:
    question: str  # what to search and answer with
    followup: bool  # read with the previous question's subject
    subject: str  # the words carried over ("" for a new topic)


def is_followup(question: str) -> bool:
    """A reference back and no name of its own ("Who published it?", not "Who published Summerland?")."""
    return any(rule.pattern.search(question) for rule in FOLLOWUP_RULES) and not names(question)


def subject_of(question: str) -> str:
    """What a question is about: its key terms without intent and condition words."""
    return " ".join(dict.fromkeys(key_terms(without_conditions(question))))


def resolve(question: str, history: list[str] | None = None) -> Resolved:
    """history: the user's earlier questions in this conversation, oldest first."""
    earlier = [h[:MAX_CHARS_PER_TURN] for h in (history or []) if h and h.strip()][-MAX_HISTORY:]
    if not earlier or not is_followup(question):
        return Resolved(question, False, "")
    previous = resolve(earlier[-1], earlier[:-1]).question
    # "Who published it?" asks its own thing about the same work; "and the 2004 one?" asks the same thing again.
    subject = subject_of(previous) if intents(question) else previous.rstrip("?.! ")
    if not subject:
        return Resolved(question, False, "")
    return Resolved(f"{question} ({subject})", True, subject)

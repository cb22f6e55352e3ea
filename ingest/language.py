"""The language of a record, as one English name ("German", "Hebrew") beside its other filters.

A catalogue record codes its language (MARC 008/041, read by ingest/marc.py); an archived page may declare
one (<html lang="fr">); finding-aid folders, PDF pages, text files and undeclared pages say nothing. For
those, lingua (a well-kept detector with a Rust core, no network, no model download: its models ship in
the wheel) guesses from the record's own words, and the guess is stored with its confidence
(`language_confidence`) and `language_source = "detected"`, so a filter or a librarian can tell a coded
language from a guessed one. Query understanding ("in Hebrew", "French books") prefers records whose
`language` matches (answering/query.py); it reads the same English names.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from assistant.core.types import SourceRecord

LETTER = re.compile(r"[^\W\d_]")
# Addresses are not words of any language ("http www archive org" reads as Maori): left out of the sample.
ADDRESS = re.compile(r"(?:https?://|ftp://|www\.)\S+|\S+@\S+\.\S+", re.IGNORECASE)
# Fields that hold refdesk's or the archive's own words, or none: not evidence of the record's language.
NOT_LANGUAGE_EVIDENCE = frozenset(
    {"Collection number", "Identifier", "Location", "Digital object", "Date", "Dates", "Format", "Year",
     "ISBN", "ISSN", "Call number", "Online", "Language", "Extent", "Physical description"}
)  # fmt: skip


@lru_cache(maxsize=512)
def language_name(code: str) -> str:
    """An ISO 639 code ("fr", "fre", "fra") as the English name the MARC reader stores ("French"); a name
    or an unknown code as it is."""
    import pycountry

    code = code.strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}", code):
        return code
    code = code.lower()
    found = (
        pycountry.languages.get(alpha_2=code)
        if len(code) == 2
        else pycountry.languages.get(bibliographic=code) or pycountry.languages.get(alpha_3=code)
    )
    return found.name if found else code


@dataclass(frozen=True)
class GuessedLanguage:
    """lingua's guess for a text: an English language name and its confidence (0-1)."""

    name: str
    confidence: float

    def mark(self, filters: dict) -> dict:
        """filters with the guess in them, as a guess (`language_source = "detected"`)."""
        filters["language"] = self.name
        filters["language_confidence"] = round(self.confidence, 3)
        filters["language_source"] = "detected"
        return filters


# language_source of a record whose own words were read where its text was extracted and gave no guess (too
# few letters, or no language at min_confidence): not guessed again from the record's text, whose first line
# is refdesk's own English ("Archived page …, captured …").
UNDETERMINED = "undetermined"


def mark_undetermined(filters: dict) -> dict:
    filters["language_source"] = UNDETERMINED
    return filters


# Every text is read again, with lingua's high-accuracy mode, over only the languages its trigram reading
# ranked this high.
RERANK_CANDIDATES = 5


class LanguageTagger:
    """lingua, in two readings; `tag` fills in a record's language in place when the record does not state one.

    First the trigram reading (lingua's low-accuracy mode) over all spoken languages; then lingua's
    high-accuracy mode over only the RERANK_CANDIDATES languages that reading ranked highest. Long texts
    come out as the trigram reading ranked them (from 120 cleaned-up characters lingua reads trigrams only
    in either mode). Short ones (a folder title, a page's first lines) need the 1- to 5-gram models: the
    trigram reading alone called 1 in 18 short English folder titles on the shared finding aids Welsh,
    Maori or Catalan. But loading those models for all 75 languages takes ~13 s and ~0.8 GB the first time
    a short text comes, holding the GIL the embedding thread needs (the model waited 16 s on the shared
    WARC set); over the candidates, a run loads only what its texts need. Measured on 17,562 shared MARC,
    EAD and WARC records: as many wrong guesses as high-accuracy mode over every language, and 402 more
    records guessed (README "Language")."""

    def __init__(self, min_confidence: float = 0.5, min_letters: int = 40, sample_chars: int = 2000):
        from lingua import LanguageDetectorBuilder

        # Spoken languages only: Latinate English ("The Bibliographic Organization … of Agricultural
        # Economics") reads as Latin to any detector, and a Latin record is catalogued as such.
        self.detector = LanguageDetectorBuilder.from_all_spoken_languages().with_low_accuracy_mode().build()
        self._candidates_detectors: dict[frozenset, object] = {}  # lingua shares loaded models between them
        self.min_confidence = min_confidence
        self.min_letters = min_letters
        self.sample_chars = sample_chars

    def tag(self, record: SourceRecord) -> SourceRecord:
        sample = self.sample_to_guess(record)
        if sample is not None:
            guessed = self.guess_language(sample)
            if guessed is not None:
                guessed.mark(record.filters)
        return record

    def sample_to_guess(self, record: SourceRecord) -> str | None:
        """The record's own words to guess its language from, or None when there is nothing to guess: a stated
        language (made the English name here, in place) or one guessed where the record was extracted."""
        stated = str(record.filters.get("language") or "")
        if stated:
            record.filters["language"] = language_name(stated)  # "fr" from <html lang> -> "French"
            return None
        if record.filters.get("language_source"):  # guessed (or found undetermined) where it was extracted
            return None
        return self._sample(record)

    def tag_all(self, items: Iterable, extractor=None) -> Iterator:
        """A reader's items, in order, each record with its language. extractor: the run's text-extraction
        worker (ingest.warc.TextExtractor); the guesses are made there, GUESSES_PER_TASK records a task, or
        None to guess here, one record at a time (a Ray read task is a worker of its own)."""
        if extractor is None:
            for item in items:
                yield self.tag(item) if isinstance(item, SourceRecord) else item
            return
        yield from _WorkerGuesses(self, extractor).tagged(items)

    @property
    def options(self) -> tuple[float, int, int]:
        """What shared_tagger() needs to make the same tagger in another process."""
        return (self.min_confidence, self.min_letters, self.sample_chars)

    def guess_language(self, text: str) -> GuessedLanguage | None:
        """The language of a text of the record's own words, or None: too few letters, or no guess at
        min_confidence."""
        sample = ADDRESS.sub(" ", text[: self.sample_chars])
        if len(LETTER.findall(sample)) < self.min_letters:
            return None
        best = self.guess(sample)
        if best is None or best.value < self.min_confidence:
            return None
        return GuessedLanguage(language_name(best.language.iso_code_639_3.name), float(best.value))

    def guess(self, sample: str):
        """lingua's most likely language for the sample with its confidence, or None."""
        values = self.detector.compute_language_confidence_values(sample)
        candidates = frozenset(v.language for v in values[:RERANK_CANDIDATES] if v.value > 0)
        if len(candidates) > 1:
            values = self._candidates_detector(candidates).compute_language_confidence_values(sample)
        return next(iter(values), None)

    def _candidates_detector(self, candidates: frozenset):
        from lingua import LanguageDetectorBuilder

        detector = self._candidates_detectors.get(candidates)
        if detector is None:
            if len(self._candidates_detectors) >= 1024:  # a detector is small; bound them anyway
                self._candidates_detectors.clear()
            detector = LanguageDetectorBuilder.from_languages(*candidates).build()
            self._candidates_detectors[candidates] = detector
        return detector

    def _sample(self, record: SourceRecord) -> str:
        """The record's own words: a fielded record's values (not refdesk's English labels), else its text."""
        if record.fields:
            words = [record.provenance.title] + [v for k, v in record.fields if k not in NOT_LANGUAGE_EVIDENCE]
            return "\n".join(words)[: self.sample_chars]
        return record.text[: self.sample_chars]


# Records whose language one task of the extraction worker guesses (a finding aid's folders: ~2 ms each),
# tasks in flight while the reader goes on, and the records held back at most while a task fills (a
# catalogue whose records mostly state their language passes the rest on without waiting for 64 guesses).
GUESSES_PER_TASK = 64
GUESS_TASKS_AHEAD = 4
MAX_HELD_RECORDS = 512


class _WorkerGuesses:
    """One file's records, their languages guessed in the extraction worker, handed on in the order read.

    lingua holds the GIL while it reads (Rust, called without releasing it): guessing the 17,176 shared
    finding-aid folders in the reader thread took 30.5 s of it, which the model's Python between torch ops
    waits for. Records wait in `held` until their task's guesses come back; items that need no guess, with
    nothing before them waiting, pass straight on."""

    def __init__(self, tagger: LanguageTagger, extractor):
        self.tagger = tagger
        self.extractor = extractor
        self.held: list = []  # items read since the last task, in order
        self.to_guess: list[tuple[SourceRecord, str]] = []  # those of them with a language to guess, and samples
        # (items, records to mark, their samples, a future of their guesses or the guesses made here), oldest first
        self.tasks: deque = deque()

    def tagged(self, items: Iterable) -> Iterator:
        try:
            for item in items:
                self.held.append(item)
                if isinstance(item, SourceRecord):
                    sample = self.tagger.sample_to_guess(item)
                    if sample is not None:
                        self.to_guess.append((item, sample))
                if len(self.to_guess) >= GUESSES_PER_TASK or len(self.held) >= MAX_HELD_RECORDS:
                    self._submit()
                    while len(self.tasks) > GUESS_TASKS_AHEAD:
                        yield from self._resolve(self.tasks.popleft())
                elif not self.to_guess and not self.tasks:
                    yield from self.held  # nothing before them waits for a guess
                    self.held = []
        except Exception:
            yield from self._rest()  # what was read before the reader's error still counts
            raise
        yield from self._rest()

    def _rest(self) -> Iterator:
        self._submit()
        while self.tasks:
            yield from self._resolve(self.tasks.popleft())

    def _submit(self) -> None:
        if not self.held:
            return
        records = [record for record, _ in self.to_guess]
        samples = [sample for _, sample in self.to_guess]
        guesses = None
        if samples and not self.extractor.inline_only:
            guesses = self.extractor.submit(guess_languages, samples, self.tagger.options)
        elif samples:
            guesses = [self.tagger.guess_language(sample) for sample in samples]
        self.tasks.append((self.held, records, samples, guesses))
        self.held, self.to_guess = [], []

    def _resolve(self, task) -> list:
        from concurrent.futures.process import BrokenProcessPool

        items, records, samples, guesses = task
        if guesses is not None and not isinstance(guesses, list):
            try:
                guesses = guesses.result()
            except BrokenProcessPool:  # the worker is gone: the rest of the run guesses here
                self.extractor.inline_only = True
                guesses = [self.tagger.guess_language(sample) for sample in samples]
        for record, guessed in zip(records, guesses or (), strict=True):
            if guessed is not None:
                guessed.mark(record.filters)
        return items


def guess_languages(samples: list[str], options: tuple[float, int, int]) -> list[GuessedLanguage | None]:
    """The guesses for a batch of samples, in the extraction worker (by _WorkerGuesses)."""
    tagger = shared_tagger(options)
    return [tagger.guess_language(sample) for sample in samples]


@lru_cache(maxsize=4)
def shared_tagger(options: tuple[float, int, int]) -> LanguageTagger:
    """One tagger per options in this process: a text-extraction worker guesses the language of the pages it
    extracts with it (ingest.warc), loading lingua's models once."""
    min_confidence, min_letters, sample_chars = options
    return LanguageTagger(min_confidence=min_confidence, min_letters=min_letters, sample_chars=sample_chars)

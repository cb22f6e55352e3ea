"""Records -> chunks sized for the embedding model, each carrying its record's provenance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from llama_index.core.node_parser import SentenceSplitter

from assistant.core.types import Chunk, RecordField, SourceRecord

Tokenizer = Callable[[str], list]


def whitespace_tokenizer(text: str) -> list[str]:
    return text.split()


def model_tokenizer(model_path: str) -> Tokenizer:
    """The embedding model's own word-piece tokenizer, so chunks fit its 256-token window. The splitter only
    counts what it returns, and calls it for every sentence and merge: the Rust tokenizer itself is asked
    for ids, since transformers' wrapper (and its token strings) cost more per call than the tokenizing
    did (two thirds of the read stage on MARC records). Same counts, so the same chunks and chunk ids."""
    spec = Path(model_path) / "tokenizer.json"
    if spec.is_file():
        from tokenizers import Tokenizer as RustTokenizer

        rust = RustTokenizer.from_file(str(spec))
        rust.no_padding()  # the file pads and cuts to 128 tokens: a whole record is measured here
        rust.no_truncation()
        return lambda text: rust.encode(text, add_special_tokens=False).ids
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The splitter measures whole records, longer than the model's window: that warning is noise here.
    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(model_path)
    return lambda text: tok.tokenize(text)


def hard_cut(text: str, max_chars: int) -> Iterator[str]:
    """Pieces of at most max_chars: cut at the last whitespace in each window when there is one, else
    mid-word (a 30 MB string with no spaces is one "word" to any splitter). Walks by index: slicing off
    the rest each time would copy a large text once per piece."""
    start, end = 0, len(text)
    while end - start > max_chars:
        cut = max(text.rfind(" ", start, start + max_chars), text.rfind("\n", start, start + max_chars))
        cut = cut if cut > start + max_chars // 2 else start + max_chars
        yield text[start:cut]
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield text[start:end]


def sentence_splitter() -> Callable[[str], list[str]]:
    """What llama-index's SentenceSplitter splits a long paragraph with by default (an untrained Punkt, spans
    run on to the next sentence's start), with the scan over the whole paragraph freed of nltk's time limit.

    nltk (3.10) runs every pattern under the `regex` engine's timeout, 5 s by default. That clock is C's
    clock(): CPU time of the whole process, every thread, counted from the start of the scan. Punkt scans a
    paragraph once for possible sentence ends and does its Python work between the matches, so the limit
    covered a record's whole sentence split: 400 kB of text dense with full stops took the 5 s alone here,
    and far less text does once the embedding and store threads of an ingest process spend CPU meanwhile;
    the record's file failed part-way. The pattern is nltk's own and linear in the text (nltk #2866; timed
    linear here, see the README), and what a record may hold is bounded by the readers
    (ingest.max_payload_bytes), not by this limit. llama-index's own shared tokenizer also looks for nltk
    data to download first. nltk is imported here, not with the module: 2 s that only a process that
    chunks should pay (a Ray driver imports the stages and chunks nothing)."""
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer_internal
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    punkt = PunktSentenceTokenizer(lang_vars=_punkt_vars_without_time_limit()())
    return lambda text: split_by_sentence_tokenizer_internal(text, punkt)


@cache
def _punkt_vars_without_time_limit() -> type:
    """Punkt's English language variables with the sentence-end pattern compiled without a time limit; the
    class is made once per process (it needs nltk, imported only by a process that chunks)."""
    from nltk import redos
    from nltk.tokenize.punkt import PunktLanguageVars

    class PunktVarsWithoutTimeLimit(PunktLanguageVars):
        def period_context_re(self):
            return redos.compile(super().period_context_re(), timeout=None)  # the same compiled pattern

    return PunktVarsWithoutTimeLimit


class Chunker:
    def __init__(
        self, chunk_tokens: int = 200, overlap: int = 20, tokenizer: Tokenizer | None = None, max_chars: int = 4000
    ):
        # Passing a tokenizer keeps llama-index from its default tiktoken one (and any download).
        self.splitter = SentenceSplitter(
            chunk_size=chunk_tokens,
            chunk_overlap=overlap,
            tokenizer=tokenizer or whitespace_tokenizer,
            chunking_tokenizer_fn=sentence_splitter(),
        )
        self.max_chars = max_chars

    def pieces(self, text: str) -> Iterator[str]:
        """The splitter's pieces, none longer than max_chars whatever the splitter made of the text."""
        for piece in self.splitter.split_text(text):
            yield from hard_cut(piece, self.max_chars)

    def chunks(self, record: SourceRecord) -> Iterator[Chunk]:
        title = record.provenance.title.strip()[: self.max_chars // 4]
        pieces = list(self.pieces(record.text))
        fields = fields_by_piece(record.fields, pieces) if record.fields else [None] * len(pieces)
        for position, (piece, piece_fields) in enumerate(zip(pieces, fields, strict=True)):
            # The title travels with every piece so a chunk read alone still says what it is about.
            first_line = piece.split("\n", 1)[0]
            text = piece if not title or title in first_line else f"{title}\n{piece}"[: self.max_chars]
            yield Chunk.make(text, record.provenance, position, record.filters, record.search, piece_fields)


FIELD_HEAD_CHARS = 60  # a field's line is found in a piece by its first characters (a long note may go on past it)


def fields_by_piece(fields: list[RecordField], pieces: list[str]) -> list[list[RecordField]]:
    """Each field goes with the piece its "Label: value" line starts in, in order; the pieces overlap, so a
    line is looked for from the piece the previous field went to. A field the splitter cut out of every
    piece (none should be) goes with the last piece searched rather than being lost."""
    out: list[list[RecordField]] = [[] for _ in pieces]
    at = 0
    for label, value in fields:
        head = f"{label}: {value}"[:FIELD_HEAD_CHARS]
        found = next((i for i in range(at, len(pieces)) if head in pieces[i]), None)
        at = found if found is not None else at
        out[at].append((label, value))
    return out

"""Records -> chunks sized for the embedding model, each carrying its record's provenance."""
from __future__ import annotations

from typing import Callable, Iterator

from llama_index.core.node_parser import SentenceSplitter

from assistant.types import Chunk, SourceRecord

Tokenizer = Callable[[str], list]


def whitespace_tokenizer(text: str) -> list[str]:
    return text.split()


def model_tokenizer(model_path: str) -> Tokenizer:
    """The embedding model's own word-piece tokenizer, so chunks fit its 256-token window."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The splitter measures whole records, longer than the model's window: that warning is noise here.
    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(model_path)
    return lambda text: tok.tokenize(text)


class Chunker:
    def __init__(self, chunk_tokens: int = 200, overlap: int = 20, tokenizer: Tokenizer | None = None):
        # Passing a tokenizer keeps llama-index from its default tiktoken one (and any download).
        self.splitter = SentenceSplitter(
            chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=tokenizer or whitespace_tokenizer
        )

    def chunks(self, record: SourceRecord) -> Iterator[Chunk]:
        title = record.provenance.title.strip()
        for position, piece in enumerate(self.splitter.split_text(record.text)):
            # The title travels with every piece so a chunk read alone still says what it is about.
            first_line = piece.split("\n", 1)[0]
            text = piece if not title or title in first_line else f"{title}\n{piece}"
            yield Chunk.make(text, record.provenance, position, record.filters)

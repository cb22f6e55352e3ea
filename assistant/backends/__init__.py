"""Back-ends: the embedding model, the Chroma store, the chat model (vLLM / OpenAI-compatible), the
vLLM launcher, model preparation and the hand-off queue (SQLite). Depends on core."""

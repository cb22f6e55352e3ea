"""Web: the FastAPI app, the librarian console and patron widget (Gradio), the OpenAI-compatible API,
the access guard (auth/), rate limits, rendering and the console's stores (feedback, transcripts)."""

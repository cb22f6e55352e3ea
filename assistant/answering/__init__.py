"""Answering: retrieval, evidence-first answers, citation markers and the sentence checker (verify/).
Depends on core; reaches models and stores only through the back-ends it is handed."""

"""AnswerService logic: scripted fake LLM over real retrieved demo chunks (fake embedder, real Chroma)."""

import pytest

from assistant.backends.llm import FakeChat, OpenAICompatibleChat
from assistant.core.settings import LLMSettings
from assistant.services import Services
from tests.conftest import catalogue_and_finding_aid, free_port, ingest


@pytest.fixture
def loaded(fake_settings, demo_copy):
    def make(script=None, llm=None):
        # These tests are about checking the LLM's own sentences: the plain RAG path.
        settings = fake_settings.model_copy(
            update={"answer": fake_settings.answer.model_copy(update={"evidence_first": False})}
        )
        services = Services(settings, llm=llm or FakeChat(script=script))
        ingest(services, catalogue_and_finding_aid(demo_copy))
        return services

    return make


def test_valid_citation_is_kept_and_resolves_to_the_store(loaded):
    services = loaded(lambda m: "Summerland was written by Michael Chabon [1].")
    answer = services.answers.ask("Who wrote Summerland?")
    assert not answer.refused and answer.invalid_markers == 0
    assert answer.answer == "Summerland was written by Michael Chabon [1]."
    (sentence,) = answer.sentences
    assert sentence.citations == [1] and sentence.status == "supported"
    assert answer.sources[0].chunk_id in services.store.get([answer.sources[0].chunk_id])
    assert set(answer.timings) >= {"embed_query", "retrieve", "generate", "check", "total"}


def test_prompt_numbers_the_retrieved_sources(loaded):
    fake = FakeChat()
    services = loaded(llm=fake)
    answer = services.answers.ask("Who wrote Summerland?", k=3)
    user = fake.calls[0][1]["content"]
    assert "Question: Who wrote Summerland?" in user
    for s in answer.sources:
        assert f'<source n="{s.n}">' in user
    assert len(answer.sources) == 3


def test_marker_beyond_the_sources_is_dropped_and_counted(loaded):
    services = loaded(lambda m: "Chabon wrote it [9]. Summerland is by Michael Chabon [1][7].")
    answer = services.answers.ask("Who wrote Summerland?", k=5)
    assert answer.invalid_markers == 2
    assert [s.citations for s in answer.sentences] == [[], [1]]
    assert answer.sentences[0].dropped_markers == [9]
    assert answer.answer == "Summerland is by Michael Chabon [1]."
    assert answer.sentences[0].reasons == ["[9] points to no retrieved source"]


def test_marker_to_a_chunk_deleted_after_retrieval_is_dropped(loaded):
    services = loaded()
    sources = services.retriever.retrieve("Who wrote Summerland?", 5)

    def script(messages):
        services.store.delete([sources[0].chunk_id])  # deleted between retrieval and checking
        return "Michael Chabon wrote Summerland [1]. See also [2]."

    services.answers.llm = FakeChat(script=script)
    answer = services.answers.ask("Who wrote Summerland?", k=5)
    assert answer.invalid_markers == 1
    assert answer.sentences[0].status == "unsupported"
    assert answer.sentences[1].citations == [2]


def test_no_valid_citation_means_an_honest_refusal_with_sources(loaded):
    services = loaded(lambda m: "The ISSN of Nature is 1000. I hope this helps!")
    answer = services.answers.ask("What is the ISSN of Nature?")
    assert answer.refused
    assert "could not find" in answer.answer and "librarian" in answer.answer
    assert answer.sources  # the closest sources are still shown
    assert all(s.status == "unsupported" for s in answer.sentences)


def test_repeated_sentences_are_shown_once(loaded):
    services = loaded(lambda m: "Chabon wrote Summerland [1].\n\nChabon wrote Summerland [1].\n\n")
    answer = services.answers.ask("Who wrote Summerland?")
    assert answer.answer == "Chabon wrote Summerland [1]."


def test_llm_down_names_the_url_and_still_shows_sources(loaded):
    url = f"http://127.0.0.1:{free_port()}/v1"
    services = loaded(llm=OpenAICompatibleChat(LLMSettings(base_url=url, timeout_s=5)))
    answer = services.answers.ask("Who wrote Summerland?")
    assert url in answer.error and "refdesk llm start" in answer.error
    assert answer.sources and not answer.sentences


def test_empty_store_says_so(fake_services):
    answer = fake_services.answers.ask("Who wrote Summerland?")
    assert answer.refused and "refdesk ingest" in answer.answer
    assert answer.sources == []


def test_retrieve_only_skips_the_llm(loaded):
    fake = FakeChat()
    services = loaded(llm=fake)
    answer = services.answers.ask("Who wrote Summerland?", retrieve_only=True)
    assert answer.sources and fake.calls == [] and "generate" not in answer.timings

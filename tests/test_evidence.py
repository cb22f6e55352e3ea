"""Evidence-first answers over real records (real MiniLM, real Chroma, scripted fake LLM)."""

import re

import pytest

from assistant.backends.llm import FakeChat
from assistant.core.settings import Settings
from assistant.services import Services
from tests.conftest import DEMO_CORPUS, ingest


@pytest.fixture(scope="module")
def services(real_embedder, tmp_path_factory):
    settings = Settings.load(data_dir=str(tmp_path_factory.mktemp("evidence")))
    svc = Services(settings, llm=FakeChat(), embedder=real_embedder)
    ingest(svc, [DEMO_CORPUS])
    return svc


def ask(services, question, script=lambda m: "I do not know."):
    fake = FakeChat(script=script)
    services.answers.llm = fake
    return services.answers.ask(question), fake


def cited_records(answer):
    by_n = {s.n: s for s in answer.sources}
    return [by_n[n].record_id for s in answer.sentences if s.kind == "evidence" and s.shown for n in s.citations]


def test_issn_lookup_is_answered_from_the_record_without_the_llm(services):
    answer, fake = ask(services, "What is the ISSN of Nature?")
    assert fake.calls == []  # identifier look-ups are routed by rule
    assert not answer.refused
    assert re.search(r"ISSN: 0028-0836 \[\d\]", answer.answer)
    assert cited_records(answer)[0] == "417826"
    assert all(s.status == "supported" for s in answer.sentences if s.shown)


def test_author_question_quotes_the_catalogue_field(services):
    answer, _ = ask(services, "Who wrote Summerland?")
    assert "Summerland — Author: Chabon, Michael [1]" in answer.answer
    assert cited_records(answer)[0] == "12883376"


def test_box_question_gives_the_container(services):
    answer, fake = ask(services, "Which box has the A-C photographs of the marching band?")
    assert fake.calls == []
    assert "A-C — Location: Box 1 [1]" in answer.answer
    assert cited_records(answer)[0] == "aspace_f5907634fce75222081b9028db18b2fd"


def test_capture_date_of_an_archived_page(services):
    answer, _ = ask(services, "When was the Internet Archive FAQ page captured?")
    assert re.search(
        r"was captured 2008-04-30 \d\d:\d\d UTC \(http://www\.archive\.org/about/faq\.php\?faq_id=\d+\) \[\d\]",
        answer.answer,
    ), answer.answer


def test_false_lead_from_the_model_is_dropped_and_the_evidence_stays(services):
    answer, fake = ask(
        services, "Who wrote Summerland?", lambda m: "Summerland was written by Stephen King in 1990 [1]."
    )
    assert fake.calls
    lead = [s for s in answer.sentences if s.kind == "generated"]
    assert lead[0].status == "unsupported" and not lead[0].shown
    assert answer.answer.startswith("Here is what our records say:")
    assert "Stephen King" not in answer.answer and "Author: Chabon, Michael" in answer.answer


def test_a_supported_lead_follows_the_evidence(services):
    answer, _ = ask(services, "Who wrote Summerland?", lambda m: "Summerland was written by Michael Chabon [1].")
    assert answer.answer.startswith("Here is what our records say:")
    assert answer.answer.endswith("Summerland was written by Michael Chabon [1].")
    assert [s.kind for s in answer.sentences if s.shown] == ["template", "evidence", "generated"]


@pytest.mark.parametrize(
    "question",
    [
        "Do you hold the papers of Albert Einstein?",
        "What is the capital of Burkina Faso?",
        "Recipes for chocolate cake",
        "Do you have anything about Flatland?",
    ],
)
def test_unanswerable_questions_get_an_honest_refusal_not_unrelated_evidence(services, question):
    answer, fake = ask(services, question, lambda m: "Yes, we hold it [1].")
    assert answer.refused and answer.handoff_offered
    assert not [s for s in answer.sentences if s.kind == "evidence"]
    assert fake.calls == []


@pytest.mark.parametrize(
    "question,field,record",
    [
        ("Who founded the journal Nature?", "Founded and for many years edited by Sir J. N. Lockyer", "417826"),
        (
            "How many pages does the large print Pride and Prejudice have?",
            "Physical description: 474 p.",
            "ocm42943498",
        ),
        ("Which novels are in The Penguin complete novels of Jane Austen?", "Mansfield Park", "3076570"),
    ],
)
def test_the_field_that_answers_is_quoted_even_without_a_named_intent(services, question, field, record):
    answer, _ = ask(services, question)
    assert not answer.refused and field in answer.answer
    assert record in cited_records(answer)


def test_a_page_that_lacks_the_place_the_question_names_is_not_evidence(services):
    """The archived About page talks of "maps" of the Internet, not of Paris: refuse, do not quote it."""
    from assistant.answering.evidence import names

    assert names("Do you hold any maps of Paris?") == ["paris"]
    assert names("What did IANA's website say?") == ["iana"]
    answer, _ = ask(services, "Do you hold any maps of Paris?")
    assert answer.refused and answer.handoff_offered

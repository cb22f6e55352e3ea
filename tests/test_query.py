"""Query understanding (answering/query.py): each table row by row, as pure functions."""

from __future__ import annotations

import pytest

from assistant.answering.query import FORMAT_WORDS, YEAR_RULES, formats, language, source_types, understand, year_range


@pytest.mark.parametrize(
    ("question", "years", "rule"),
    [
        ("Hebrew books printed between 1850 and 1870", (1850, 1870), "between"),
        ("letters 1939-1945", (1939, 1945), "range"),
        ("Which editions of Pride and Prejudice from the 1930s do you have?", (1930, 1939), "decade"),
        ("novels of the 19th century", (1800, 1899), "century"),
        ("maps of Paris before 1900", (0, 1899), "before"),
        ("anything published after 2001", (2002, 9999), "after"),
        ("What did the IANA page say in 1995?", (1995, 1995), "in"),
        ("What was on the site in March 2017?", (2017, 2017), "in"),
        ("Do you have a 1950 edition of Kavalier and Clay?", (1950, 1950), "edition"),
        ("Who wrote Summerland?", None, ""),
    ],
)
def test_year_rules(question, years, rule):
    assert year_range(question) == (years, rule)


def test_every_year_rule_has_a_row():
    assert {name for name, _ in YEAR_RULES} == {
        "between",
        "range",
        "decade",
        "century",
        "before",
        "after",
        "edition",
        "in",
    }


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("a paperback of Middlemarch", {"book"}),
        ("Is Nature a journal you keep?", {"serial"}),
        ("old maps of Paris", {"map"}),
        ("the score of the Moonlight sonata", {"score"}),
        ("recordings by Louis Armstrong", {"music recording", "sound"}),
        ("photographs of the marching band", {"image"}),
        ("Who wrote Summerland?", set()),
    ],
)
def test_format_words(question, expected):
    assert formats(question) == expected
    assert all(values for values in FORMAT_WORDS.values())


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did the archived IANA web page say?", {"warc"}),
        ("Which box holds the band photographs?", {"ead", "pdf"}),
        ("What is the ISBN of Summerland?", {"marc", "dc"}),
        ("Tell me about jazz", set()),
    ],
)
def test_source_type_words(question, expected):
    assert source_types(question) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Do you have Pride and Prejudice in German?", "German"),
        ("French books about cooking", "French"),
        ("books in Hebrew", "Hebrew"),
        ("maps in Paris", ""),  # a place, not a language
        ("Is it in Nature?", ""),
    ],
)
def test_language(question, expected):
    assert language(question) == expected


def test_preferences_are_met_by_metadata():
    prefs = understand("French books from the 1930s")
    assert prefs.met_by({"year": 1934, "format": "book", "language": "French"}) == 3
    assert prefs.met_by({"year": 2004, "format": "book", "language": "English"}) == 1
    assert not understand("Who wrote Summerland?")

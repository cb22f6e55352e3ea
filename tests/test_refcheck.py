"""Reference checker: parsing, matching against the real demo catalogue, verdicts, CLI, bad input."""

import json

import pytest

from assistant.cli import main
from assistant.refcheck.parse import parse_free_text, parse_input, split_references
from tests.conftest import SHARED_DATA, catalogue_and_finding_aid, ingest


@pytest.mark.parametrize(
    "text,title,authors,year",
    [
        ("Chabon, M. (2002). Summerland. New York: Miramax Books.", "Summerland", ["Chabon, M"], 2002),
        (
            "Chabon, Michael. The Amazing Adventures of Kavalier and Clay. Random House, 2000.",
            "The Amazing Adventures of Kavalier and Clay",
            ["Chabon, Michael"],
            2000,
        ),
        (
            "Paris, Bernard J. Rereading George Eliot. Albany: State University of New York Press, 2003.",
            "Rereading George Eliot",
            ["Paris, Bernard J"],
            2003,
        ),
        (
            'Hunt, Andrew, and David Thomas. "The Pragmatic Programmer." Addison-Wesley, 2000.',
            "The Pragmatic Programmer",
            ["Hunt, Andrew", "David Thomas"],
            2000,
        ),
        ("Summerland by Michael Chabon (2002)", "Summerland", ["Michael Chabon"], 2002),
        (
            "Rereading George Eliot : changing responses to her experiments in life / Bernard J. Paris, 2003",
            "Rereading George Eliot : changing responses to her experiments in life",
            ["Bernard J. Paris"],
            2003,
        ),
        (
            "Armstrong, Louis, 1901-1971. Louis Armstrong. Chicago, Ill.: Time-Life Music, 1985.",
            "Louis Armstrong",
            ["Armstrong, Louis"],
            1985,
        ),
        (
            "Austen, Jane. Pride and Prejudice. Edited by Tony Tanner, Penguin Books, 1980.",
            "Pride and Prejudice",
            ["Austen, Jane"],
            1980,
        ),
        (
            "Cuppiramaṇiyan̲, Ca. Vē. Studies in Tamilology. Tamil Patippakam, 1982.",
            "Studies in Tamilology",
            ["Cuppiramaṇiyan̲, Ca. Vē"],
            1982,
        ),
    ],
)
def test_free_text_styles_parse_into_fields(text, title, authors, year):
    ref = parse_free_text(text)
    assert (ref.title, ref.authors, ref.year) == (title, authors, year)


def test_identifiers_are_validated_and_normalised():
    ref = parse_free_text(
        "Summerland. ISBN 0-7868-0877-2, ISBN 0786808771 (bad check digit). ISSN 0028-0836. "
        "https://doi.org/10.1234/abc.5"
    )
    assert ref.isbns == ["9780786808779"] and ref.issns == ["0028-0836"] and ref.doi == "10.1234/abc.5"


def test_lines_and_paragraphs_split_with_their_line_numbers():
    assert split_references("1. A, B. (2000). One.\n\n2. C, D. (2001). Two.\n") == [
        (1, "1. A, B. (2000). One."),
        (3, "2. C, D. (2001). Two."),
    ]
    wrapped = (
        "Paris, Bernard J. Rereading George Eliot: changing\nresponses to her experiments in life. 2003.\n"
        "Chabon, Michael. The Amazing Adventures of\nKavalier and Clay. 2000.\nX, Y. Z. 2001."
    )
    assert split_references(wrapped) == [
        (1, "Paris, Bernard J. Rereading George Eliot: changing responses to her experiments in life. 2003."),
        (3, "Chabon, Michael. The Amazing Adventures of Kavalier and Clay. 2000."),
        (5, "X, Y. Z. 2001."),
    ]


def test_bad_input_gets_a_message_per_line_and_long_pastes_are_cut():
    refs, notes = parse_input("hello there\n\n12345\nChabon, M. (2002). Summerland. Miramax.\n")
    assert [r.problem != "" for r in refs] == [True, True, False]
    assert "not a reference" in refs[0].problem
    refs, notes = parse_input(
        "\n".join(f"Author{i}, A. ({1900 + i % 100}). Title {i}. P." for i in range(10_000)), limit=500
    )
    assert len(refs) == 500 and "10000 references pasted; only the first 500" in notes[0]


@pytest.fixture
def checker(fake_services, demo_copy):
    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    return fake_services.refcheck


def verdicts(report):
    return [
        (r.verdict, [d.field for d in r.differences], r.record.record_id if r.record else None) for r in report.results
    ]


def test_verdicts_against_the_demo_catalogue(checker):
    report = checker.check_text(
        "\n".join(
            [
                "Austen, J. (1980). Pride and prejudice. Harmondsworth: Penguin Books.",
                "Chabon, Michael. The Amazing Adventures of Kavalier and Clay. Random House, 1987.",
                "Dickens, Charles. Pride and Prejudice. Penguin Books, 1980.",
                "Paris, Bernard J. Rereading George Eliot: Essays on Middlemarch and Daniel Deronda. SUNY Press, 2003.",
                "Chabon, Michael. The Amazing Adventures of Kavalier and Klay. Random House, 2000.",
                "Smith, J., & Doe, A. B. (2019). The hidden architecture of memory: Libraries and forgetting. Imaginary Press.",
                "Some garbled title here, ISBN 0140057749",
                "Pride and prejudice, ISBN 0140057749",
                "Nature. London: Macmillan, 1869. ISSN 0028-0836",
            ]
        )
    )
    assert verdicts(report) == [
        ("held", [], "4683624"),
        ("similar", ["year"], "11939876"),
        ("similar", ["author"], "4683624"),
        ("similar", ["subtitle"], "2329645"),
        ("held", [], "11939876"),  # one misspelt word is the same title
        ("not found", [], None),
        ("similar", ["title"], "4683624"),  # a real ISBN under another title: a typical made-up citation
        ("held", [], "4683624"),  # the ISBN names the edition
        ("held", [], "417826"),
    ]
    assert report.summary() == "9 references: 4 held, 4 similar, 1 not found"
    held = report.results[0]
    assert "call number PR4034 .P7 1980b" in held.message and held.record.link
    assert "does not prove the work does not exist elsewhere" in report.results[5].message
    assert "year: reference “1987”, record “2000”" in report.results[1].message
    text = report.text()
    assert text.startswith("9 references: 4 held") and "NOT FOUND" in text and "SIMILAR" in text


def test_a_made_up_reference_never_borrows_a_real_record(checker):
    """Real author, invented title: the author's real books are not offered as "held"."""
    report = checker.check_text(
        "Austen, Jane. The Luminous Mirror of the Harbour: Compass and Orchard in Moravia. "
        "Penguin Books, 1980.\nChabon, Michael. Summerland Nights. Miramax Books, 2002."
    )
    assert [r.verdict for r in report.results] == ["not found", "similar"]
    assert [d.field for d in report.results[1].differences] == ["title"]


def test_cli_reads_text_bibtex_and_ris_in_any_encoding(fake_services, demo_copy, tmp_path, capsys):
    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    cp1251 = tmp_path / "list.txt"
    cp1251.write_bytes(
        "Остин, Джейн. Гордость и предубеждение. Москва, 1990.\nChabon, M. (2002). Summerland. Miramax.\n".encode(
            "cp1251"
        )
    )
    assert main(["refcheck", str(cp1251), "--json"], services=fake_services) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["parsed"]["title"] == "Гордость и предубеждение"
    assert [r["verdict"] for r in out["results"]] == ["not found", "held"]

    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@book{c, author = {Chabon, Michael}, title = {Summerland}, year = {2002}}\n@book{broken, title = {Unclosed\n"
    )
    assert main(["refcheck", str(bib), "--json"], services=fake_services) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in out["results"]] == ["held", "not a reference"]
    assert "BibTeX entry could not be parsed" in out["results"][1]["message"]

    ris = tmp_path / "refs.ris"
    ris.write_text("TY  - BOOK\nAU  - Paris, Bernard J.\nTI  - Rereading George Eliot\nPY  - 2003\nER  - \n")
    assert main(["refcheck", str(ris)], services=fake_services) == 0
    assert capsys.readouterr().out.startswith("1 reference: 1 held, 0 similar, 0 not found")

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n\n")
    assert main(["refcheck", str(empty)], services=fake_services) == 0
    assert "no references found in the input" in capsys.readouterr().out
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert main(["refcheck", str(garbage), "--json"], services=fake_services) == 0
    json.loads(capsys.readouterr().out)  # nothing crashed, the output is still JSON
    assert main(["refcheck", str(tmp_path / "missing.txt")], services=fake_services) == 2


def test_benchmark_cases_come_from_real_marc_records():
    if not (SHARED_DATA / "marc").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    from collections import Counter

    from eval.refcheck_bench import build_cases, marc_books

    books, every = marc_books([SHARED_DATA / "marc"])
    cases = build_cases(books, every)
    kinds = Counter(c["kind"] for c in cases)
    assert len(cases) >= 150
    assert kinds == {"held": 60, "changed year": 30, "swapped author": 30, "changed title": 30, "invented": 40}
    assert all(c["field"] for c in cases if c["expect"] == "similar")

"""The evaluation runner end to end with a scripted fake LLM: exact summary, resume, report, compare."""

import json
import re

import pytest

from assistant.backends.llm import FakeChat
from assistant.cli import main
from assistant.services import Services
from eval.compare import compare
from eval.halueval import convert
from eval.runner import EvalRunner, RunMismatch
from eval.testset import load_set
from tests.conftest import ROOT, catalogue_and_finding_aid, ingest

SET = [
    {
        "id": "c1",
        "question": "Who wrote Summerland?",
        "answerable": True,
        "reference_answer": "Michael Chabon",
        "key_facts": ["Chabon"],
        "contexts": ["Summerland is a novel by Michael Chabon published in 2002."],
        "tags": ["author"],
    },
    {
        "id": "c2",
        "question": "When was Nature first published?",
        "answerable": True,
        "reference_answer": "1869",
        "contexts": ["Nature is a weekly journal first published in 1869."],
        "tags": ["date"],
    },
    {
        "id": "c3",
        "question": "Who won the 1998 World Cup?",
        "answerable": False,
        "contexts": ["The Robby Beyers photographs are in Box 1."],
        "tags": ["unanswerable"],
    },
]
SCRIPT = {
    "Who wrote Summerland?": "Summerland is a novel by Michael Chabon [1].",
    "When was Nature first published?": "Nature was founded by Charles Darwin in 1901 [1]. It is printed in Paris <script>alert(1)</script> [2].",
    "Who won the 1998 World Cup?": "France won the 1998 World Cup [1].",
}


def scripted(messages):
    asked = messages[-1]["content"]
    return next(reply for question, reply in SCRIPT.items() if question in asked)


def write_set(path, items, extra_lines=()):
    path.write_text("\n".join([json.dumps(i) for i in items] + list(extra_lines)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def scripted_services(fake_settings):
    llm = FakeChat(script=scripted)
    return Services(fake_settings, llm=llm), llm


def test_scripted_run_gives_exactly_the_expected_summary(scripted_services, tmp_path):
    services, _ = scripted_services
    set_path = write_set(tmp_path / "set.jsonl", SET)
    summary = EvalRunner(services, tmp_path / "run", mode="plain", progress=False).run(set_path)
    values = {name: v["value"] for name, v in summary["metrics"].items()}
    # c1: 1 supported sentence, 1 marker; c2: 2 rejected sentences, markers [1] and [2] (invalid);
    # c3: 1 rejected sentence, 1 marker. Retrieval and gold-citation metrics do not apply (contexts, no gold).
    assert values == {
        "answer_correct": 0.5,
        "token_f1": 0.25,
        "false_refusal": 0.5,
        "correct_refusal": 1.0,
        "citation_precision_checker": 0.25,
        "citation_recall_checker": 0.25,
        "unsupported_sentence_rate": 0.75,
        "unsupported_shown_rate": 0.0,
        "invalid_marker_rate": 0.25,
    }
    assert summary["outcomes"] == {"correct": 1, "false_refusal": 1, "correct_refusal": 1}
    assert summary["ok_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["metrics"]["false_refusal"]["n"] == 2 and summary["metrics"]["correct_refusal"]["n"] == 1
    assert summary["by_tag"]["date"] == {
        "questions": 1,
        "ok_rate": 0.0,
        "metrics": {"answer_correct": 0.0, "false_refusal": 1.0, "citation_recall_checker": 0.0},
    }
    assert set(summary["latency_s"]) >= {"total", "generate", "check"}

    results = [json.loads(line) for line in (tmp_path / "run/results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["c1", "c2", "c3"]
    c2 = results[1]
    assert c2["outcome"] == "false_refusal" and "refused an answerable question" in c2["failures"]
    assert [s["dropped_markers"] for s in c2["sentences"]] == [[], [2]]
    assert json.loads((tmp_path / "run/summary.json").read_text())["metrics"] == summary["metrics"]


def test_report_is_self_contained_with_plots_and_escaped_failures(scripted_services, tmp_path):
    services, _ = scripted_services
    EvalRunner(services, tmp_path / "run", mode="plain", progress=False).run(write_set(tmp_path / "s.jsonl", SET))
    page = (tmp_path / "run/report.html").read_text()
    assert page.count("<svg") == 4  # metrics, latency, by tag, by source type
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"(src|href)=\"https?://", page)  # nothing fetched from elsewhere
    failures = page[page.index('id="failures"') :]
    assert "c2" in failures and "refused an answerable question" in failures and ">c1<" not in failures


def test_interrupted_run_resumes_without_asking_again(scripted_services, tmp_path):
    services, llm = scripted_services
    out = tmp_path / "run"
    full = write_set(tmp_path / "set.jsonl", SET)
    first = EvalRunner(services, out, mode="plain", progress=False)
    # The run stops after two questions: the results file ends with a half-written third line.
    set_two = write_set(tmp_path / "two.jsonl", SET[:2])
    first.config = lambda _path: EvalRunner(services, out, mode="plain").config(full)  # same run settings
    first.run(set_two)
    with (out / "results.jsonl").open("a") as f:
        f.write('{"id": "c3", "quest')
    calls = len(llm.calls)
    summary = EvalRunner(services, out, mode="plain", progress=False).run(full)
    assert len(llm.calls) == calls + 1  # only c3 was asked again
    assert summary["questions"] == 3 and summary["resumed_from"] == 2
    assert summary["outcomes"] == {"correct": 1, "false_refusal": 1, "correct_refusal": 1}
    with pytest.raises(RunMismatch, match="mode"):
        EvalRunner(services, out, mode="evidence", progress=False).run(full)


def test_bad_lines_are_named_and_the_run_goes_on(scripted_services, tmp_path):
    services, _ = scripted_services
    set_path = write_set(
        tmp_path / "set.jsonl",
        SET[:1],
        [
            "{not json",
            '{"id": "x", "answerable": true}',
            json.dumps(SET[0]),
            '{"id": "g", "question": "q", "answerable": true, "gold": [{"record_id": "1"}]}',
        ],
    )
    items, errors = load_set(set_path)
    assert [i.id for i in items] == ["c1"]
    assert [e.line for e in errors] == [2, 3, 4, 5]
    assert "not JSON" in errors[0].message and "question" in errors[1].message
    assert "duplicate id 'c1'" in errors[2].message and "source_type or path" in errors[3].message
    summary = EvalRunner(services, tmp_path / "run", mode="plain", progress=False).run(set_path)
    assert summary["questions"] == 1 and len(summary["set_errors"]) == 4
    assert summary["set_errors"][0].startswith(f"{set_path}:2:")


def test_compare_names_metric_deltas_and_changed_questions(scripted_services, tmp_path):
    services, llm = scripted_services
    set_path = write_set(tmp_path / "set.jsonl", SET)
    EvalRunner(services, tmp_path / "a", mode="plain", progress=False).run(set_path)
    script_b = dict(SCRIPT, **{"When was Nature first published?": "Nature was first published in 1869 [1]."})
    llm.script = lambda messages: next(r for q, r in script_b.items() if q in messages[-1]["content"])
    EvalRunner(services, tmp_path / "b", mode="plain", progress=False).run(set_path)
    result = compare(tmp_path / "a", tmp_path / "b", samples=200)
    assert result["common"] == 3
    assert result["changed"] == [
        {
            "id": "c2",
            "question": "When was Nature first published?",
            "a": "false_refusal",
            "b": "correct",
            "change": "better",
        }
    ]
    assert result["metrics"]["false_refusal"]["a"] == 0.5 and result["metrics"]["false_refusal"]["b"] == 0.0
    assert result["metrics"]["false_refusal"]["delta"] == -0.5
    # B: markers 1 + 1 + 1, all valid
    assert result["metrics"]["invalid_marker_rate"]["b"] == 0.0
    lo, hi = result["metrics"]["answer_correct"]["ci95"]
    assert lo <= 0.5 <= hi


def test_halueval_converter(tmp_path):
    src = ROOT / "tests/data/halueval/qa_sample.jsonl"
    out = tmp_path / "halueval.jsonl"
    bad = tmp_path / "with-bad.jsonl"
    bad.write_text(src.read_text() + '{"question": "no knowledge"}\n[broken\n')
    result = convert(bad, out, mismatched=0.5)
    assert result["read"] == 2 and result["mismatched"] == 1 and result["written"] == 3
    assert [e.split(": ", 1)[0] for e in result["errors"]] == [f"{bad}:3", f"{bad}:4"]
    items, errors = load_set(out)
    assert not errors
    first, second, mismatched = items
    assert first.answerable and first.reference_answer == "Arthur's Magazine"
    assert first.contexts[0].startswith("Arthur's Magazine (1844")
    assert not mismatched.answerable and mismatched.question == first.question
    assert mismatched.contexts == second.contexts and "mismatched context" in mismatched.tags


def test_cli_runs_a_set_against_the_store_and_resumes(fake_services, demo_copy, tmp_path, capsys):
    ingest(fake_services, catalogue_and_finding_aid(demo_copy))
    set_path = ROOT / "eval/sets/demo.jsonl"
    out = tmp_path / "run"
    argv = ["eval", "run", str(set_path), "--out", str(out), "--retrieve-only", "--json"]
    assert main(argv, services=fake_services) == 0
    summary = json.loads(capsys.readouterr().out)
    items, _ = load_set(set_path)
    judged = [i for i in items if i.answerable and i.gold]
    assert summary["questions"] == len(items)
    assert summary["metrics"]["hit@k"]["questions"] == len(judged)
    assert summary["outcomes"]["hit"] + summary["outcomes"].get("miss", 0) == len(judged)
    assert main(argv, services=fake_services) == 0
    assert json.loads(capsys.readouterr().out)["resumed_from"] == len(items)
    assert main(["eval", "run", str(tmp_path / "nope.jsonl")], services=fake_services) == 2
    assert "no such test set" in capsys.readouterr().err


def test_demo_set_is_well_formed():
    items, errors = load_set(ROOT / "eval/sets/demo.jsonl")
    assert not errors
    assert len(items) >= 30 and sum(not i.answerable for i in items) >= 8
    assert all(i.gold and i.key_facts for i in items if i.answerable)


def test_given_contexts_are_quoted_as_evidence_and_mismatched_ones_refused(fake_services, tmp_path):
    """HaluEval in "contexts given" mode: the checker accepts the given passage (label included) as the
    evidence, and a question whose context does not answer it is refused."""
    out = tmp_path / "halueval.jsonl"
    convert(ROOT / "tests/data/halueval/qa_sample.jsonl", out, mismatched=0.5)
    summary = EvalRunner(fake_services, tmp_path / "run", mode="evidence", progress=False).run(out)
    assert summary["outcomes"] == {"correct": 2, "correct_refusal": 1}
    assert summary["metrics"]["unsupported_shown_rate"]["value"] == 0.0

"""The measurement script's scoring against hand-computed values."""
from assistant.types import Answer, Sentence, Source
from eval.measure import load_set, score
from tests.conftest import ROOT


def src(n, record_id, source_type="marc"):
    return Source(n=n, chunk_id=f"c{n}", source_type=source_type, record_id=record_id)


def test_scores_by_hand():
    items = [
        {"question": "a", "answerable": True, "key_facts": ["Chabon"], "gold": [{"source_type": "marc", "record_id": "R1"}]},
        {"question": "b", "answerable": True, "key_facts": ["Box 1"], "gold": [{"source_type": "ead", "record_id": "E1"}]},
        {"question": "c", "answerable": False, "gold": []},
    ]
    a1 = Answer(question="a", answer="By Chabon [1].", sources=[src(1, "R1"), src(2, "R2")], timings={"total": 1.0},
                sentences=[Sentence(text="By Chabon [1].", citations=[1], status="supported", shown=True),
                           Sentence(text="Also X [2].", citations=[2], status="unsupported", shown=False),
                           Sentence(text="Y.", dropped_markers=[9], status="unsupported", shown=False)])
    a2 = Answer(question="b", refused=True, answer="I could not find", sources=[src(1, "E9", "ead")],
                timings={"total": 3.0})
    a3 = Answer(question="c", refused=True, answer="I could not find", timings={"total": 2.0})
    result = score(items, [a1, a2, a3])
    assert result["answered_answerable"] == 0.5
    assert result["correct_refusal_unanswerable"] == 1.0
    assert (result["citation_precision_shown"], result["citations_shown"]) == (1.0, 1)
    assert (result["citation_precision_before_check"], result["citations_before_check"]) == (0.5, 2)
    assert result["model_sentences"] == 3 and result["model_sentences_unsupported"] == round(2 / 3, 3)
    assert result["model_markers_invalid"] == round(1 / 3, 3)
    assert result["shown_unsupported"] == 0.0
    assert result["key_fact_accuracy"] == {"ead": 0.0, "marc": 1.0}
    assert result["latency_p50_s"] == 2.0


def test_demo_set_loads_and_bad_lines_are_named(tmp_path, capsys):
    items = load_set(ROOT / "eval/sets/demo.jsonl")
    assert len(items) == 26 and sum(not i["answerable"] for i in items) == 8
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"question": "q", "answerable": true}\n{not json\n{"question": "x"}\n')
    assert len(load_set(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: bad line skipped" in err and f"{bad}:3: bad line skipped" in err

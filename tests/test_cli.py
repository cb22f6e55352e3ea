"""The CLI contract (in-process, fake embedder and fake LLM chosen through REFDESK_* settings)."""

import json

import pytest

from assistant.cli import main
from tests.conftest import catalogue_and_finding_aid


@pytest.fixture
def cli(clean_env, tmp_path, capsys):
    clean_env.setenv("REFDESK_DATA_DIR", str(tmp_path / "data"))
    clean_env.setenv("REFDESK_EMBEDDING__BACKEND", "fake")
    clean_env.setenv("REFDESK_EMBEDDING__MODEL", "hash")
    clean_env.setenv("REFDESK_LLM__BACKEND", "fake")
    clean_env.setenv("REFDESK_RETRIEVAL__MIN_SCORE", "0")  # thresholds are calibrated for MiniLM, not hashes
    clean_env.setenv("REFDESK_VERIFY__SEMANTIC_THRESHOLD", "0")

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_ingest_json_then_ask_json(cli, demo_copy):
    code, out, _ = cli("ingest", str(demo_copy), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["files"] == 7 and summary["chunks_added"] > 0 and summary["skipped"] == []
    code, out, _ = cli("ask", "Who wrote Summerland?", "--json", "--k", "3", "--filter", "source_type=marc")
    assert code == 0
    answer = json.loads(out)
    assert set(answer) >= {"answer", "refused", "sentences", "sources", "timings"}
    assert len(answer["sources"]) == 3 and {s["source_type"] for s in answer["sources"]} == {"marc"}
    assert set(answer["sources"][0]) >= {
        "n",
        "chunk_id",
        "source_type",
        "record_id",
        "title",
        "locator",
        "link",
        "date",
        "score",
        "text",
    }
    first = next(s for s in answer["sentences"] if s["kind"] != "template")
    assert first == {
        "text": first["text"],
        "citations": [1],
        "status": "supported",
        "reasons": [],
        "kind": first["kind"],
        "shown": True,
    }


def test_retrieve_only_and_plain_text(cli, demo_copy):
    cli("ingest", str(demo_copy))
    code, out, _ = cli("ask", "Pride and prejudice editions", "--retrieve-only", "--json")
    answer = json.loads(out)
    assert answer["answer"] == "" and answer["sources"] and "generate" not in answer["timings"]
    code, out, _ = cli("ask", "Who wrote Summerland?")
    assert "Sources:" in out and "[1]" in out


def test_ingest_with_a_bad_file_exits_1_but_stores_the_rest(cli, demo_copy, tmp_path):
    (demo_copy / "notes.bin").write_bytes(b"\x00\x01")
    code, out, _ = cli("ingest", str(demo_copy))
    assert code == 1
    assert "notes.bin: unknown format" in out and "32 records" in out
    code, out, _ = cli("status", "--json")
    assert json.loads(out)["records"] == 32


def test_status_json(cli, demo_copy):
    cli("ingest", str(demo_copy))
    code, out, _ = cli("status", "--json")
    status = json.loads(out)
    assert status["chunks"] > 0 and status["by_type"]["marc"]["records"] == 13
    assert status["store"]["mode"] == "embedded"
    assert status["last_ingest"]["files"] == 7


def test_missing_data_dir_is_one_clear_line(cli, tmp_path):
    missing = tmp_path / "nowhere"
    code, out, err = cli("--data-dir", str(missing), "ask", "anything")
    assert code == 2
    assert err.strip() == (
        f"refdesk: error: data dir {missing} does not exist: ingest something first "
        f"(refdesk --data-dir {missing} ingest PATH)"
    )


def test_llm_status_when_nothing_runs(cli, clean_env):
    from tests.conftest import free_port

    clean_env.setenv("REFDESK_VLLM__PORT", str(free_port()))
    code, out, _ = cli("llm", "status", "--json")
    status = json.loads(out)
    assert status["healthy"] is False and status["pid"] is None and code == 1


def test_verify_checks_an_answer_written_elsewhere(cli, demo_copy):
    cli("ingest", *map(str, catalogue_and_finding_aid(demo_copy)))
    code, out, _ = cli("ask", "Who wrote Summerland?", "--retrieve-only", "--json")
    top = json.loads(out)["sources"][0]
    assert top["record_id"] == "12883376"
    draft = "Summerland was written by Michael Chabon [1]. It was published in 1987 [1]. See also [4]."
    code, out, _ = cli(
        "verify", "--question", "Who wrote Summerland?", "--answer", draft, "--sources", top["chunk_id"], "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert [s["status"] for s in result["sentences"]] == ["supported", "unsupported", "unsupported"]
    assert "not in the cited source: 1987" in result["sentences"][1]["reasons"][0]
    assert result["sentences"][2]["reasons"][0] == "[4] points to no retrieved source"
    code, out, _ = cli("verify", "--question", "Who wrote Summerland?", "--answer", draft, "--k", "3")
    assert "1 of 3 sentences supported" in out
    code, _, err = cli("verify", "--question", "q", "--answer", "x [1].", "--sources", "nope")
    assert code == 2 and "not in the store: nope" in err


def test_handoff_queue_from_the_cli(cli, demo_copy):
    cli("ingest", str(demo_copy))
    code, out, _ = cli(
        "ask", "Do you hold the papers of Ada Lovelace?", "--handoff", "--contact", "ada@example.org", "--json"
    )
    answer = json.loads(out)
    hid = answer["handoff_id"]
    code, out, _ = cli("handoff", "list")
    assert f"#{hid} [open]" in out and "Ada Lovelace" in out and "ada@example.org" in out
    code, out, _ = cli("handoff", "show", str(hid), "--json")
    shown = json.loads(out)
    assert shown["question"] == "Do you hold the papers of Ada Lovelace?" and len(shown["sources"]) == 5
    code, out, _ = cli("handoff", "close", str(hid), "--note", "replied by e-mail")
    assert "[closed]" in out
    code, out, _ = cli("handoff", "list")
    assert "no open hand-offs" in out
    code, _, err = cli("handoff", "show", "999")
    assert code == 2 and "no hand-off #999" in err

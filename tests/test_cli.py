"""The CLI contract (in-process, fake embedder and fake LLM chosen through REFDESK_* settings)."""
import json

import pytest

from assistant.cli import main


@pytest.fixture
def cli(clean_env, tmp_path, capsys):
    clean_env.setenv("REFDESK_DATA_DIR", str(tmp_path / "data"))
    clean_env.setenv("REFDESK_EMBEDDING__BACKEND", "fake")
    clean_env.setenv("REFDESK_EMBEDDING__MODEL", "hash")
    clean_env.setenv("REFDESK_LLM__BACKEND", "fake")

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_ingest_json_then_ask_json(cli, demo_copy):
    code, out, _ = cli("ingest", str(demo_copy), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["files"] == 16 and summary["chunks_added"] > 0 and summary["skipped"] == []
    code, out, _ = cli("ask", "Who wrote Summerland?", "--json", "--k", "3")
    assert code == 0
    answer = json.loads(out)
    assert set(answer) >= {"answer", "refused", "sentences", "sources", "timings"}
    assert len(answer["sources"]) == 3
    assert set(answer["sources"][0]) >= {"n", "chunk_id", "source_type", "record_id", "title", "locator", "link",
                                          "date", "score", "text"}
    assert answer["sentences"][0] == {"text": answer["sentences"][0]["text"], "citations": [1], "status": "cited"}


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
    assert "notes.bin: unknown format" in out and "24 records" in out
    code, out, _ = cli("status", "--json")
    assert json.loads(out)["records"] == 24


def test_status_json(cli, demo_copy):
    cli("ingest", str(demo_copy))
    code, out, _ = cli("status", "--json")
    status = json.loads(out)
    assert status["chunks"] > 0 and status["by_type"]["text"]["records"] == 24
    assert status["store"]["mode"] == "embedded"
    assert status["last_ingest"]["files"] == 16


def test_missing_data_dir_is_one_clear_line(cli, tmp_path):
    missing = tmp_path / "nowhere"
    code, out, err = cli("--data-dir", str(missing), "ask", "anything")
    assert code == 2
    assert err.strip() == (f"refdesk: error: data dir {missing} does not exist: ingest something first "
                           f"(refdesk --data-dir {missing} ingest PATH)")


def test_llm_status_when_nothing_runs(cli, clean_env):
    from tests.conftest import free_port

    clean_env.setenv("REFDESK_VLLM__PORT", str(free_port()))
    code, out, _ = cli("llm", "status", "--json")
    status = json.loads(out)
    assert status["healthy"] is False and status["pid"] is None and code == 1

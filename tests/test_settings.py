import pytest

from assistant.core.settings import Settings, SettingsError


def test_defaults_are_the_embedded_setup(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    s = Settings.load()
    assert s.store.mode == "embedded"
    assert s.chroma_path == tmp_path / "data" / "chroma"
    assert s.embedding.model == "bundled:all-MiniLM-L6-v2"
    assert s.llm.base_url == "http://127.0.0.1:8011/v1"
    assert s.prompts_path.name == "prompts" and (s.prompts_path / "answer.md").is_file()


def test_file_then_env_then_explicit_overrides(clean_env, tmp_path):
    cfg = tmp_path / "refdesk.toml"
    cfg.write_text(
        '[llm]\nmodel = "from-file"\nbase_url = "http://gpu:8000/v1"\n[store]\nmode = "server"\nport = 9000\n'
        "[retrieval]\ntop_k = 7\n"
    )
    clean_env.setenv("REFDESK_LLM__MODEL", "from-env")
    clean_env.setenv("REFDESK_RETRIEVAL__TOP_K", "9")
    s = Settings.load(cfg, retrieval={"top_k": 3})
    assert s.llm.model == "from-env"  # env beats file
    assert s.llm.base_url == "http://gpu:8000/v1"  # file beats default, other keys of the table kept
    assert (s.store.mode, s.store.port) == ("server", 9000)
    assert s.retrieval.top_k == 3  # explicit (CLI) beats env
    assert s.config_file == str(cfg)


def test_data_dir_from_env_and_config_found_there(clean_env, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "refdesk.toml").write_text("[serve]\nport = 9999\n")
    clean_env.chdir(tmp_path)
    clean_env.setenv("REFDESK_DATA_DIR", str(data))
    s = Settings.load()
    assert s.data_dir == data
    assert s.serve.port == 9999


def test_bad_settings_file_names_the_file(clean_env, tmp_path):
    bad = tmp_path / "refdesk.toml"
    bad.write_text("[llm\nmodel = 1")
    with pytest.raises(SettingsError, match=str(bad)):
        Settings.load(bad)
    with pytest.raises(SettingsError, match="not found"):
        Settings.load(tmp_path / "missing.toml")


def test_example_settings_file_is_valid(clean_env):
    from tests.conftest import ROOT

    s = Settings.load(ROOT / "refdesk.example.toml")
    assert s.vllm.extra_args == ["--enforce-eager"] and s.verify.unsupported == "drop"
    assert s.links.warc == "https://web.archive.org/web/{timestamp}/{uri}"

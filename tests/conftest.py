"""Shared fixtures: real shared data, fake backends for unit tests, real services for integration."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_CORPUS = ROOT / "demo" / "corpus"
ARTIFACTS = ROOT / "reports" / "test-artifacts"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, seconds: float, what: str) -> None:
    """Polls url until it answers 200; fails the test with the log's tail if proc dies or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{what} not ready after {seconds:.0f} s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (clone next to ../shared)")
    return SHARED_DATA


@pytest.fixture
def clean_env(monkeypatch):
    """No REFDESK_* from the caller's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("REFDESK_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def fake_settings(tmp_path, clean_env):
    from assistant.core.settings import Settings

    return Settings.load(
        data_dir=str(tmp_path / "data"),
        embedding={"backend": "fake", "model": "hash"},
        llm={"backend": "fake"},
        # Hash-embedding scores are not MiniLM's: the calibrated threshold does not apply to them.
        retrieval={"min_score": 0.0},
        verify={"semantic_threshold": 0.0},
    )


@pytest.fixture
def fake_services(fake_settings):
    from assistant.backends.llm import FakeChat
    from assistant.services import Services

    return Services(fake_settings, llm=FakeChat())


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """A writable copy of the demo corpus (tests change and delete files in it)."""
    dest = tmp_path / "corpus"
    shutil.copytree(DEMO_CORPUS, dest)
    return dest


def catalogue_and_finding_aid(corpus: Path) -> list[Path]:
    """The demo corpus without its web archive: small enough for the bag-of-words fake embedder to rank well."""
    return sorted(p for p in corpus.iterdir() if not p.name.endswith(".warc.gz"))


def ingest(services, paths, sync=False):
    manifest = services.manifest()
    try:
        return services.ingestor(manifest, progress=False).ingest([str(p) for p in paths], sync=sync)
    finally:
        manifest.close()


def recording_extractor():
    """The ingest's text-extraction worker (ingest.warc.TextExtractor), noting the name of each function it
    is handed: a test can tell that work went to the worker process."""
    from ingest.warc import TextExtractor

    class RecordingExtractor(TextExtractor):
        def __init__(self):
            super().__init__()
            self.handed: list[str] = []

        def submit(self, extract, *args):
            self.handed.append(extract.__name__)
            return super().submit(extract, *args)

    return RecordingExtractor()


# ---- real services ------------------------------------------------------------------------------


class LiveServer:
    """The whole app under uvicorn in a thread of this process, so tests can reach its services."""

    def __init__(self, services):
        import uvicorn

        from assistant.web.app import build_app

        self.services = services
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            build_app(services), host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def real_embedder():
    from assistant.backends.embeddings import build_embedder
    from assistant.core.settings import EmbeddingSettings

    return build_embedder(EmbeddingSettings())


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on a free port, stopped after the session."""
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        pytest.fail(f"{exe} not found: chromadb is a dependency, run `make install`")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, path / "server.log", 60, "chroma run")
    yield {"host": "127.0.0.1", "port": port}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def vllm_server():
    """The real vLLM CPU server with the bundled model, started through `refdesk llm start`.

    Uses the project's data dir (where `make models` prepared the model). A server that was
    already healthy is reused and left running; one started here is stopped at the end.
    """
    from assistant.backends.vllm_launcher import VLLMLauncher
    from assistant.core.settings import Settings

    settings = Settings.load(data_dir=str(ROOT / "data"))
    launcher = VLLMLauncher(settings)
    started_here = not launcher.healthy()
    if started_here:
        launcher.start(wait=True)
    yield {"base_url": f"{launcher.root_url}/v1", "model": settings.vllm.served_model_name, "launcher": launcher}
    if started_here:
        launcher.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster of a head (no CPUs: it schedules) and 2 worker nodes of 1 CPU each, with Ray's
    own test harness (ray.cluster_utils.Cluster); its address is what `refdesk ingest --ray-address` takes."""
    pytest.importorskip("ray", reason="the Ray engine's tests need ray[data] (`make install`)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway cluster on loopback
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster.address
    cluster.shutdown()

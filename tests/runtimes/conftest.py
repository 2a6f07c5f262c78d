"""Build the real model artifacts once per test session, into a cache that survives reruns.

`var/test-artifacts/` (or $CF_TEST_ARTIFACTS) keeps the export, quantisation and trained heads
between runs: the first run takes a few minutes on two cores, later ones a second.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifact_dir() -> Path:
    return Path(os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")


@pytest.fixture(scope="session")
def artifacts(artifact_dir: Path) -> dict:
    from workflows.runtimes.build import build_all

    return build_all(artifact_dir, log=lambda message: print(f"[artifacts] {message}"))


@pytest.fixture(scope="session")
def bbc():
    from workflows.runtimes.corpus import bbc_split

    return bbc_split()

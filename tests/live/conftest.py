from __future__ import annotations

import os

import pytest

from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows.engine import launch


@pytest.fixture(autouse=True)
def _own_channel_prefix(settings):
    """With channels-redis, a prefix of this test process's own: colleagues' test runs share the
    Redis server, and their run ids are ours too (each test database counts from 1)."""
    layer = settings.CHANNEL_LAYERS["default"]
    if "redis" in layer["BACKEND"].lower():
        settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": f"test{os.getpid()}"}}}


@pytest.fixture
def small_engine(settings):
    settings.ENGINE_SHARD_SIZE = 40
    settings.ENGINE_BATCH_SIZE = 8


@pytest.fixture
def workflow(transactional_db, personas, small_engine):
    return make_runnable_workflow(personas["designer"])


@pytest.fixture
def make_run(workflow, personas):
    def make(count: int = 40, run_now: bool = False):
        run = launch.create_run(workflow, user=personas["operator"], items=tickets(count))
        if run_now:
            drain()
            run.refresh_from_db()
        return run

    return make

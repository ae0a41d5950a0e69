"""One real server per module, over a real governance database with tiny RVC voices (see ``world.py``)."""

from __future__ import annotations

import pytest

from tests.e2e_governance.world import make_world

VOICES = ["alice", "bob", "carol", "dave", "nogrant"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    running = make_world(tmp_path_factory.mktemp("gov-e2e"), VOICES)
    yield running
    running.server.stop()

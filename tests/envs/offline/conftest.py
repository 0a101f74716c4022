"""Fixtures of the :mod:`jaxrl.envs.offline` tests (one ``Walk`` dataset for all files)."""

from __future__ import annotations

import pytest

from jaxrl.envs import offline
from jaxrl.transition import Transition
from tests.envs.offline.helpers import collect_walk, walk_dataset


@pytest.fixture(scope="session")
def walk_data() -> Transition:
    return collect_walk()


@pytest.fixture(scope="session")
def walk_ds(walk_data) -> offline.Dataset:
    return walk_dataset(walk_data)

"""Tests for the slow learning tests' pass criteria (tests/agents/learning.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.agents.learning import CARTPOLE_SEEDS, assert_solves_cartpole


def test_a_few_short_seeds_pass():
    # one collapsed seed (the run-to-run spread the module docstring measured)
    assert_solves_cartpole(
        np.array([500.0, 220.5, 500, 490.6, 500, 497.4, 500, 500]), "x"
    )
    assert_solves_cartpole(np.array([500.0] * 5 + [410.0] * 3), "x")


def test_the_median_decides_at_the_threshold():
    assert_solves_cartpole(np.array([500.0] * 4 + [450.0] * 4), "x")  # median 475
    with pytest.raises(AssertionError, match="median 474.9"):
        assert_solves_cartpole(np.array([499.8] * 4 + [450.0] * 4), "x")


@pytest.mark.parametrize(
    "final, why",
    [
        ([500.0] * 3 + [400.0] * 5, "median"),  # most seeds short
        ([500.0] * 5 + [100.0] * 3, "mean"),  # a broad shortfall
        ([20.0] * 8, "median"),  # no learning
        ([500.0] * 7 + [np.nan], "non-finite"),
        ([500.0] * 4, "shape"),  # too few seeds
    ],
)
def test_failures_are_caught(final, why):
    with pytest.raises(AssertionError) as err:
        assert_solves_cartpole(np.array(final), "agent")
    if why in ("median", "mean", "non-finite"):
        assert why in str(err.value) and "agent" in str(err.value)


def test_seed_count():
    assert CARTPOLE_SEEDS >= 8

"""Tests for jaxrl.ops.dual: the dual-RL namespace re-exports its topic modules.

The operators themselves are tested next to their modules: test_divergences.py,
test_value_losses.py, test_awr.py and test_recoil.py.
"""

from __future__ import annotations

import jaxrl.ops
from jaxrl.ops import awr, divergences, dual, recoil, value_losses

TOPICS = (divergences, value_losses, awr, recoil)


def test_every_topic_name_is_reexported_as_the_same_object():
    names = [n for m in TOPICS for n in m.__all__]
    assert sorted(names) == sorted(dual.__all__)
    for module in TOPICS:
        for name in module.__all__:
            assert getattr(dual, name) is getattr(module, name), name


def test_ops_package_exposes_dual_functions():
    for name in dual.__all__:
        if name.isupper():  # constants stay on the modules
            continue
        assert getattr(jaxrl.ops, name) is getattr(dual, name), name

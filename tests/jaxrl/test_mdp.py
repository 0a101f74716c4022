"""Tests for jaxrl.mdp: construction, validation messages, pytree behaviour."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, default_float_dtype, make_mdp, validate


def _tensors(S: int = 3, A: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.normal(size=(S, A))
    return P, R


class TestMakeMdp:
    def test_fields_shapes_and_defaults(self):
        P, R = _tensors(4, 3)
        mdp = make_mdp(P, R, gamma=0.8)
        assert (mdp.num_states, mdp.num_actions) == (4, 3)
        assert mdp.C is None and not mdp.has_cost
        np.testing.assert_allclose(mdp.mu0, np.full(4, 0.25))
        np.testing.assert_allclose(mdp.P, P, rtol=1e-6)
        assert float(mdp.gamma) == pytest.approx(0.8)
        for leaf in jax.tree.leaves(mdp):
            assert leaf.dtype == default_float_dtype()

    def test_with_cost_and_mu0(self):
        P, R = _tensors()
        mdp = make_mdp(P, R, mu0=[1.0, 0.0, 0.0], gamma=0.5, C=np.ones((3, 2)))
        assert mdp.has_cost
        np.testing.assert_allclose(mdp.C, np.ones((3, 2)))
        np.testing.assert_allclose(mdp.mu0, [1.0, 0.0, 0.0])

    def test_row_sums_within_tolerance_accepted(self):
        P, R = _tensors()
        P = P.copy()
        P[0, 0, 0] += 1e-7
        make_mdp(P, R)  # within the default tolerance


BAD_CASES = [
    (
        "bad_row",
        dict(P_scale=2.0),
        r"P\[s, a, :\] must sum to 1 .*P\[0, 0, :\] sums to 2",
    ),
    ("negative_p", dict(negative=True), r"P must be nonnegative; P\[0, 0, 0\]"),
    ("r_shape", dict(R_shape=(3, 3)), r"R must have shape \[3, 2\] to match P"),
    ("mu0_shape", dict(mu0=np.ones(2) / 2), r"mu0 must have shape \[3\]"),
    ("mu0_sum", dict(mu0=np.ones(3)), r"mu0 must sum to 1"),
    ("gamma_one", dict(gamma=1.0), r"gamma must lie in \[0, 1\), got 1"),
    ("gamma_big", dict(gamma=1.5), r"gamma must lie in \[0, 1\), got 1.5"),
    ("gamma_negative", dict(gamma=-0.1), r"gamma must lie in \[0, 1\), got -0.1"),
    ("c_shape", dict(C=np.ones((2, 2))), r"C must have shape \[3, 2\]"),
    ("nan_reward", dict(nan_reward=True), r"R contains non-finite entries"),
    (
        "not_square",
        dict(P_override=np.ones((3, 2, 4)) / 4),
        r"P must have shape \[S, A, S\]",
    ),
    (
        "rank_two_p",
        dict(P_override=np.ones((3, 3)) / 3),
        r"P must have shape \[S, A, S\]",
    ),
]


class TestValidationErrors:
    @pytest.mark.parametrize(
        "name,change,message", BAD_CASES, ids=[c[0] for c in BAD_CASES]
    )
    def test_config_error_names_problem(self, name, change, message):
        del name
        P, R = _tensors()
        P = P.copy()
        if "P_scale" in change:
            P[0, 0] *= change["P_scale"]
        if change.get("negative"):
            P[0, 0, 0] = -0.5
        if "R_shape" in change:
            R = np.zeros(change["R_shape"])
        if change.get("nan_reward"):
            R = R.copy()
            R[1, 1] = np.nan
        P = change.get("P_override", P)
        with pytest.raises(ConfigError, match=message) as info:
            make_mdp(
                P,
                R,
                mu0=change.get("mu0"),
                gamma=change.get("gamma", 0.9),
                C=change.get("C"),
            )
        assert "\n" not in str(info.value)  # one clear line

    def test_validate_direct_struct(self):
        P, R = _tensors()
        bad = FiniteMDP(P=P, R=R, mu0=np.ones(3) / 3, gamma=np.float32(1.0))
        with pytest.raises(ConfigError, match="gamma"):
            validate(bad)

    def test_validate_skips_tracers_under_jit(self):
        P, R = _tensors()
        mdp = make_mdp(P, R)

        @jax.jit
        def f(m):
            validate(m)  # tracers: value checks are skipped, shapes still checked
            return m.R.sum()

        np.testing.assert_allclose(f(mdp), R.sum(), rtol=1e-5)

    def test_validate_batched(self):
        P, R = _tensors()
        batch = jax.tree.map(
            lambda *x: jnp.stack(x), make_mdp(P, R), make_mdp(P, R, gamma=0.5)
        )
        assert validate(batch) is batch
        broken = batch.replace(gamma=jnp.array([0.5, 1.0]))
        with pytest.raises(ConfigError, match=r"gamma must lie in \[0, 1\), got 1"):
            validate(broken)


class TestPytree:
    def test_leaves_without_and_with_cost(self):
        P, R = _tensors()
        assert len(jax.tree.leaves(make_mdp(P, R))) == 4
        assert len(jax.tree.leaves(make_mdp(P, R, C=np.zeros((3, 2))))) == 5

    def test_jit_roundtrip_and_traced_gamma(self):
        P, R = _tensors()
        mdp = make_mdp(P, R)
        traces = []

        @jax.jit
        def scaled(m):
            traces.append(1)
            return m.gamma * m.R

        for g in (0.1, 0.5):
            np.testing.assert_allclose(
                scaled(mdp.replace(gamma=jnp.float32(g))), g * R, rtol=1e-6
            )
        assert len(traces) == 1  # gamma is a leaf: no retrace

    def test_vmap_over_batch_of_mdps(self):
        rng = np.random.default_rng(1)
        mdps = [
            make_mdp(
                rng.dirichlet(np.ones(3), size=(3, 2)), rng.normal(size=(3, 2)), gamma=g
            )
            for g in (0.1, 0.5, 0.9)
        ]
        batch = jax.tree.map(lambda *x: jnp.stack(x), *mdps)
        out = jax.vmap(lambda m: (m.num_states, m.gamma * m.R.sum()))(batch)
        np.testing.assert_allclose(
            out[1], [float(m.gamma) * float(m.R.sum()) for m in mdps], rtol=1e-5
        )
        np.testing.assert_array_equal(out[0], [3, 3, 3])

    def test_vmap_with_cost(self):
        P, R = _tensors()
        m = make_mdp(P, R, C=np.ones((3, 2)))
        batch = jax.tree.map(lambda *x: jnp.stack(x), m, m)
        np.testing.assert_allclose(jax.vmap(lambda x: x.C.sum())(batch), [6.0, 6.0])

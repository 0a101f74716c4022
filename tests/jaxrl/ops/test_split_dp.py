"""Tests for jaxrl.ops.split_dp against NumPy loops, scipy LPs and enumeration.

References written here, independently of the library:

* ``_np_rho``: the worst-/best-case tail value of a discrete law as the linear
  program over densities (``scipy.optimize.linprog``), not by sorting;
* ``_np_eval_backup`` / ``_np_opt_backup``: one sweep of the split evaluation and
  robust control operators as loops over (s, a, s', sigma') with those LPs;
* ``_np_greedy_weights`` / ``_np_dist_backup``: the split weights by a Python
  loop over sorted components, and the split distributional backup as explicit
  mixtures projected atom by atom;
* ``_np_return_law``: the exact law of the return of a Markov policy on a
  finite-horizon MDP, by enumerating every trajectory.
"""

from __future__ import annotations

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized
from scipy import optimize

from jaxrl import testing
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional_dp as ddp
from jaxrl.ops import risk
from jaxrl.ops import split_dp as sd

# ------------------------------------------------------------------------ references


def _np_rho(values, probs, alpha, upper):
    """Tail value by the LP over densities: min (max) sum w v, w <= p / level."""
    v, p = np.asarray(values, np.float64), np.asarray(probs, np.float64)
    level = 1.0 - alpha if upper else alpha
    if level <= 0.0:  # alpha = 1, best case: the limit, the largest possible value
        return float(v[p > 0].max())
    res = optimize.linprog(
        -v if upper else v,
        A_eq=np.ones((1, len(v))),
        b_eq=[1.0],
        bounds=[(0.0, pc / level) for pc in p],
        method="highs",
    )
    assert res.status == 0
    return float(v @ res.x)


def _np_components(P, R, gamma, v, pi, alpha, s):
    vals, probs = [], []
    for a, t, j in itertools.product(range(R.shape[1]), range(P.shape[0]), range(2)):
        vals.append(R[s, a] + gamma * v[j, t])
        probs.append(pi[s, a] * P[s, a, t] * (alpha if j == 0 else 1.0 - alpha))
    return vals, probs


def _np_eval_backup(P, R, gamma, v, pi, alpha):
    out = np.zeros((2, P.shape[0]))
    for s in range(P.shape[0]):
        vals, probs = _np_components(P, R, gamma, v, pi, alpha, s)
        out[0, s] = _np_rho(vals, probs, alpha, upper=False)
        out[1, s] = _np_rho(vals, probs, alpha, upper=True)
    return out


def _np_opt_backup(P, R, gamma, v, alpha):
    S, A = R.shape
    q = np.zeros((2, S, A))
    for s, a in itertools.product(range(S), range(A)):
        vals, probs = [], []
        for t, j in itertools.product(range(S), range(2)):
            vals.append(v[j, t])
            probs.append(P[s, a, t] * (alpha if j == 0 else 1.0 - alpha))
        q[0, s, a] = R[s, a] + gamma * _np_rho(vals, probs, alpha, upper=False)
        q[1, s, a] = R[s, a] + gamma * _np_rho(vals, probs, alpha, upper=True)
    return q.max(-1), q


def _np_greedy_weights(values, probs, alpha):
    """Fill the worst-case tail component by component (ascending values)."""
    order = np.argsort(np.asarray(values), kind="stable")
    lower = np.zeros(len(values))
    room = alpha
    for c in order:
        take = min(room, probs[c])
        lower[c] = take / alpha
        room -= take
    upper = (np.asarray(probs) - alpha * lower) / (1.0 - alpha)
    return lower, upper


def _np_project(atoms, probs, z):
    m = np.zeros(len(z))
    for x, p in zip(atoms, probs, strict=True):
        if x <= z[0]:
            m[0] += p
        elif x >= z[-1]:
            m[-1] += p
        else:
            i = int(np.searchsorted(z, x, side="right")) - 1
            frac = (x - z[i]) / (z[i + 1] - z[i])
            m[i] += p * (1.0 - frac)
            m[i + 1] += p * frac
    return m


def _np_dist_backup(P, R, gamma, eta, pi, alpha, z):
    S, A = R.shape
    out = np.zeros_like(eta)
    means = eta @ z
    for s in range(S):
        vals, probs = _np_components(P, R, gamma, means, pi, alpha, s)
        lower, upper = _np_greedy_weights(vals, probs, alpha)
        comps = list(itertools.product(range(A), range(S), range(2)))
        for x, w in enumerate((lower, upper)):
            for (a, t, j), wc in zip(comps, w, strict=True):
                out[x, s] += _np_project(R[s, a] + gamma * z, wc * eta[j, t], z)
    return out


def _np_return_law(P, R, gamma, pi, s, horizon):
    """Exact law {G: prob} of the return from s under a deterministic Markov pi."""
    law = {}

    def walk(state, depth, g, disc, prob):
        if depth == horizon or prob == 0.0:
            law[round(g, 9)] = law.get(round(g, 9), 0.0) + prob
            return
        a = int(pi[state])
        for t in range(P.shape[0]):
            if P[state, a, t] > 0:
                walk(t, depth + 1, g + disc * R[state, a], disc * gamma,
                     prob * P[state, a, t])  # fmt: skip

    walk(s, 0, 0.0, 1.0, 1.0)
    x = np.array(sorted(law))
    return x, np.array([law[k] for k in x])


def _np_tail(x, p, level, upper=False):
    """Mean of the lower (upper) tail of mass ``level`` of a sorted law."""
    if upper:
        x, p = -x[::-1], p[::-1]
    before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    taken = np.clip(level - before, 0.0, p)
    out = np.sum(taken * x) / level
    return -out if upper else out


def _mdp(P, R, mu0, gamma):
    f = jnp.float32
    return FiniteMDP(
        P=jnp.asarray(P, f),
        R=jnp.asarray(R, f),
        mu0=jnp.asarray(mu0, f),
        gamma=jnp.asarray(gamma, f),
    )


def _sparse_mdp(seed, S=4, A=2, gamma=0.8):
    """Random MDP with some zero transition probabilities."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    P[P < 0.1] = 0.0
    P /= P.sum(-1, keepdims=True)
    R = rng.uniform(-1.0, 1.0, size=(S, A))
    return P, R, rng.dirichlet(np.ones(S)), gamma


def _layered(seed, horizon=3, width=2, num_actions=2):
    """Finite horizon, integer rewards, gamma = 1: every return is an integer."""
    rng = np.random.default_rng(seed)
    S = horizon * width + 1
    P = np.zeros((S, num_actions, S))
    R = np.zeros((S, num_actions))
    for t, i, a in itertools.product(range(horizon), range(width), range(num_actions)):
        s = t * width + i
        R[s, a] = rng.choice([-2, -1, 0, 1, 3])
        if t < horizon - 1:
            nxt = (t + 1) * width + np.arange(width)
            P[s, a, nxt] = rng.dirichlet(np.ones(width))
        else:
            P[s, a, S - 1] = 1.0
    P[S - 1, :, S - 1] = 1.0
    mu0 = np.eye(S)[0]
    return P, R, mu0, 1.0


X4 = np.array([-2.0, 0.0, 1.0, 3.0], np.float32)
P4 = np.array([0.1, 0.3, 0.4, 0.2], np.float32)

# ---------------------------------------------------------------------------- tests


class SplitWeightsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("a0_1", 0.1, -2.0),
        ("a0_25", 0.25, -0.8),
        ("a0_5", 0.5, -0.2),
        ("a1", 1.0, 0.8),
    )
    def test_lower_tail_is_cvar(self, alpha, want):
        lower, upper = self.variant(sd.split_weights)(X4, P4, alpha)
        np.testing.assert_allclose(lower @ X4, want, atol=1e-6)
        np.testing.assert_allclose(lower @ X4, risk.cvar(X4, P4, alpha), atol=1e-6)
        np.testing.assert_allclose(lower.sum(), 1.0, atol=1e-6)
        np.testing.assert_allclose(upper.sum(), 1.0, atol=1e-6)
        if alpha < 1:
            np.testing.assert_allclose(
                alpha * lower + (1 - alpha) * upper, P4, atol=1e-6
            )
        else:  # the limit: everything on the largest value
            np.testing.assert_allclose(upper, [0, 0, 0, 1], atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("a0_07", 0.07), ("a0_3", 0.3), ("a0_8", 0.8))
    def test_matches_linear_programs(self, alpha):
        rng = np.random.default_rng(3)
        for _ in range(5):
            v = rng.normal(size=9).astype(np.float32)
            p = rng.dirichlet(np.ones(9)).astype(np.float32)
            p[rng.integers(9)] = 0.0
            p /= p.sum()
            lower, upper = self.variant(sd.split_weights)(v, p, alpha)
            np.testing.assert_allclose(
                lower @ v, _np_rho(v, p, alpha, False), atol=1e-5
            )
            np.testing.assert_allclose(upper @ v, _np_rho(v, p, alpha, True), atol=1e-5)
            # feasible for the LPs: densities bounded by 1 / level
            assert np.all(np.asarray(lower) <= p / alpha + 1e-6)
            assert np.all(np.asarray(upper) <= p / (1 - alpha) + 1e-5)
            np.testing.assert_allclose(
                upper, _np_greedy_weights(v, p, alpha)[1], atol=1e-5
            )

    def test_vmap_over_traced_alpha(self):
        alphas = jnp.array([0.1, 0.25, 1.0])
        got = jax.jit(jax.vmap(lambda a: sd.split_weights(X4, P4, a)[0] @ X4))(alphas)
        np.testing.assert_allclose(got, [-2.0, -0.8, 0.8], atol=1e-6)

    @parameterized.parameters(0.0, -0.1, 1.5, float("nan"))
    def test_bad_alpha(self, alpha):
        with self.assertRaisesRegex(ConfigError, "alpha"):
            sd.split_weights(X4, P4, alpha)


class BackupTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("a0_1", 0.1), ("a0_37", 0.37), ("a1", 1.0))
    def test_expectation_backup_matches_lp_loops(self, alpha):
        P, R, mu0, gamma = _sparse_mdp(0)
        rng = np.random.default_rng(1)
        v = rng.normal(size=(2, 4))
        pi = testing.random_policy(rng, 4, 2)
        mdp = _mdp(P, R, mu0, gamma)
        got = self.variant(sd.split_expectation_backup)(mdp, v, pi, alpha)
        want = _np_eval_backup(P, R, gamma, v, pi, alpha)
        np.testing.assert_allclose(got, want, atol=1e-5)
        # deterministic int policy == its one-hot probabilities
        det = np.array([0, 1, 1, 0])
        got = self.variant(sd.split_expectation_backup)(mdp, v, det, alpha)
        want = _np_eval_backup(P, R, gamma, v, np.eye(2)[det], alpha)
        np.testing.assert_allclose(got, want, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("a0_1", 0.1), ("a0_6", 0.6), ("a1", 1.0))
    def test_optimality_backup_matches_lp_loops(self, alpha):
        P, R, mu0, gamma = _sparse_mdp(2)
        v = np.random.default_rng(4).normal(size=(2, 4))
        got_v, got_q = self.variant(sd.split_optimality_backup)(
            _mdp(P, R, mu0, gamma), v, alpha
        )
        want_v, want_q = _np_opt_backup(P, R, gamma, v, alpha)
        np.testing.assert_allclose(got_q, want_q, atol=1e-5)
        np.testing.assert_allclose(got_v, want_v, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("a0_2", 0.2), ("a0_5", 0.5))
    def test_distributional_backup_matches_loops(self, alpha):
        P, R, mu0, gamma = _sparse_mdp(5, S=3)
        z = np.linspace(-4.0, 4.0, 9)
        rng = np.random.default_rng(6)
        eta = rng.dirichlet(np.ones(9), size=(2, 3))
        pi = testing.random_policy(rng, 3, 2)
        got = self.variant(sd.split_distributional_backup)(
            _mdp(P, R, mu0, gamma), eta, pi, z, alpha
        )
        want = _np_dist_backup(P, R, gamma, eta, pi, alpha, z)
        np.testing.assert_allclose(got, want, atol=1e-5)


class FixedPointTest(parameterized.TestCase):
    @parameterized.named_parameters(("a0_1", 0.1), ("a0_5", 0.5), ("a1", 1.0))
    def test_mean_consistency_and_bounds(self, alpha):
        P, R, mu0, gamma = _sparse_mdp(7, gamma=0.7)
        mdp = _mdp(P, R, mu0, gamma)
        pi = testing.random_policy(np.random.default_rng(8), 4, 2)
        v = sd.split_policy_evaluation(mdp, pi, alpha, 80)
        v_pi = testing.np_policy_evaluation(P, R, gamma, pi)
        np.testing.assert_allclose(alpha * v[0] + (1 - alpha) * v[1], v_pi, atol=1e-4)
        assert np.all(np.asarray(v[0]) <= v_pi + 1e-5)
        assert np.all(np.asarray(v[1]) >= v_pi - 1e-5)
        # a fixed point of the LP-loop operator
        np.testing.assert_allclose(
            _np_eval_backup(P, R, gamma, np.asarray(v, np.float64), pi, alpha),
            v,
            atol=1e-4,
        )
        if alpha == 1.0:
            np.testing.assert_allclose(v[0], v_pi, atol=1e-4)

    def test_laws_mix_to_the_ordinary_return_law(self):
        """alpha eta- + (1 - alpha) eta+ == stock-blind distributional evaluation."""
        P, R, mu0, gamma = _sparse_mdp(9, gamma=0.6)
        mdp = _mdp(P, R, mu0, gamma)
        pi = testing.random_policy(np.random.default_rng(10), 4, 2)
        z = ddp.return_support(-4.0, 4.0, 33)
        alpha = 0.3
        eta = sd.split_distributional_evaluation(mdp, pi, z, alpha, 40)
        ref = ddp.distributional_policy_evaluation(
            mdp, pi, ddp.stock_grid(0.0, 1.0, 2), z, 40
        )
        ref = jnp.einsum("sa,san->sn", pi, ref[:, 0])
        np.testing.assert_allclose(
            alpha * eta[0] + (1 - alpha) * eta[1], ref, atol=1e-5
        )
        # the means follow the value recursion (|G| <= 2.5: no clipping)
        v = sd.split_policy_evaluation(mdp, pi, alpha, 40)
        np.testing.assert_allclose(eta @ z, v, atol=1e-4)

    @parameterized.named_parameters(("a0_2", 0.2), ("a1", 1.0))
    def test_value_iteration(self, alpha):
        P, R, mu0, gamma = _sparse_mdp(11, gamma=0.7)
        mdp = _mdp(P, R, mu0, gamma)
        v, q = sd.split_value_iteration(mdp, alpha, 80)
        want_v, want_q = _np_opt_backup(P, R, gamma, np.asarray(v, np.float64), alpha)
        np.testing.assert_allclose(want_v, v, atol=1e-4)  # a fixed point
        np.testing.assert_allclose(want_q, q, atol=1e-4)
        q_star, _ = testing.np_value_iteration(P, R, gamma, 200)
        if alpha == 1.0:  # the worst-case substate is the ordinary MDP
            np.testing.assert_allclose(v[0], q_star.max(-1), atol=1e-4)
        else:  # robust: below the optimum; a safe policy is no better on the mean
            assert np.all(np.asarray(v[0]) <= q_star.max(-1) + 1e-5)

    def test_vmap_over_alpha_equals_separate_runs(self):
        mdp = _mdp(*_sparse_mdp(12))
        alphas = jnp.array([0.1, 0.5, 1.0])
        run = jax.jit(lambda a: sd.split_value_iteration(mdp, a, 30))
        got_v, got_q = jax.vmap(run)(alphas)
        for i, a in enumerate([0.1, 0.5, 1.0]):
            v, q = sd.split_value_iteration(mdp, a, 30)
            np.testing.assert_allclose(got_v[i], v, atol=1e-6)
            np.testing.assert_allclose(got_q[i], q, atol=1e-6)


class EnumerationTest(parameterized.TestCase):
    """Worst-/best-case values against the exact return law by enumeration."""

    @parameterized.named_parameters(
        ("seed0_a0_2", 0, 0.2), ("seed1_a0_5", 1, 0.5), ("seed2_a0_1", 2, 0.1)
    )
    def test_values_bracket_the_exact_return_law(self, seed, alpha):
        P, R, mu0, gamma = _layered(seed)
        mdp = _mdp(P, R, mu0, gamma)
        S = P.shape[0]
        pi = np.random.default_rng(seed).integers(0, 2, size=S)
        v = np.asarray(sd.split_policy_evaluation(mdp, jnp.asarray(pi), alpha, 3))
        z = ddp.return_support(-12.0, 12.0, 25)  # integer returns: exact atoms
        eta = np.asarray(sd.split_distributional_evaluation(mdp, pi, z, alpha, 3))
        for s in range(S - 1):
            x, p = _np_return_law(P, R, gamma, pi, s, horizon=3)
            mean = float(x @ p)
            cvar = _np_tail(x, p, alpha)
            upper = _np_tail(x, p, 1 - alpha, upper=True)
            np.testing.assert_allclose(alpha * v[0, s] + (1 - alpha) * v[1, s], mean,
                                       atol=1e-5)  # fmt: skip
            assert cvar - 1e-5 <= v[0, s] <= mean + 1e-5
            assert mean - 1e-5 <= v[1, s] <= upper + 1e-5
            # the split laws: alpha eta- is a sub-law of the exact law
            law = np.zeros(25)
            law[np.round(x + 12).astype(int)] = p
            mix = alpha * eta[0, s] + (1 - alpha) * eta[1, s]
            np.testing.assert_allclose(mix, law, atol=1e-5)
            assert np.all(alpha * eta[0, s] <= law + 1e-6)
            np.testing.assert_allclose(eta[0, s] @ np.asarray(z), v[0, s], atol=1e-4)

    def test_one_transition_gives_the_cvar(self):
        rng = np.random.default_rng(13)
        n = 6
        P = np.zeros((n + 2, 1, n + 2))
        P[0, 0, 1 : n + 1] = rng.dirichlet(np.ones(n))
        P[1:, 0, n + 1] = 1.0
        R = np.zeros((n + 2, 1))
        R[1 : n + 1, 0] = rng.normal(size=n)
        mdp = _mdp(P, R, np.eye(n + 2)[0], 1.0)
        x, p = _np_return_law(P, R, 1.0, np.zeros(n + 2, int), 0, horizon=2)
        for alpha in (0.05, 0.3, 0.9):
            v = sd.split_policy_evaluation(mdp, jnp.zeros(n + 2, int), alpha, 2)
            np.testing.assert_allclose(v[0, 0], _np_tail(x, p, alpha), atol=1e-5)
            np.testing.assert_allclose(
                v[1, 0], _np_tail(x, p, 1 - alpha, upper=True), atol=1e-5
            )

    def test_two_transitions_lie_strictly_above_the_cvar(self):
        """s0 -> A or B (1/2 each); A pays 0 or 4, B pays 1 or 2 (1/2 each).

        Returns {0, 1, 2, 4} w.p. 1/4: CVaR_0.25 = 0. The split keeps only the
        worst quarter *of A's law* in A's worst-case substate, so
        V-(s0) = (0 + 1) / 2 = 0.5 by hand (see the module docstring).
        """
        s0, a, b, a0, a4, b1, b2, end = range(8)
        P = np.zeros((8, 1, 8))
        P[s0, 0, [a, b]] = 0.5
        P[a, 0, [a0, a4]] = 0.5
        P[b, 0, [b1, b2]] = 0.5
        P[[a0, a4, b1, b2, end], 0, end] = 1.0
        R = np.zeros((8, 1))
        R[[a0, a4, b1, b2], 0] = [0.0, 4.0, 1.0, 2.0]
        mdp = _mdp(P, R, np.eye(8)[s0], 1.0)
        v = sd.split_policy_evaluation(mdp, jnp.zeros(8, int), 0.25, 3)
        x, p = _np_return_law(P, R, 1.0, np.zeros(8, int), s0, horizon=3)
        assert _np_tail(x, p, 0.25) == pytest.approx(0.0)
        np.testing.assert_allclose(
            v[:, s0], [0.5, (1.75 - 0.25 * 0.5) / 0.75], atol=1e-5
        )

    def test_initial_values(self):
        rng = np.random.default_rng(14)
        v = rng.normal(size=(2, 5))
        mu0 = rng.dirichlet(np.ones(5))
        alpha = 0.3
        got = sd.split_initial_values(mu0, v, alpha)
        vals = [v[j, s] for s in range(5) for j in range(2)]
        probs = [mu0[s] * (alpha if j == 0 else 1 - alpha) for s in range(5) for j in range(2)]  # fmt: skip
        np.testing.assert_allclose(
            got,
            [_np_rho(vals, probs, alpha, False), _np_rho(vals, probs, alpha, True)],
            atol=1e-5,
        )


class BadInputTest(parameterized.TestCase):
    def test_errors_name_the_argument(self):
        mdp = _mdp(*_sparse_mdp(15))
        v = np.zeros((2, 4))
        with self.assertRaisesRegex(ConfigError, "alpha"):
            sd.split_expectation_backup(mdp, v, np.zeros(4, int), 0.0)
        with self.assertRaisesRegex(ConfigError, "alpha"):
            sd.split_value_iteration(mdp, 1.2, 3)
        with self.assertRaisesRegex(ConfigError, "num_iters"):
            sd.split_policy_evaluation(mdp, np.zeros(4, int), 0.5, 0)
        with self.assertRaisesRegex(ConfigError, "gamma"):
            sd.split_value_iteration(mdp.replace(gamma=jnp.asarray(1.5)), 0.5, 3)
        with self.assertRaises(AssertionError):  # shape mismatch (chex)
            sd.split_optimality_backup(mdp, np.zeros((3, 4)), 0.5)


if __name__ == "__main__":
    absltest.main()

"""Tests for jaxrl.ops.distributional_dp against NumPy loops and brute force.

References written here, independently of the library:

* ``_np_sweep``: one sweep of the stock-augmented distributional operator as
  explicit loops over (s, k, a, s', k', a');
* ``_np_expectimax``: the optimum of ``E f(c0 + G)`` over all history-dependent
  policies, by recursion over the history tree of a finite-horizon MDP (every
  call is one history; the best action is chosen per history);
* ``_np_policy_laws``: every return law reachable by a deterministic
  history-dependent policy (one per policy tree), for CVaR brute force;
* ``_np_markov_laws``: the return law of every deterministic Markov policy.
"""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized

from jaxrl import testing
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, make_mdp
from jaxrl.ops import distributional_dp as ddp
from jaxrl.ops import exact_dp

# ------------------------------------------------------------------------ references

UTILS = {
    "identity": lambda x: x,
    "min_zero": lambda x: np.minimum(x, 0.0),
    "indicator": lambda x: (x >= 0).astype(float),
    "neg_abs": lambda x: -np.abs(x),
    "neg_square": lambda x: -np.square(x),
}


def _np_project(atoms, probs, support):
    z = np.asarray(support, np.float64)
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


def _np_round(stocks, c):
    """Grid neighbours of a stock and their probabilities (clipped)."""
    c = min(max(c, stocks[0]), stocks[-1])
    j = 0
    while j < len(stocks) - 2 and stocks[j + 1] <= c:
        j += 1
    w = (c - stocks[j]) / (stocks[j + 1] - stocks[j])
    return ((j, 1.0 - w), (j + 1, w))


def _np_sweep(P, R, gamma, eta, pi, stocks, support):
    S, K, A, N = eta.shape
    out = np.zeros_like(eta)
    for s, k, a in itertools.product(range(S), range(K), range(A)):
        m = np.zeros(N)
        for (kk, wk), t, b in itertools.product(
            _np_round(stocks, (stocks[k] + R[s, a]) / gamma), range(S), range(A)
        ):
            m += P[s, a, t] * wk * pi[t, kk, b] * eta[t, kk, b]
        out[s, k, a] = _np_project(R[s, a] + gamma * support, m, support)
    return out


def _layered(seed, horizon=3, width=2, num_actions=2, gamma=1.0, rewards=(-1, 0, 1, 2)):
    """A finite-horizon MDP: ``horizon`` layers of ``width`` states, then terminal."""
    rng = np.random.default_rng(seed)
    S = horizon * width + 1
    P = np.zeros((S, num_actions, S))
    R = np.zeros((S, num_actions))
    for t, i, a in itertools.product(range(horizon), range(width), range(num_actions)):
        s = t * width + i
        R[s, a] = rng.choice(rewards)
        if t < horizon - 1:
            nxt = (t + 1) * width + rng.choice(width, size=2, replace=False)
            P[s, a, nxt] = rng.dirichlet(np.ones(2))
        else:
            P[s, a, S - 1] = 1.0
    P[S - 1, :, S - 1] = 1.0
    mu0 = np.zeros(S)
    mu0[:width] = 1.0 / width
    return P, R, mu0, gamma


def _shortcut(gamma=1.0):
    """History matters: the lucky path should play safe, the unlucky one gamble.

    s0 -> A (reward 2) or B (reward 0) w.p. 1/2 each, then the decision state D:
    safe (action 0) pays 1; risky (action 1) pays 4 w.p. 1/2 (through W), else 0.
    Rewards are scaled by gamma^-t so that the discounted returns do not depend on
    gamma: G in {3, 2, 6} after A, {1, 0, 4} after B.
    """
    s0, sa, sb, d, w, t = range(6)
    P = np.zeros((6, 2, 6))
    R = np.zeros((6, 2))
    P[s0, :, sa] = P[s0, :, sb] = 0.5
    P[sa, :, d] = P[sb, :, d] = 1.0
    R[sa] = 2.0 / gamma
    P[d, 0, t] = 1.0
    R[d, 0] = 1.0 / gamma**2
    P[d, 1, w] = P[d, 1, t] = 0.5
    P[w, :, t] = 1.0
    R[w] = 4.0 / gamma**3
    P[t, :, t] = 1.0
    return P, R, np.eye(6)[s0], gamma


def _to_mdp(P, R, mu0, gamma):
    f = jnp.float32
    return FiniteMDP(
        P=jnp.asarray(P, f),
        R=jnp.asarray(R, f),
        mu0=jnp.asarray(mu0, f),
        gamma=jnp.asarray(gamma, f),
    )


def _np_expectimax(P, R, mu0, gamma, horizon, f, c0):
    S, A, _ = P.shape

    def value(s, t, acc, disc):  # one call per history (s_0, a_0, ..., s_t)
        if t == horizon:
            return f(np.asarray(c0 + acc))
        return max(
            sum(
                P[s, a, s2] * value(s2, t + 1, acc + disc * R[s, a], disc * gamma)
                for s2 in range(S)
                if P[s, a, s2] > 0
            )
            for a in range(A)
        )

    return sum(mu0[s] * value(s, 0, 0.0, 1.0) for s in range(S) if mu0[s] > 0)


def _merge(pairs):
    out = {}
    for x, p in pairs:
        key = round(float(x), 9)
        out[key] = out.get(key, 0.0) + p
    return tuple(sorted(out.items()))


def _np_policy_laws(P, R, mu0, gamma, horizon):
    """Every return law of a deterministic history-dependent policy from mu0."""
    S, A, _ = P.shape

    @functools.cache
    def laws(s, depth):  # laws of the return from s over all policy subtrees
        if depth == 0:
            return frozenset({((0.0, 1.0),)})
        out = set()
        for a in range(A):
            succ = [s2 for s2 in range(S) if P[s, a, s2] > 0]
            for choice in itertools.product(*(laws(s2, depth - 1) for s2 in succ)):
                out.add(
                    _merge(
                        (R[s, a] + gamma * x, P[s, a, s2] * p)
                        for s2, law in zip(succ, choice, strict=True)
                        for x, p in law
                    )
                )
        return frozenset(out)

    starts = [s for s in range(S) if mu0[s] > 0]
    for choice in itertools.product(*(laws(s, horizon) for s in starts)):
        yield _merge(
            (x, mu0[s] * p)
            for s, law in zip(starts, choice, strict=True)
            for x, p in law
        )


def _np_markov_laws(P, R, mu0, gamma, horizon):
    """The return law of every deterministic Markov policy (pi[s] = action)."""
    S, A, _ = P.shape
    for pi in itertools.product(range(A), repeat=S):
        pairs = [(0.0, 1.0, s, 1.0) for s in range(S) if mu0[s] > 0]
        pairs = [(g, mu0[s], s, d) for g, _, s, d in pairs]
        for _ in range(horizon):
            pairs = [
                (g + d * R[s, pi[s]], p * P[s, pi[s], s2], s2, d * gamma)
                for g, p, s, d in pairs
                for s2 in range(S)
                if P[s, pi[s], s2] > 0
            ]
        yield pi, _merge((g, p) for g, p, _, _ in pairs)


def _np_cvar(law, alpha):
    total, acc = 0.0, 0.0
    for x, p in law:  # sorted ascending
        take = min(p, alpha - acc)
        if take <= 0:
            break
        total += take * x
        acc += take
    return total / alpha


def _np_eu(law, f, c0):
    return sum(p * f(np.asarray(c0 + x)) for x, p in law)


# Exact grids: gamma = 1 with integers; gamma = 1/2 with quarters (dyadic, closed
# under c' = 2 (c + r) for integer r). Both contain every reachable stock.
GRIDS = {
    1.0: dict(stocks=(-10.0, 10.0, 21), support=(-4.0, 8.0, 13), c0s=(-3.0, -1.0, 0.0)),
    0.5: dict(stocks=(-32.0, 32.0, 257), support=(-2.0, 4.0, 25), c0s=(-1.75, -0.5)),
}


def _grids(gamma):
    g = GRIDS[gamma]
    return ddp.stock_grid(*g["stocks"]), ddp.return_support(*g["support"]), g["c0s"]


vi_jit = jax.jit(ddp.distributional_value_iteration, static_argnums=(3, 4))
pi_jit = jax.jit(ddp.distributional_policy_iteration, static_argnums=(3, 4, 5))
eval_jit = jax.jit(ddp.distributional_policy_evaluation, static_argnums=(4,))


# ----------------------------------------------------------------------------- grids


class GridTest(parameterized.TestCase):
    def test_grids_are_exact_and_validated(self):
        np.testing.assert_array_equal(
            ddp.stock_grid(-10.0, 10.0, 21), np.arange(-10, 11)
        )
        np.testing.assert_array_equal(
            ddp.return_support(-2.0, 4.0, 25), np.arange(-8, 17) / 4
        )
        with self.assertRaisesRegex(ConfigError, "num_stocks must be an integer >= 2"):
            ddp.stock_grid(0.0, 1.0, 1)
        with self.assertRaisesRegex(ConfigError, "num_stocks"):
            ddp.stock_grid(0.0, 1.0, 0)
        with self.assertRaisesRegex(ConfigError, "num_atoms must be an integer >= 2"):
            ddp.return_support(0.0, 1.0, 1)
        with self.assertRaisesRegex(ConfigError, "stock_min must be < stock_max"):
            ddp.stock_grid(1.0, 1.0, 3)
        with self.assertRaisesRegex(ConfigError, "v_min must be < v_max"):
            ddp.return_support(2.0, 1.0, 3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_stock_interpolation_matches_numpy(self):
        stocks = np.array([-2.0, -0.5, 0.0, 3.0], np.float32)
        cs = np.array([-5.0, -2.0, -1.0, -0.5, 0.1, 2.9, 3.0, 7.0], np.float32)
        j, w = self.variant(ddp.stock_interpolation)(stocks, cs)
        for c, jj, ww in zip(cs, np.asarray(j), np.asarray(w), strict=True):
            (j_ref, _), (_, w_ref) = _np_round(stocks, float(c))
            probs = {jj: 1.0 - ww}
            probs[jj + 1] = probs.get(jj + 1, 0.0) + ww
            ref = {j_ref: 1.0 - w_ref}
            ref[j_ref + 1] = ref.get(j_ref + 1, 0.0) + w_ref
            for k in set(probs) | set(ref):
                self.assertAlmostEqual(probs.get(k, 0.0), ref.get(k, 0.0), places=6)
        # on-grid stocks get weight exactly 0 (or 1 at the top end)
        np.testing.assert_array_equal(np.asarray(w)[[1, 3, 6]], [0.0, 0.0, 1.0])
        weights = self.variant(ddp.stock_weights)(stocks, jnp.float32(0.75))
        np.testing.assert_allclose(weights, [0, 0, 0.75, 0.25], atol=1e-7)
        self.assertAlmostEqual(float(weights @ stocks), 0.75, places=6)  # mean kept

    @chex.variants(with_jit=True, without_jit=True)
    def test_projection_matrix_and_cramer(self):
        support = np.array([-1.0, 0.0, 0.5, 2.0], np.float32)
        atoms = np.array([-3.0, -0.25, 0.5, 1.0, 9.0], np.float32)
        mat = self.variant(ddp.projection_matrix)(atoms, support)
        for j, x in enumerate(atoms):
            np.testing.assert_allclose(
                mat[j], _np_project([x], [1.0], support), atol=1e-6
            )
        p, q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])
        ref = np.sqrt(np.sum((np.cumsum(p - q)[:-1]) ** 2 * np.diff(support)))
        got = self.variant(ddp.cramer_distance)(p, q, support)
        np.testing.assert_allclose(got, ref, rtol=1e-5)


# ------------------------------------------------------------------------- operators


class BellmanTest(parameterized.TestCase):
    # (jit only: an eager run of the sweep adds seconds and no signal)
    @chex.variants(with_jit=True)
    @parameterized.named_parameters(("gamma_0.9", 0.9), ("gamma_1", 1.0))
    def test_expectation_sweep_matches_numpy_loops(self, gamma):
        rng = np.random.default_rng(0)
        S, K, A, N = 3, 4, 2, 5
        P = rng.dirichlet(np.ones(S), size=(S, A))
        R = rng.normal(size=(S, A))
        stocks = np.array([-2.0, -0.5, 1.0, 2.5])
        support = np.linspace(-3.0, 3.0, N)
        eta = rng.dirichlet(np.ones(N), size=(S, K, A))
        pi = rng.dirichlet(np.ones(A), size=(S, K))
        mdp = _to_mdp(P, R, np.ones(S) / S, gamma)
        got = self.variant(ddp.stock_bellman_expectation)(
            mdp, eta.astype(np.float32), pi.astype(np.float32), stocks, support
        )
        ref = _np_sweep(P, R, gamma, eta, pi, stocks, support)
        np.testing.assert_allclose(got, ref, atol=2e-6)
        np.testing.assert_allclose(np.sum(got, -1), 1.0, atol=1e-6)  # mass kept

    @chex.variants(with_jit=True)
    def test_optimality_is_expectation_of_stock_greedy_policy(self):
        rng = np.random.default_rng(1)
        S, K, A, N = 3, 5, 3, 7
        P = rng.dirichlet(np.ones(S), size=(S, A))
        R = rng.integers(-1, 2, size=(S, A)).astype(float)
        stocks = np.linspace(-2.0, 2.0, K)
        support = np.linspace(-3.0, 3.0, N)
        eta = rng.dirichlet(np.ones(N), size=(S, K, A)).astype(np.float32)
        mdp = _to_mdp(P, R, np.ones(S) / S, 0.8)
        values = ddp.stock_action_values(eta, stocks, support, "neg_square")
        ref_values = np.einsum("skan,kn->ska", eta, -((stocks[:, None] + support) ** 2))
        np.testing.assert_allclose(values, ref_values, rtol=1e-5, atol=1e-5)
        policy = ddp.stock_greedy_policy(eta, stocks, support, "neg_square")
        np.testing.assert_array_equal(policy, np.argmax(ref_values, -1))
        got = self.variant(ddp.stock_bellman_optimality, static_argnums=4)(
            mdp, eta, stocks, support, "neg_square"
        )
        pi = np.eye(A)[np.argmax(ref_values, -1)]
        np.testing.assert_allclose(
            got, _np_sweep(P, R, 0.8, eta, pi, stocks, support), atol=2e-6
        )

    def test_policy_forms(self):
        markov = np.array([[0.3, 0.7], [1.0, 0.0]], np.float32)
        np.testing.assert_array_equal(
            ddp.policy_probs(markov, 3, 2), np.repeat(markov[:, None], 3, axis=1)
        )
        det = np.array([[1, 0, 1], [0, 0, 1]], np.int32)
        np.testing.assert_array_equal(ddp.policy_probs(det, 3, 2), np.eye(2)[det])
        probs = np.full((2, 3, 2), 0.5, np.float32)
        np.testing.assert_array_equal(ddp.policy_probs(probs, 3, 2), probs)


# ------------------------------------------------------------------ classic DP match


class ClassicDPTest(parameterized.TestCase):
    @parameterized.named_parameters(("two_atoms", 2), ("five_atoms", 5), ("c51", 51))
    def test_evaluated_mean_is_policy_value_when_unclipped(self, num_atoms):
        # Garnet rewards lie in [0, 1): returns in [0, 10) with gamma = 0.9, so the
        # support [0, 10] clips nothing and the projection keeps the mean exactly,
        # whatever the atom spacing; 250 sweeps leave gamma^250 ~ 4e-12.
        mdp = fm.garnet(jax.random.key(2), 6, 3, 3, 0.9)
        pi = jax.nn.softmax(jax.random.normal(jax.random.key(3), (6, 3)))
        stocks, support = (
            ddp.stock_grid(-5.0, 5.0, 4),
            ddp.return_support(0.0, 10.0, num_atoms),
        )
        eta = eval_jit(mdp, pi, stocks, support, 250)
        means = np.asarray(eta @ support)
        q = np.asarray(exact_dp.policy_q(mdp, pi))
        np.testing.assert_allclose(
            means, np.broadcast_to(q[:, None], means.shape), atol=2e-4
        )

    @parameterized.named_parameters(("gamma_0.9", 0.9), ("gamma_0.5", 0.5))
    def test_identity_utility_is_value_iteration_at_every_stock(self, gamma):
        mdp = fm.garnet(jax.random.key(4), 7, 3, 3, gamma)
        P, R, _, g = testing.np_mdp(mdp)
        stocks = ddp.stock_grid(-3.0, 4.0, 8)
        support = ddp.return_support(0.0, 1.0 / (1.0 - gamma), 21)
        eta = ddp.delta_laws((7, 8, 3), support)
        for n in range(3, 151, 3):  # three sweeps per call, one compile
            eta, policy = vi_jit(mdp, stocks, support, "identity", 3, eta)
            if n not in (3, 150):
                continue
            q_ref, _ = testing.np_value_iteration(P, R, g, n)
            means = np.asarray(eta @ support)
            np.testing.assert_allclose(
                means, np.broadcast_to(q_ref[:, None], means.shape), atol=1e-4
            )
            # the greedy policy is stock-blind and greedy for the means
            np.testing.assert_array_equal(policy, np.argmax(means, -1))
            np.testing.assert_array_equal(policy, policy[:, :1] * np.ones((1, 8), int))
        q_star = testing.np_policy_iteration(P, R, g)
        np.testing.assert_allclose(means[:, 0], q_star, atol=1e-4)


# ------------------------------------------------------------------ brute force


def _check_expectimax(gamma, utility, with_pi):
    """VI (and PI) objectives at several c0 equal the history expectimax."""
    stocks, support, c0s = _grids(gamma)
    c0s = jnp.asarray(c0s)

    @jax.jit
    def solve(mdp):
        def objectives(eta, policy):
            return jax.vmap(
                lambda c: ddp.initial_objective(
                    mdp, eta, policy, stocks, support, c, utility
                )
            )(c0s)

        eta, policy = ddp.distributional_value_iteration(
            mdp, stocks, support, utility, 4
        )
        out = [objectives(eta, policy)]
        if with_pi:
            eta, policy = ddp.distributional_policy_iteration(
                mdp, stocks, support, utility, 4, 4
            )
            out.append(objectives(eta, policy))
            # the returned laws are those of the returned policy
            exact = ddp.distributional_policy_evaluation(
                mdp, policy, stocks, support, 4
            )
            out.append(objectives(exact, policy))
        return jnp.stack(out)

    for seed in (0, 1):
        P, R, mu0, g = _layered(seed, gamma=gamma)
        got = solve(_to_mdp(P, R, mu0, g))
        ref = [_np_expectimax(P, R, mu0, g, 3, UTILS[utility], c) for c in c0s]
        for row in got:
            np.testing.assert_allclose(row, ref, atol=2e-5, err_msg=f"seed {seed}")


class BruteForceTest(parameterized.TestCase):
    """Stock-augmented DP equals the optimum over history-dependent policies."""

    # Every utility and both discounts; the default run keeps one case per utility
    # (and PI on two of them), the full product runs with --slow.
    @parameterized.named_parameters(
        ("min_zero_gamma_1", 1.0, "min_zero", True),
        ("indicator_gamma_1", 1.0, "indicator", False),
        ("identity_gamma_half", 0.5, "identity", False),
        ("neg_abs_gamma_half", 0.5, "neg_abs", False),
        ("neg_square_gamma_half", 0.5, "neg_square", True),
    )
    def test_vi_and_pi_equal_expectimax_over_histories(self, gamma, utility, with_pi):
        _check_expectimax(gamma, utility, with_pi)

    @parameterized.named_parameters(("gamma_1", 1.0), ("gamma_half", 0.5))
    def test_cvar_outer_search_equals_policy_enumeration(self, gamma):
        stocks, support, _ = _grids(gamma)
        P, R, mu0, g = _layered(3, gamma=gamma)
        mdp = _to_mdp(P, R, mu0, g)
        eta, policy = vi_jit(mdp, stocks, support, "min_zero", 4)
        all_laws = list(_np_policy_laws(P, R, mu0, g, 3))
        assert len(all_laws) > 100  # really a search
        for alpha in (0.1, 0.3, 0.5, 1.0):
            ru = ddp.cvar_objective(mdp, eta, policy, stocks, support, alpha)
            ref = max(_np_cvar(law, alpha) for law in all_laws)
            np.testing.assert_allclose(jnp.max(ru), ref, atol=2e-5, err_msg=f"{alpha}")
            # the policy from the best c0 attains it: its law's CVaR equals the bound
            best = stocks[jnp.argmax(ru)]
            law = ddp.initial_return_law(mdp, eta, policy, stocks, best)
            pairs = tuple(
                (float(x), float(p))
                for x, p in zip(support, law, strict=True)
                if p > 1e-7
            )
            np.testing.assert_allclose(_np_cvar(pairs, alpha), ref, atol=2e-5)
        # the enumeration agrees with the expectimax for an expected utility
        f = UTILS["min_zero"]
        np.testing.assert_allclose(
            max(_np_eu(law, f, -1.0) for law in all_laws),
            _np_expectimax(P, R, mu0, g, 3, f, -1.0),
            atol=1e-9,
        )

    @parameterized.named_parameters(("gamma_1", 1.0), ("gamma_half", 0.5))
    def test_stock_beats_every_markov_policy_on_the_shortcut(self, gamma):
        P, R, mu0, g = _shortcut(gamma)
        mdp = _to_mdp(P, R, mu0, g)
        stocks = ddp.stock_grid(-32.0, 32.0, 65)
        # returns-to-go reach 4 / gamma^3 (at W): the support must not clip them
        support = ddp.return_support(-1.0, 32.0, 34)
        markov = list(_np_markov_laws(P, R, mu0, g, 4))
        # Randomised Markov policies cannot do better here: every state is visited
        # at most once, so the objective is multilinear in the per-state action
        # probabilities and a vertex (a deterministic policy) attains the max.
        # P(G >= 3): history 1/2 * 1 + 1/2 * 1/2 = 0.75; best Markov 0.5.
        eta, policy = vi_jit(mdp, stocks, support, "indicator", 5)
        got = ddp.initial_objective(
            mdp, eta, policy, stocks, support, -3.0, "indicator"
        )
        f = UTILS["indicator"]
        ref = _np_expectimax(P, R, mu0, g, 4, f, -3.0)
        best_markov = max(_np_eu(law, f, -3.0) for _, law in markov)
        np.testing.assert_allclose(
            [got, ref, best_markov], [0.75, 0.75, 0.5], atol=1e-6
        )
        # the decision at D depends on the stock: safe after A (c = -1), risky after B
        k_a = int(np.argmin(np.abs(np.asarray(stocks) + 1.0 / g**2)))
        k_b = int(np.argmin(np.abs(np.asarray(stocks) + 3.0 / g**2)))
        assert (int(policy[3, k_a]), int(policy[3, k_b])) == (0, 1)
        # CVaR_0.5: history 1.5 (outcomes 3 | 0, 4) > best Markov 1.0
        eta, policy = vi_jit(mdp, stocks, support, "min_zero", 5)
        ru = ddp.cvar_objective(mdp, eta, policy, stocks, support, 0.5)
        all_laws = list(_np_policy_laws(P, R, mu0, g, 4))
        ref = max(_np_cvar(law, 0.5) for law in all_laws)
        best_markov = max(_np_cvar(law, 0.5) for _, law in markov)
        np.testing.assert_allclose(
            [jnp.max(ru), ref, best_markov], [1.5, 1.5, 1.0], atol=1e-6
        )
        np.testing.assert_allclose(stocks[jnp.argmax(ru)], -3.0)  # -VaR_0.5

    def test_markov_policy_laws_are_exact(self):
        # Stock-blind policies: evaluated laws equal the enumerated laws atom by atom.
        stocks, support, _ = _grids(1.0)
        P, R, mu0, g = _layered(5, gamma=1.0)
        mdp = _to_mdp(P, R, mu0, g)
        for pi, law in itertools.islice(_np_markov_laws(P, R, mu0, g, 3), 0, 128, 17):
            probs = np.eye(2)[list(pi)]
            eta = eval_jit(mdp, probs.astype(np.float32), stocks, support, 3)
            got = ddp.initial_return_law(
                mdp, eta, probs.astype(np.float32), stocks, 0.0
            )
            ref = _np_project([x for x, _ in law], [p for _, p in law], support)
            np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.slow
class SlowBruteForceTest(parameterized.TestCase):
    """The full product of utilities and discounts, VI and PI (``--slow``)."""

    @parameterized.product(
        gamma=(1.0, 0.5),
        utility=("identity", "min_zero", "indicator", "neg_abs", "neg_square"),
    )
    def test_all_utilities_and_discounts(self, gamma, utility):
        _check_expectimax(gamma, utility, True)


# -------------------------------------------------------------- validation, batching


class ApiTest(parameterized.TestCase):
    def test_vmap_over_mdps_equals_loop_and_traced_gamma(self):
        keys = jax.random.split(jax.random.key(7), 3)
        mdps = jax.vmap(lambda k: fm.garnet(k, 4, 2, 2, 0.8))(keys)
        mdps = mdps.replace(gamma=jnp.array([0.5, 0.8, 0.9]))
        stocks, support = (
            ddp.stock_grid(-2.0, 2.0, 5),
            ddp.return_support(0.0, 10.0, 11),
        )
        batched = jax.jit(
            jax.vmap(
                lambda m: ddp.distributional_value_iteration(
                    m, stocks, support, "min_zero", 10
                )
            )
        )(mdps)
        for i in range(3):
            one = jax.tree.map(lambda x, i=i: x[i], mdps)
            eta, policy = vi_jit(one, stocks, support, "min_zero", 10)
            np.testing.assert_allclose(batched[0][i], eta, atol=1e-6)
            np.testing.assert_array_equal(batched[1][i], policy)

    def test_traced_grids_and_alpha_do_not_retrace(self):
        mdp = fm.garnet(jax.random.key(8), 4, 2, 2, 0.8)

        @jax.jit
        @chex.assert_max_traces(n=1)
        def run(lo, hi, alpha):
            stocks, support = (
                ddp.stock_grid(lo, hi, 5),
                ddp.return_support(0.0, 5.0, 11),
            )
            eta, policy = ddp.distributional_value_iteration(
                mdp, stocks, support, "min_zero", 5
            )
            return jnp.max(ddp.cvar_objective(mdp, eta, policy, stocks, support, alpha))

        a = run(-2.0, 0.0, 0.5)
        b = run(-4.0, 0.0, 0.2)
        assert float(a) != float(b)

    def test_errors_name_the_field(self):
        mdp = make_mdp(np.ones((1, 1, 1)), [[1.0]], gamma=0.0)
        stocks, support = ddp.stock_grid(0.0, 1.0, 2), ddp.return_support(0.0, 1.0, 2)
        with pytest.raises(ConfigError, match="gamma must lie in"):
            ddp.distributional_policy_evaluation(
                mdp, jnp.zeros((1, 2), int), stocks, support, 1
            )
        mdp = mdp.replace(gamma=jnp.float32(0.5))
        eta = ddp.delta_laws((1, 2, 1), support)
        with pytest.raises(ConfigError, match="alpha must lie in"):
            ddp.cvar_objective(mdp, eta, jnp.zeros((1, 2), int), stocks, support, 0.0)
        with pytest.raises(ConfigError, match="alpha must lie in"):
            ddp.cvar_objective(mdp, eta, jnp.zeros((1, 2), int), stocks, support, 1.5)
        with pytest.raises(ConfigError, match="utility must be one of"):
            ddp.distributional_value_iteration(mdp, stocks, support, "nope", 1)
        with pytest.raises(ConfigError, match="stock grid needs >= 2 points"):
            ddp.stock_interpolation(jnp.zeros((1,)), 0.0)


if __name__ == "__main__":
    absltest.main()

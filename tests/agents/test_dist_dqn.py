"""Tests for jaxrl.agents.dist_dqn (stock-augmented distributional DQN).

The loss, the stock-shifted greedy rule, the c0 search and the empirical
objective are checked against float64 NumPy references; learning is checked
against the exact solution of jaxrl.agents.distributional_dp on a small MDP.
"""

from __future__ import annotations

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import dist_dqn, distributional_dp
from jaxrl.config import stack_configs
from jaxrl.envs.finite_mdp import make_finite_mdp_env
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional as dist_ops
from jaxrl.transition import Transition

TINY = dist_dqn.Config(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(16,),
    num_atoms=5,
    num_chunks=2,
    iters_per_chunk=12,
    learning_starts=8,
    num_eval_episodes=3,
    eval_max_steps=20,
    stock0_low=-4.0,
    stock0_high=1.0,
    num_stock0=6,
    v_min=-3.0,
    v_max=3.0,
)

UTILITIES = {
    "identity": lambda x: x,
    "min_zero": lambda x: np.minimum(x, 0.0),
    "indicator": lambda x: (x >= 0).astype(np.float64),
    "neg_abs": lambda x: -np.abs(x),
    "neg_square": lambda x: -(x**2),
}


def _np_utility(config):
    inner = {"mean": "identity", "cvar": "min_zero", "threshold": "indicator"}
    return UTILITIES[inner.get(config.objective, config.utility)]


# ------------------------------------------------------------------ NumPy reference


def _np_greedy(atoms, probs, stock, f):
    """Brute force: best stock-shifted utility, ties (1e-6) to the largest mean."""
    values = np.array(
        [np.sum(p * f(stock + z)) for z, p in zip(atoms, probs, strict=True)]
    )
    means = np.array([np.sum(p * z) for z, p in zip(atoms, probs, strict=True)])
    tol = 1e-6 * (1.0 + np.max(np.abs(values)))
    best = [b for b in range(len(values)) if values[b] >= values.max() - tol]
    return max(best, key=lambda b: (means[b], -b))


def _np_project(x, p, z):
    """Categorical projection of sum_j p_j delta_{x_j} onto the support z (loop)."""
    m = np.zeros(len(z))
    dz = z[1] - z[0]
    for xj, pj in zip(x, p, strict=True):
        xj = min(max(xj, z[0]), z[-1])
        b = (xj - z[0]) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            m[lo] += pj
        else:
            m[lo] += pj * (hi - b)
            m[hi] += pj * (b - lo)
    return m


def _np_quantile_huber(theta, target, kappa):
    n = len(theta)
    tau = (2 * np.arange(n) + 1) / (2 * n)
    total = 0.0
    for i in range(n):
        for t in target:
            u = t - theta[i]
            h = 0.5 * u * u / kappa if abs(u) <= kappa else abs(u) - 0.5 * kappa
            total += abs(tau[i] - (u < 0)) * h / len(target)
    return total


def _np_loss(params, target_params, batch, config):
    laws = lambda p, o: [
        np.asarray(x, np.float64) for x in dist_dqn.return_laws(p, o, config)
    ]
    atoms_tm1, probs_tm1 = laws(params, batch.obs)
    atoms_t, probs_t = laws(target_params, batch.next_obs)
    if config.double_q:
        sel_atoms, sel_probs = laws(params, batch.next_obs)
    else:
        sel_atoms, sel_probs = atoms_t, probs_t
    f = _np_utility(config)
    total = 0.0
    B = batch.action.shape[0]
    for b in range(B):
        stock = float(batch.next_obs[b, -1])
        a_star = _np_greedy(sel_atoms[b], sel_probs[b], stock, f)
        disc = config.gamma * (1.0 - float(batch.terminated[b]))
        r = float(batch.reward[b])
        a = int(batch.action[b])
        if config.head == "categorical":
            z = atoms_tm1[b, a]
            m = _np_project(r + disc * atoms_t[b, a_star], probs_t[b, a_star], z)
            total += -np.sum(m * np.log(probs_tm1[b, a]))
        else:
            target = r + disc * atoms_t[b, a_star]
            total += _np_quantile_huber(atoms_tm1[b, a], target, config.kappa)
    return total / B


def _params(config, seed, obs_dim=4):
    state_obs = jnp.zeros(obs_dim + 1)
    net = dist_dqn._value_loop.network(config, 3 * config.num_atoms, 1)
    return net.init(jax.random.key(seed), state_obs)


def _batch(b=8, obs_dim=4, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(b, obs_dim + 1)).astype(np.float32)
    next_obs = rng.normal(size=(b, obs_dim + 1)).astype(np.float32)
    obs[:, -1] = rng.uniform(-4, 2, size=b)
    next_obs[:, -1] = rng.uniform(-4, 2, size=b)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(rng.integers(0, 3, size=b), jnp.int32),
        reward=jnp.asarray(rng.normal(size=b), jnp.float32),
        next_obs=jnp.asarray(next_obs),
        terminated=jnp.asarray(np.arange(b) % 3 == 0),
        truncated=jnp.asarray(np.arange(b) % 4 == 1),
    )


# ----------------------------------------------------------------------------- loss


class TestLoss:
    @pytest.mark.parametrize("head", ["categorical", "quantile"])
    @pytest.mark.parametrize(
        "objective,utility,double_q",
        [
            ("mean", "neg_abs", False),
            ("cvar", "neg_abs", False),
            ("threshold", "neg_abs", True),
            ("homeostatic", "neg_square", False),
            ("utility", "indicator", False),
        ],
    )
    def test_matches_numpy(self, head, objective, utility, double_q):
        config = TINY.replace(
            head=head,
            objective=objective,
            utility=utility,
            double_q=double_q,
            gamma=0.8,
            kappa=0.7,
            threshold=0.5,
            set_point=1.0,
            stock0=-1.0,
        )
        params, target = _params(config, 0), _params(config, 1)
        batch = _batch()
        got, metrics = jax.jit(dist_dqn.loss, static_argnums=3)(
            params, target, batch, config
        )
        want = _np_loss(params, target, batch, config)
        np.testing.assert_allclose(float(got), want, rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(float(metrics["loss/td"]), want, rtol=2e-4)
        nojit, _ = dist_dqn.loss(params, target, batch, config)
        np.testing.assert_allclose(float(nojit), want, rtol=2e-4, atol=1e-5)

    def test_termination_stops_bootstrap_truncation_does_not(self):
        config = TINY.replace(head="quantile", gamma=0.9)
        params, target = _params(config, 0), _params(config, 1)
        base = _batch(b=1)
        term = base.replace(terminated=jnp.array([True]), truncated=jnp.array([False]))
        trunc = base.replace(terminated=jnp.array([False]), truncated=jnp.array([True]))
        far = term.replace(next_obs=term.next_obs + 100.0)
        # terminated: the next state does not matter at all
        np.testing.assert_allclose(
            dist_dqn.loss(params, target, term, config)[0],
            dist_dqn.loss(params, target, far, config)[0],
        )
        far_trunc = trunc.replace(next_obs=trunc.next_obs + 100.0)
        assert float(dist_dqn.loss(params, target, trunc, config)[0]) != pytest.approx(
            float(dist_dqn.loss(params, target, far_trunc, config)[0])
        )

    def test_gradient_only_through_online_params(self):
        config = TINY.replace(head="categorical")
        params, target = _params(config, 0), _params(config, 1)
        grads = jax.grad(lambda t: dist_dqn.loss(params, t, _batch(), config)[0])(
            target
        )
        assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))


# ----------------------------------------------------------------------- greedy rule


class TestGreedy:
    @pytest.mark.parametrize("objective", ["mean", "cvar", "threshold", "homeostatic"])
    def test_matches_brute_force(self, objective):
        config = TINY.replace(objective=objective)
        rng = np.random.default_rng(1)
        f = _np_utility(config)
        for _ in range(50):
            atoms = np.round(rng.normal(size=(3, 5)), 1)
            probs = rng.dirichlet(np.ones(5), size=3)
            stock = float(np.round(rng.uniform(-3, 3), 1))
            got = dist_dqn.greedy_action(
                jnp.asarray(atoms, jnp.float32),
                jnp.asarray(probs, jnp.float32),
                stock,
                config,
            )
            assert int(got) == _np_greedy(atoms, probs, stock, f)

    def test_ties_go_to_the_largest_mean(self):
        config = TINY.replace(objective="threshold")
        atoms = jnp.array([[1.0, 9.0], [5.0, 6.0], [-10.0, 30.0]])  # means 5, 5.5, 10
        probs = jnp.full((3, 2), 0.5)
        greedy = lambda c: int(dist_dqn.greedy_action(atoms, probs, c, config))
        assert greedy(0.0) == 1  # actions 0 and 1 surely reach 0: tie -> mean 5.5
        assert greedy(-20.0) == 2  # only the gamble can reach 20
        assert greedy(10.0) == 2  # every action surely reaches: the best mean

    def test_mean_objective_ignores_the_stock(self):
        config = TINY.replace(objective="mean")
        params = _params(config, 2)
        obs = _batch(b=6).obs
        actions = [
            jax.vmap(lambda o: dist_dqn.act(params, o, None, config, greedy=True))(
                obs.at[:, -1].set(c)
            )
            for c in (-50.0, 0.0, 50.0)
        ]
        # the network input does change with the stock, so compare with the means
        atoms, probs = dist_dqn.return_laws(params, obs.at[:, -1].set(50.0), config)
        np.testing.assert_array_equal(
            actions[2], np.argmax(np.sum(atoms * probs, axis=-1), axis=-1)
        )

    def test_act_epsilon_explores(self, key):
        config = TINY
        params = _params(config, 0)
        obs = _batch(b=1).obs[0]
        greedy = int(dist_dqn.act(params, obs, None, config, greedy=True))
        keys = jax.random.split(key, 2000)
        acts = np.asarray(
            jax.vmap(lambda k: dist_dqn.act(params, obs, k, config, epsilon=0.3))(keys)
        )
        # P(greedy) = 0.7 + 0.3/3
        assert abs(np.mean(acts == greedy) - 0.8) < 0.03
        assert set(np.unique(acts)) == {0, 1, 2}


# ------------------------------------------------------------ c0 search and objective


def test_choose_stock0_matches_numpy_grid_search():
    config = TINY.replace(objective="cvar", alpha=0.25, num_stock0=11)
    params = _params(config, 3)
    obs0 = _batch(b=5).obs
    c0, value = dist_dqn.choose_stock0(params, obs0, config)
    grid = np.linspace(config.stock0_low, config.stock0_high, 11)
    bounds = []
    for c in grid:
        atoms, probs = dist_dqn.return_laws(params, obs0.at[:, -1].set(c), config)
        atoms, probs = np.asarray(atoms, np.float64), np.asarray(probs, np.float64)
        inner = np.sum(probs * np.minimum(c + atoms, 0.0), axis=-1).max(axis=-1)
        bounds.append(-c + inner.mean() / 0.25)
    best = int(np.argmax(bounds))
    assert float(c0) == pytest.approx(grid[best], abs=1e-5)
    assert float(value) == pytest.approx(bounds[best], rel=1e-4, abs=1e-5)
    threshold = config.replace(objective="threshold", threshold=2.0, stock0_low=-3.0)
    c0, _ = dist_dqn.choose_stock0(params, obs0, threshold)
    assert float(c0) == -2.0


@pytest.mark.parametrize(
    "objective,expected",
    [
        ("mean", lambda g: g.mean()),
        ("cvar", lambda g: np.sort(g)[:2].mean()),  # alpha = 0.2 of 10 samples
        ("threshold", lambda g: np.mean(g >= 0.5)),
        ("homeostatic", lambda g: np.mean(-np.abs(g - 1.0))),
    ],
)
def test_empirical_objective(objective, expected):
    config = TINY.replace(objective=objective, alpha=0.2, threshold=0.5, set_point=1.0)
    g = np.random.default_rng(0).normal(size=10)
    got = dist_dqn.empirical_objective(
        jnp.asarray(g, jnp.float32), config.initial_stock, config
    )
    assert float(got) == pytest.approx(expected(g), rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------- training / sweeps


@pytest.mark.slow  # the agent contract tests cover this in the default run
def test_train_vmaps_over_seeds_and_traced_hyperparameters():
    env, params = gymnax.make("CartPole-v1")
    config = TINY.replace(objective="cvar")
    configs = stack_configs(
        [config, config.replace(alpha=0.5, lr=1e-2, stock0_low=-2.0)]
    )
    keys = jax.random.split(jax.random.key(0), 2)

    def train(c, k):
        return dist_dqn.make_train(c, env, params)(k)

    run = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    state, metrics = run(configs, keys)
    chex.assert_shape(metrics["eval/objective"], (2, 2, 24))
    final = np.asarray(metrics["eval/stock0"][:, :, -1])
    assert np.all(np.isfinite(final))
    assert np.all(final >= np.array([[-4.0], [-2.0]]) - 1e-6)
    # seeds differ
    p = state.params["params"]["head"]["kernel"]
    assert not np.allclose(p[0, 0], p[0, 1])
    # the replay holds augmented observations with their stocks
    assert state.obs.shape[-1] == 5


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"head": "iqn"}, "head"),
        ({"objective": "var"}, "objective"),
        ({"objective": "homeostatic", "utility": "indicator"}, "utility"),
        ({"num_atoms": 1}, "num_atoms"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"gamma": 0.0}, "gamma"),
        ({"v_min": 4.0}, "v_min"),
        ({"stock0_low": 2.0}, "stock0_low"),
        ({"objective": "threshold", "threshold": 10.0}, "outside the training stock"),
        ({"conv_features": (16,)}, "conv_features"),
        ({"stock_scale": 0.0}, "stock_scale"),
    ],
)
def test_invalid_config_raises(overrides, match):
    env, params = gymnax.make("CartPole-v1")
    with pytest.raises(ConfigError, match=match):
        dist_dqn.make_train(TINY.replace(**overrides), env, params)


def test_stacked_sweep_configs_are_order_checked_elementwise():
    # one bad member of a vmapped sweep is named (jaxrl.config.check_order)
    good = TINY.replace(v_min=-1.0, v_max=1.0, stock0_low=0.0, stock0_high=0.0)
    dist_dqn.Config.validate(stack_configs([good, good.replace(v_min=-2.0)]))
    for bad, match in (
        (good.replace(v_min=1.0), "v_min must be < v_max, got v_min=1, v_max=1"),
        (good.replace(stock0_low=0.5), "stock0_low must be <= stock0_high"),
    ):
        with pytest.raises(ConfigError, match=match):
            dist_dqn.Config.validate(stack_configs([good, bad]))


def test_gamma_must_match_a_finite_mdp():
    env, params = make_finite_mdp_env(_risky_mdp(0.9), max_steps=5, terminal=_TERMINAL)
    with pytest.raises(ConfigError, match="discount"):
        dist_dqn.make_train(TINY.replace(gamma=0.99), env, params)


# ---------------------------------------------------------------- learning vs exact DP

_TERMINAL = np.array([False, False, False, False, True])


def _risky_mdp(gamma):
    """s0: action 0 -> s1 (pays 1), action 1 -> s2 (pays 4) or s3 (pays -1) w.p. 1/2.

    s1, s2, s3 pay on leaving (realised rewards) and lead to the terminal s4.
    Discounted returns from s0: safe gamma * 1; risky gamma * {4, -1}.
    """
    S, A = 5, 2
    P = np.zeros((S, A, S))
    P[0, 0, 1] = 1.0
    P[0, 1, 2] = P[0, 1, 3] = 0.5
    P[1:4, :, 4] = 1.0
    P[4, :, 4] = 1.0
    R = np.zeros((S, A))
    R[1], R[2], R[3] = 1.0, 4.0, -1.0
    mu0 = np.eye(S)[0]
    return FiniteMDP(
        P=jnp.asarray(P, jnp.float32),
        R=jnp.asarray(R, jnp.float32),
        mu0=jnp.asarray(mu0, jnp.float32),
        gamma=jnp.asarray(gamma, jnp.float32),
    )


LEARN = dist_dqn.Config(
    num_envs=8,
    buffer_size=2_000,
    batch_size=64,
    hidden_sizes=(32, 32),
    num_atoms=61,
    num_chunks=1,
    iters_per_chunk=1_500,
    learning_starts=200,
    num_eval_episodes=1_000,
    eval_max_steps=5,
    lr=3e-3,
    # annealed to 5%: the gamble's law is a frequency of its two outcomes, and
    # at a constant rate the last few minibatches set it (seen: 0.37-0.62)
    lr_end_fraction=0.05,
    gamma=0.9,
    eps_start=1.0,
    eps_end=0.1,
    eps_decay=0.5,
    target_update_period=25,
    stock0_low=-4.0,
    stock0_high=1.0,
    num_stock0=26,
    # atoms every 0.1: the returns-to-go -1, 1, 4 and their discounted values
    # -0.9, 0.9, 3.6 are all atoms, so the categorical projection is exact (with
    # atoms every 0.3 the sure thing's law leaks 20% onto 0.6 and its CVaR is 0.6)
    v_min=-1.8,
    v_max=4.2,
    alpha=0.1,
)


def _utility_values(objective, stock, laws):
    """Exact ``E f(c + X)`` of each action's law ``(atoms, probs)`` (numpy)."""
    f = (lambda x: x) if objective == "mean" else (lambda x: np.minimum(x, 0.0))
    return np.array([np.sum(probs * f(stock + atoms)) for atoms, probs in laws])


def _huber_quantiles(low, high, num, kappa):
    """Minimisers of the quantile-Huber loss for the law {low, high} w.p. 1/2 each.

    At a midpoint fraction tau < 1/2 the balance (1 - tau)(theta - low) = tau kappa
    (``low`` within kappa, ``high`` beyond) gives theta = low + kappa tau / (1 - tau);
    above 1/2 the mirror image. Valid when high - low >= 2 kappa: the minimiser
    stays within kappa of the near outcome and beyond kappa of the far one.
    """
    tau = (2 * np.arange(num) + 1) / (2 * num)
    below = low + kappa * tau / (1 - tau)
    above = high - kappa * (1 - tau) / tau
    return tau, np.where(tau < 0.5, below, above)


@pytest.mark.parametrize("num, kappa", [(21, 1.0), (61, 1.0), (61, 0.5)])
def test_huber_quantile_reference_is_the_loss_minimiser(num, kappa):
    # the loss is convex and separable in the quantiles: a zero gradient at the
    # closed form, negative just below it and positive just above, is its minimum
    low, high = -0.9, 3.6
    tau, want = _huber_quantiles(low, high, num, kappa)
    grad = jax.jit(
        jax.grad(
            lambda theta: dist_ops.quantile_huber_loss(
                theta, jnp.array([low, high]), kappa
            )
        )
    )
    off = np.abs(tau - 0.5) > 1e-9  # at tau = 1/2 the loss is flat between the two
    np.testing.assert_allclose(np.asarray(grad(jnp.asarray(want)))[off], 0.0, atol=1e-6)
    assert np.all(np.asarray(grad(jnp.asarray(want - 0.01)))[off] < 0)
    assert np.all(np.asarray(grad(jnp.asarray(want + 0.01)))[off] > 0)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param("quantile", marks=pytest.mark.slow),
        pytest.param("categorical", marks=pytest.mark.slow),
    ],
)
def test_learns_the_exact_risk_sensitive_choice(head):
    """Mean prefers the gamble, CVaR_0.1 the sure thing, as the exact DP says.

    The learned laws are the exact ones: the sure thing is 0.9 surely, the gamble
    -0.9 or 3.6 with probability 1/2 each (categorical: on those atoms; quantile:
    at the quantile-Huber loss's own minimisers), at the CVaR run's stock and at a
    low stock where the stock-augmented rule switches to the gamble.
    """
    gamma = 0.9
    mdp = _risky_mdp(gamma)
    env, env_params = make_finite_mdp_env(mdp, max_steps=5, terminal=_TERMINAL)
    exact = {}
    for objective in ("mean", "cvar"):
        dp_config = distributional_dp.Config(
            objective=objective,
            alpha=0.1,
            num_atoms=61,
            v_min=-1.8,
            v_max=4.2,
            num_stocks=51,
            stock_min=-4.0,
            stock_max=1.0,
            iters_per_chunk=10,
        )
        exact[objective] = float(distributional_dp.solve(mdp, dp_config).objective)
    assert exact["mean"] == pytest.approx(gamma * 1.5, abs=0.02)
    assert exact["cvar"] == pytest.approx(gamma * 1.0, abs=0.02)
    sure, gamble = gamma * 1.0, (gamma * -1.0, gamma * 4.0)
    exact_laws = [
        (np.array([sure]), np.array([1.0])),
        (np.array(gamble), np.array([0.5, 0.5])),
    ]
    middle = np.mean(gamble)
    low_stock = -3.5

    for objective in ("mean", "cvar"):
        config = LEARN.replace(head=head, objective=objective)
        train = jax.jit(jax.vmap(dist_dqn.make_train(config, env, env_params)))
        state, metrics = train(jax.random.split(jax.random.key(7), 2))
        final = {k: np.asarray(v[:, -1]) for k, v in metrics.items()}
        # Monte Carlo over 1000 episodes: the gamble's returns have std 2.25
        atol = 0.3 if objective == "mean" else 1e-5
        np.testing.assert_allclose(final["eval/objective"], exact[objective], atol=atol)
        np.testing.assert_allclose(final["eval/predicted"], exact[objective], atol=0.25)
        for seed in range(2):
            params = jax.tree.map(lambda x, i=seed: x[i], state.params)
            for stock in (float(final["eval/stock0"][seed]), low_stock):
                values = _utility_values(objective, stock, exact_laws)
                assert abs(values[0] - values[1]) > 0.3  # a clear choice to learn
                obs = jnp.concatenate([jnp.eye(5)[0], jnp.array([stock])])
                action = int(dist_dqn.act(params, obs, None, config, greedy=True))
                assert action == int(np.argmax(values)), (objective, stock)
                atoms, probs = (
                    np.asarray(x) for x in dist_dqn.return_laws(params, obs, config)
                )
                atoms = np.broadcast_to(atoms, probs.shape)
                # the sure thing: 0.9 surely
                assert np.sum(atoms[0] * probs[0]) == pytest.approx(sure, abs=0.1)
                # the gamble: half its mass below the middle of its two outcomes
                assert np.sum(probs[1][atoms[1] < middle]) == pytest.approx(
                    0.5, abs=0.08
                )
                if head == "categorical":
                    assert np.sum(probs[0][np.abs(atoms[0] - sure) < 0.05]) > 0.95
                    near = np.abs(atoms[1][:, None] - np.array(gamble)).min(-1) < 0.05
                    assert np.sum(probs[1][near]) > 0.95
                else:
                    tau, want = _huber_quantiles(
                        *gamble, config.num_atoms, config.kappa
                    )
                    away = np.abs(tau - 0.5) >= 0.1  # the middle ones balance the two
                    np.testing.assert_allclose(atoms[1][away], want[away], atol=0.25)

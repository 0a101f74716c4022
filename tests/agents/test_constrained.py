"""Tests for jaxrl.agents.constrained: penalised and separate-critic losses vs NumPy,
lambda = 0 identities (update, acting, whole run), multiplier dynamics vs a
NumPy loop, the cost critic vs exact policy evaluation on a tabular CMDP,
seed x step-size vmaps and budget learning (slow)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import envs
from jaxrl.agents import _value_loop, mvi
from jaxrl.agents import constrained as C
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp
from jaxrl.envs.constrained import cost_table_env
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

BASE = mvi.Config(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(8,),
    num_chunks=2,
    iters_per_chunk=25,
    learning_starts=8,
    num_eval_episodes=2,
    eval_max_steps=20,
    huber_delta=1.0,
    tau=0.3,
    alpha=0.7,
    l0=-0.5,
    gamma=0.9,
)


# Whole training runs are compiled without XLA's expensive backend passes: the
# compile takes about half as long, and the comparisons below are between
# programs compiled alike (the slow tests use the default compilation).
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def _softmax(x):
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _numpy_loss(q, q_tm1_target, q_t_target, batch, lam, cfg):
    """M-DQN loss on r - lam c, one transition at a time (float64)."""
    tau, alpha, l0, gamma, delta = cfg.tau, cfg.alpha, cfg.l0, cfg.gamma, 1.0
    losses = []
    for b in range(q.shape[0]):
        a = int(batch.action[b])
        r = float(batch.reward[b]) - lam * float(batch.extras["cost"][b])
        log_pi_tm1 = np.log(_softmax(q_tm1_target[b] / tau))
        bonus = alpha * np.clip(tau * log_pi_tm1[a], l0, 0.0)
        pi_t = _softmax(q_t_target[b] / tau)
        v_t = np.sum(pi_t * (q_t_target[b] - tau * np.log(pi_t)))
        disc = gamma * (1.0 - float(batch.terminated[b]))
        td = r + bonus + disc * v_t - q[b, a]
        losses.append(
            0.5 * td**2 if abs(td) <= delta else delta * (abs(td) - 0.5 * delta)
        )
    return np.mean(losses)


def _batch(rng, size=6, obs_dim=4):
    return Transition(
        obs=jnp.asarray(rng.normal(size=(size, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 2, size), jnp.int32),
        reward=jnp.asarray(rng.normal(size=size), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(size, obs_dim)), jnp.float32),
        terminated=jnp.asarray([True, False, False, True, False, False]),
        truncated=jnp.asarray([False, False, True, False, False, False]),
        extras={"cost": jnp.asarray(rng.uniform(0, 2, size), jnp.float32)},
    )


def _nets(key):
    net = _value_loop.network(BASE, 2, 1)
    k1, k2 = jax.random.split(key)
    x = jnp.zeros((4,))
    return net.init(k1, x), net.init(k2, x)


class LossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("lam_zero", 0.0), ("lam_positive", 1.7))
    def test_matches_numpy(self, lam):
        rng = np.random.default_rng(0)
        batch = _batch(rng)
        params, target = _nets(jax.random.key(1))
        config = C.Config(base=BASE)
        got, metrics = self.variant(
            lambda p, t, b, lam_: C.loss(C.Params(p, lam_), t, b, config)
        )(params, target, batch, jnp.float32(lam))
        q = np.asarray(_value_loop.q_values(params, batch.obs, BASE, 1), np.float64)
        qt0 = np.asarray(_value_loop.q_values(target, batch.obs, BASE, 1), np.float64)
        qt1 = np.asarray(
            _value_loop.q_values(target, batch.next_obs, BASE, 1), np.float64
        )
        want = _numpy_loss(q, qt0, qt1, batch, lam, BASE)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        want_r = np.mean(
            np.asarray(batch.reward) - lam * np.asarray(batch.extras["cost"])
        )
        np.testing.assert_allclose(metrics["loss/penalised_reward"], want_r, rtol=1e-5)

    def test_no_gradient_into_the_multiplier_and_cost_required(self):
        batch = _batch(np.random.default_rng(1))
        params, target = _nets(jax.random.key(2))
        config = C.Config(base=BASE)
        grad = jax.grad(
            lambda lam_: C.loss(C.Params(params, lam_), target, batch, config)[0]
        )
        self.assertEqual(float(grad(jnp.float32(0.5))), 0.0)
        with self.assertRaisesRegex(KeyError, "extras\\['cost'\\]"):
            C.loss(C.Params(params, 0.0), target, batch.replace(extras={}), config)


def _numpy_separate_loss(q, q_tm1_target, q_t_target, batch, lam, cfg):
    """Separate reward/cost critics, one transition at a time (float64).

    ``q*`` are ``[B, 2A]`` head outputs (action-major: reward, cost). Returns
    the loss and the combined targets ``y_r - lam * y_c``.
    """
    tau, alpha, l0, gamma, delta = cfg.tau, cfg.alpha, cfg.l0, cfg.gamma, 1.0

    def huber(x):
        return 0.5 * x**2 if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)

    def policy(ql):  # softmax(ql / tau); uniform over the argmax at tau = 0
        if tau == 0:
            ties = (ql == ql.max()).astype(np.float64)
            return ties / ties.sum()
        return _softmax(ql / tau)

    def tau_log_pi(ql):  # tau ln softmax(ql / tau); ql - max ql at tau = 0
        adv = ql - ql.max()
        return adv if tau == 0 else adv - tau * np.log(np.sum(np.exp(adv / tau)))

    loss_r, loss_c, combined = [], [], []
    for b in range(q.shape[0]):
        a = int(batch.action[b])
        r, c = float(batch.reward[b]), float(batch.extras["cost"][b])
        qr, qc = q[b, 0::2], q[b, 1::2]
        tr0, tc0 = q_tm1_target[b, 0::2], q_tm1_target[b, 1::2]
        tr1, tc1 = q_t_target[b, 0::2], q_t_target[b, 1::2]
        ql0, ql1 = tr0 - lam * tc0, tr1 - lam * tc1
        bonus = alpha * np.clip(tau_log_pi(ql0)[a], l0, 0.0)
        pi1 = policy(ql1)
        disc = gamma * (1.0 - float(batch.terminated[b]))
        y_r = r + bonus + disc * np.sum(pi1 * (tr1 - tau_log_pi(ql1)))
        y_c = c + disc * np.sum(pi1 * tc1)
        loss_r.append(huber(y_r - qr[a]))
        loss_c.append(huber(y_c - qc[a]))
        combined.append(y_r - lam * y_c)
    return np.mean(loss_r), np.mean(loss_c), np.asarray(combined)


def _numpy_penalised_targets(q_tm1_target, q_t_target, batch, lam, cfg):
    """The single critic's M-DQN targets on r - lam c with q = q_r - lam q_c."""
    out = []
    for b in range(q_t_target.shape[0]):
        a = int(batch.action[b])
        r = float(batch.reward[b]) - lam * float(batch.extras["cost"][b])
        ql0 = q_tm1_target[b, 0::2] - lam * q_tm1_target[b, 1::2]
        ql1 = q_t_target[b, 0::2] - lam * q_t_target[b, 1::2]
        bonus = cfg.alpha * np.clip(
            cfg.tau * np.log(_softmax(ql0 / cfg.tau))[a], cfg.l0, 0
        )
        soft = cfg.tau * np.log(np.sum(np.exp(ql1 / cfg.tau)))
        out.append(r + bonus + cfg.gamma * (1.0 - float(batch.terminated[b])) * soft)
    return np.asarray(out)


def _separate_nets(key):
    net = _value_loop.network(BASE, 2 * 2, 1)
    k1, k2 = jax.random.split(key)
    x = jnp.zeros((4,))
    return net.init(k1, x), net.init(k2, x)


class SeparateLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lam_zero", 0.0, 0.3), ("lam_positive", 1.7, 0.3), ("hard_max", 1.7, 0.0)
    )
    def test_matches_numpy(self, lam, tau):
        rng = np.random.default_rng(5)
        batch = _batch(rng)
        params, target = _separate_nets(jax.random.key(4))
        base = BASE.replace(tau=tau)
        config = C.Config(base=base, critic="separate")
        got, metrics = self.variant(
            lambda p, t, b, lam_: C.loss(C.Params(p, lam_), t, b, config)
        )(params, target, batch, jnp.float32(lam))
        q = np.asarray(_value_loop.q_values(params, batch.obs, BASE, 1), np.float64)
        qt0 = np.asarray(_value_loop.q_values(target, batch.obs, BASE, 1), np.float64)
        qt1 = np.asarray(
            _value_loop.q_values(target, batch.next_obs, BASE, 1), np.float64
        )
        loss_r, loss_c, combined = _numpy_separate_loss(q, qt0, qt1, batch, lam, base)
        np.testing.assert_allclose(got, loss_r + loss_c, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss/td"], loss_r, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            metrics["loss/cost_td"], loss_c, rtol=1e-5, atol=1e-6
        )
        want_qc = np.mean(q[np.arange(6), 2 * np.asarray(batch.action) + 1])
        np.testing.assert_allclose(metrics["q_cost/mean"], want_qc, rtol=1e-5)
        self.assertGreater(loss_c, 0.05)  # the cost critic's term is exercised
        if tau > 0:
            # y_r - lam y_c is the penalised critic's target on q_r - lam q_c.
            want = _numpy_penalised_targets(qt0, qt1, batch, lam, base)
            np.testing.assert_allclose(combined, want, rtol=1e-9, atol=1e-9)

    def test_gradients_reach_both_heads_not_the_multiplier(self):
        batch = _batch(np.random.default_rng(6))
        params, target = _separate_nets(jax.random.key(5))
        config = C.Config(base=BASE, critic="separate")
        loss_of = lambda p, lam_: C.loss(C.Params(p, lam_), target, batch, config)[0]
        grads, grad_lam = jax.jit(jax.grad(loss_of, argnums=(0, 1)))(
            params, jnp.float32(0.5)
        )
        self.assertEqual(float(grad_lam), 0.0)
        head = np.asarray(grads["params"]["head"]["kernel"])  # [H, 2A]
        self.assertGreater(np.abs(head[:, 0::2]).sum(), 0.0)
        self.assertGreater(np.abs(head[:, 1::2]).sum(), 0.0)
        with self.assertRaisesRegex(KeyError, "extras\\['cost'\\]"):
            C.loss(C.Params(params, 0.0), target, batch.replace(extras={}), config)


class SeparateActTest(parameterized.TestCase):
    @parameterized.named_parameters(("greedy", "greedy"), ("stochastic", "stochastic"))
    def test_lambda_zero_acts_on_the_reward_critic(self, interact):
        base = BASE.replace(interact=interact)
        config = C.Config(base=base, critic="separate")
        params, _ = _separate_nets(jax.random.key(7))
        # The reward head alone, as a single-critic network for jaxrl.agents.mvi.act.
        head = params["params"]["head"]
        reward_only = {
            "params": {
                **params["params"],
                "head": {"kernel": head["kernel"][:, 0::2], "bias": head["bias"][0::2]},
            }
        }
        obs = jnp.asarray(np.random.default_rng(8).normal(size=(64, 4)), jnp.float32)

        @jax.jit
        def actions(params, reward_only, lam, k1, k2):
            def both(o, k_c, k_r):
                got = C.act(C.Params(params, lam), o, k_c, config, epsilon=0.4)
                want = mvi.act(reward_only, o, k_r, base, epsilon=0.4)
                greedy = C.act(C.Params(params, lam), o, None, config, greedy=True)
                return got, want, greedy

            return jax.vmap(both)(obs, k1, k2)

        # The same keys for both agents (two key arrays with the same data).
        k1, k2 = (jax.random.split(jax.random.key(9), 64) for _ in range(2))
        got, want, greedy = actions(params, reward_only, jnp.float32(0.0), k1, k2)
        np.testing.assert_array_equal(got, want)
        q = np.asarray(_value_loop.q_values(params, obs, BASE, 1)).reshape(64, 2, 2)
        np.testing.assert_array_equal(greedy, np.argmax(q[..., 0], axis=-1))
        self.assertGreater(np.mean(got != greedy), 0.05)  # exploration happened
        # A positive multiplier acts greedily on q_r - lam q_c.
        lam = 3.0
        k1, k2 = (jax.random.split(jax.random.key(9), 64) for _ in range(2))
        _, _, greedy = actions(params, reward_only, jnp.float32(lam), k1, k2)
        want = np.argmax(q[..., 0] - lam * q[..., 1], axis=-1)
        np.testing.assert_array_equal(greedy, want)
        self.assertFalse(np.array_equal(want, np.argmax(q[..., 0], axis=-1)))


def _numpy_multiplier(method, eta, lam_max, lam0, costs, ended, budget):
    lam, prev, seen, out = lam0, 0.0, 0, []
    for c, e in zip(costs, ended, strict=False):
        if e.any():
            g = c[e].mean() - budget
            prev_g = prev if seen else g
            d = 2 * g - prev_g if method == "reload" else g
            lam = min(max(lam + eta * d, 0.0), lam_max)
            prev, seen = g, seen + 1
        out.append(lam)
    return np.asarray(out)


class MultiplierUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("gda", "lagrangian", 0.3, 5.0),
        ("reload", "reload", 0.3, 5.0),
        ("reload_clipped", "reload", 0.8, 1.5),
    )
    def test_matches_numpy_loop(self, method, eta, lam_max):
        rng = np.random.default_rng(4)
        costs = rng.uniform(0, 4, (40, 3)).astype(np.float32)
        ended = rng.uniform(size=(40, 3)) < 0.3
        budget = 2.0
        config = C.Config(method=method, base=BASE, eta_lambda=eta, lambda_max=lam_max)

        def scan(costs, ended):
            def body(carry, x):
                lam, prev, n = carry
                lam, prev, n, _ = C.multiplier_update(lam, prev, n, *x, budget, config)
                return (lam, prev, n), lam

            init = (jnp.float32(0.5), jnp.float32(0.0), jnp.int32(0))
            return jax.lax.scan(body, init, (costs, ended))[1]

        got = self.variant(scan)(costs, ended)
        want = _numpy_multiplier(method, eta, lam_max, 0.5, costs, ended, budget)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        self.assertGreater(len(np.unique(want)), 5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("gda", "lagrangian"), ("reload", "reload"))
    def test_infinite_budget_is_no_constraint(self, method):
        """cost_limit = inf: violation -inf, lambda 0 (kept with eta 0), no NaN."""
        costs = jnp.asarray([[1.0, 2.0, 0.5], [3.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
        ended = jnp.asarray([[True, False, True], [False, False, False], [True] * 3])

        def scan(lam0, eta):
            config = C.Config(method=method, base=BASE, eta_lambda=eta, lambda_max=5.0)

            def body(carry, x):
                lam, prev, n = carry
                out = C.multiplier_update(lam, prev, n, *x, jnp.inf, config)
                return out[:3], (out[0], out[3])

            init = (jnp.float32(lam0), jnp.float32(0.0), jnp.int32(0))
            return jax.lax.scan(body, init, (costs, ended))

        for lam0, eta, want in ((0.0, 0.3, 0.0), (0.5, 0.3, 0.0), (0.5, 0.0, 0.5)):
            (lam, prev, n), (lams, violations) = self.variant(scan)(lam0, eta)
            np.testing.assert_array_equal(lams, np.float32(want))
            self.assertEqual(int(n), 2)
            # stored saturated, so the state stays finite (the divergence check)
            self.assertEqual(float(prev), -np.finfo(np.float32).max)
            v = np.asarray(violations)
            self.assertTrue(np.isnan(v[1]))  # no episode ended
            np.testing.assert_array_equal(v[[0, 2]], -np.inf)
        mean = C.mean_episode_cost(costs, ended)
        np.testing.assert_allclose(mean, (1.0 + 0.5 + 6.0) / 5, rtol=1e-6)
        self.assertTrue(np.isnan(C.mean_episode_cost(costs, jnp.zeros((3, 3), bool))))


def _reload_path(violations, eta, lam_max=100.0):
    """ReLOAD's multiplier after every iteration, from the observed violations."""
    lam, prev, out = 0.0, None, []
    for g in violations:
        if not np.isnan(g):
            d = 2 * g - (g if prev is None else prev)
            lam = min(max(lam + eta * d, 0.0), lam_max)
            prev = g
        out.append(lam)
    return np.asarray(out)


def test_run_lambda_zero_is_mvi_bitwise_and_multiplier_follows_violations():
    """Unbatched whole runs (one compile each, configs traced): eta = lambda0 = 0
    is M-DQN bitwise; eta > 0 moves the multiplier by the ReLOAD recursion."""
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=0.0, cost_limit=3.0)  # every step costs 1: binding
    train = jax.jit(
        lambda c, k: C.make_train(c, env, p)(k), compiler_options=FAST_COMPILE
    )
    config = C.Config(method="reload", base=BASE, eta_lambda=0.0)
    state, metrics = train(config, jax.random.key(11))
    ref_state, ref_metrics = jax.jit(
        lambda c, k: mvi.make_train(c, env, p)(k), compiler_options=FAST_COMPILE
    )(BASE, jax.random.key(11))
    chex.assert_trees_all_equal(state.base.params, ref_state.params)
    chex.assert_trees_all_equal(state.base.opt_state, ref_state.opt_state)
    for name in ("loss/td", "episode/return", "eval/return", "train/num_updates"):
        np.testing.assert_array_equal(metrics[name], ref_metrics[name])
    assert np.all(np.asarray(metrics["lagrange/lambda"]) == 0.0)
    # A positive step size: the multiplier follows its own violations, and the
    # penalised critic departs from M-DQN's.
    moved, metrics = train(config.replace(eta_lambda=0.2), jax.random.key(11))
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(moved.base.params),
            jax.tree.leaves(ref_state.params),
            strict=True,
        )
    )
    g = np.asarray(metrics["lagrange/violation"])
    lam = np.asarray(metrics["lagrange/lambda"])
    assert np.sum(~np.isnan(g)) >= 3 and lam[-1] > 0.0
    np.testing.assert_allclose(lam, _reload_path(g, 0.2), rtol=1e-5, atol=1e-6)
    # With every step costing 1, the undiscounted episode cost is the length.
    cost, length = metrics["episode/cost"], metrics["episode/length"]
    np.testing.assert_array_equal(np.isnan(cost), np.isnan(length))
    np.testing.assert_allclose(cost[~np.isnan(cost)], length[~np.isnan(length)])


def test_cost_critic_is_the_exact_policy_cost_on_a_tabular_cmdp():
    """Separate critics on a 5-state RandomCMDP with a frozen multiplier and a
    tabular network: the cost head converges to Q_c of the soft-greedy policy
    on q_r - lam q_c, solved exactly in NumPy (and not to other policies')."""
    S, A, gamma, lam, tau = 5, 2, 0.7, 0.5, 0.5
    fenv, fp = finite_mdp.make_random_cmdp_env(
        seed=3, num_states=S, num_actions=A, branching=2, max_steps=10
    )
    # The deep agent reads the budget and the discounted cost from the budgeted
    # version of the env (cost C[s, a], as the finite-MDP env's own info["cost"]).
    env, env_params = cost_table_env(fenv, fp, cost_limit=1e6)
    base = mvi.Config(
        num_envs=8,
        buffer_size=4096,
        batch_size=64,
        hidden_sizes=(),  # one-hot states -> a linear head is a table
        num_chunks=1,
        iters_per_chunk=2000,
        learning_starts=256,
        num_eval_episodes=0,
        eval_max_steps=10,
        lr=0.02,
        lr_end_fraction=0.05,
        eps_start=0.5,
        eps_end=0.5,
        gamma=gamma,
        huber_delta=100.0,
        max_grad_norm=100.0,
        target_update_period=1,
        polyak=0.05,
        tau=tau,
        alpha=0.5,
        l0=-1.0,
    )
    config = C.Config(critic="separate", base=base, eta_lambda=0.0, lambda0=lam)
    train = C.make_train(config, env, env_params)
    state, metrics = jax.jit(train, compiler_options=FAST_COMPILE)(jax.random.key(0))
    assert np.all(np.isnan(metrics["eval/cost"]))  # no evaluation episodes
    obs = jnp.eye(S)

    def heads(params):
        out = np.asarray(_value_loop.q_values(params, obs, base, 1), np.float64)
        return out.reshape(S, A, 2)[..., 0], out.reshape(S, A, 2)[..., 1]

    target_r, target_c = heads(state.base.target_params)
    _, q_c = heads(state.base.params)
    P = np.asarray(fp.mdp.P, np.float64)
    cost = np.asarray(fp.mdp.C, np.float64)

    def exact_cost_q(pi):  # Q = C + gamma P (pi . Q), solved on S x A
        p_pi = np.einsum("sat,tb->satb", P, pi).reshape(S * A, S * A)
        q = np.linalg.solve(np.eye(S * A) - gamma * p_pi, cost.reshape(-1))
        return q.reshape(S, A)

    pi = _softmax((target_r - lam * target_c) / tau)
    err = np.abs(q_c - exact_cost_q(pi)).max()
    assert err < 0.03, (err, q_c, exact_cost_q(pi))
    # The policies that ignore the multiplier or the temperature cost differently.
    for other in (
        _softmax(target_r / tau),
        np.eye(A)[np.argmax(target_r - lam * target_c, 1)],
    ):
        assert np.abs(q_c - exact_cost_q(other)).max() > 2 * 0.03


@pytest.mark.slow
def test_train_vmap_seeds_and_step_sizes_lambda_zero_is_mvi_and_dynamics():
    """One jitted call over step sizes x seeds; eta = 0 rows are M-DQN bitwise;
    every row's multiplier follows its own violations through a NumPy loop."""
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=0.0, cost_limit=3.0)  # every step costs 1: binding
    etas = (0.0, 0.05, 0.2)
    configs = stack_configs(
        [C.Config(method="reload", base=BASE, eta_lambda=e) for e in etas]
    )
    train = lambda c, k: C.make_train(c, env, p)(k)
    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(7), 2)
    state, metrics = sweep(configs, keys)
    assert metrics["lagrange/lambda"].shape == (3, 2, 50)
    ref_keys = jax.random.split(jax.random.key(7), 2)
    ref_state, _ = jax.jit(jax.vmap(mvi.make_train(BASE, env, p)))(ref_keys)
    # (float tolerance: the config axis changes XLA's fusion; unbatched runs
    # are bitwise equal, see LambdaZeroIdentityTest)
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[0], state.base.params),
        ref_state.params,
        rtol=1e-4,
        atol=1e-5,
    )
    # Seeds differ; step sizes change the multiplier.
    lam = np.asarray(metrics["lagrange/lambda"])
    assert not np.array_equal(lam[1, 0], lam[1, 1])
    assert np.all(lam[0] == 0.0) and lam[2, 0, -1] > lam[1, 0, -1] > 0.0
    # The multiplier path is the ReLOAD recursion on the observed violations.
    g = np.asarray(metrics["lagrange/violation"])
    for i, eta in enumerate(etas):
        for s in range(2):
            want = _reload_path(g[i, s], eta)
            np.testing.assert_allclose(lam[i, s], want, rtol=1e-5, atol=1e-6)
    # With every step costing 1, the undiscounted episode cost is the length.
    cost, length = metrics["episode/cost"], metrics["episode/length"]
    np.testing.assert_array_equal(np.isnan(cost), np.isnan(length))
    np.testing.assert_allclose(cost[~np.isnan(cost)], length[~np.isnan(length)])


def test_bad_inputs_are_clear_errors():
    env, p = envs.make("CartPole-Constrained-v0")
    with pytest.raises(ConfigError, match="method"):
        C.make_train(C.Config(method="pid", base=BASE), env, p)
    with pytest.raises(ConfigError, match="critic"):
        C.make_train(C.Config(critic="twin", base=BASE), env, p)
    with pytest.raises(ConfigError, match="lambda0"):
        C.make_train(C.Config(base=BASE, lambda0=5.0, lambda_max=1.0), env, p)
    with pytest.raises(ConfigError, match="eta_lambda"):
        C.make_train(C.Config(base=BASE, eta_lambda=-1.0), env, p)
    plain, plain_p = envs.make("CartPole-v1")
    with pytest.raises(ConfigError, match="cost_limit"):
        C.make_train(C.Config(base=BASE), plain, plain_p)


@pytest.mark.slow
def test_cartpole_constrained_budget_is_met_where_unconstrained_violates():
    """CartPole-Constrained-v0 with a binding band budget: 2 seeds x {0, eta}."""
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=1.0, cost_limit=25.0)
    config = C.cartpole_config("lagrangian")
    configs = stack_configs([config.replace(eta_lambda=0.0), config])
    train = lambda c, k: C.make_train(c, env, p)(k)
    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    _, metrics = sweep(configs, jax.random.split(jax.random.key(0), 2))
    last = config.iters_per_chunk - 1
    cost = np.asarray(metrics["eval/cost"][..., last :: config.iters_per_chunk])
    ret = np.asarray(metrics["eval/return"][..., last :: config.iters_per_chunk])
    final_cost = cost[..., -3:].mean(-1)  # [2 configs, 2 seeds], last 3 evaluations
    assert np.all(final_cost[0] > 25.0 * 1.5), final_cost  # unconstrained violates
    assert np.all(final_cost[1] <= 25.0 * 1.2), final_cost  # constrained meets it
    assert np.all(ret[1, :, -3:].mean(-1) > 100.0), ret

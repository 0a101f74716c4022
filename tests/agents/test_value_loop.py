"""Tests for jaxrl.agents._value_loop's Extension hook: an extended run keeps the plain
loop's computation (same keys, bitwise), the extension's params reach acting,
the loss and the evaluation, its info keys reach the buffer and its
after_iteration sees every iteration's transitions."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl import envs
from jaxrl.agents import _value_loop, dqn
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

CONFIG = dqn.Config(
    num_envs=2,
    buffer_size=32,
    batch_size=4,
    hidden_sizes=(8,),
    num_chunks=1,
    iters_per_chunk=6,
    learning_starts=4,
    num_eval_episodes=1,
    eval_max_steps=20,
)
# As in tests/agents/test_constrained.py: both runs compiled alike, faster.
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


@struct.dataclass
class Wrapped:
    base: _value_loop.State
    forced: jax.Array
    total_cost: jax.Array
    calls: jax.Array


def _act(action_of):
    def act(params, obs, key, config, *, greedy=False, epsilon=None):
        del obs, key, config, greedy, epsilon
        return action_of(params)

    return act


def _loss(params_of):
    def loss(params, target_params, batch, config):
        value, metrics = dqn.loss(params_of(params), target_params, batch, config)
        extra = {}
        if isinstance(params, tuple):
            extra = {
                "ext/forced": params[1].astype(jnp.float32),
                "ext/batch_cost": jnp.mean(batch.extras["cost"]),
                "ext/batch_keys": jnp.float32(len(batch.extras)),
            }
        return value, {**metrics, **extra}

    return loss


def _after(state, tr, info):
    assert set(tr.extras) == {"cost", "discounted_cost"}
    new = state.replace(
        total_cost=state.total_cost + jnp.sum(tr.extras["cost"]),
        calls=state.calls + 1,
    )
    return new, {
        "ext/actions": jnp.sum(tr.action).astype(jnp.float32),
        "ext/returned": jnp.sum(info["returned_episode"]).astype(jnp.float32),
    }


EXTENSION = _value_loop.Extension(
    init=lambda base: Wrapped(
        base=base,
        forced=jnp.int32(1),
        total_cost=jnp.float32(0.0),
        calls=jnp.int32(0),
    ),
    params=lambda q, state: (q, state.forced),
    after_iteration=_after,
    info_keys=("cost", "discounted_cost"),
    buffer_keys=("cost",),
)


def _train(env, p, extension):
    if extension is None:
        fns = {"loss_fn": _loss(lambda q: q), "act_fn": _act(lambda q: jnp.int32(1))}
    else:
        fns = {"loss_fn": _loss(lambda qf: qf[0]), "act_fn": _act(lambda qf: qf[1])}
    train = _value_loop.make_train(CONFIG, env, p, extension=extension, **fns)
    return jax.jit(train, compiler_options=FAST_COMPILE)(jax.random.key(5))


def test_extended_run_keeps_the_plain_computation_and_sees_every_iteration():
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=0.0)  # every step off the centre costs 1
    plain, plain_metrics = _train(env, p, None)
    ext, metrics = _train(env, p, EXTENSION)
    assert isinstance(ext, Wrapped)
    # The base computation is the plain loop's, key split for key split.
    for name in ("params", "target_params", "opt_state", "env_state", "obs"):
        chex.assert_trees_all_equal(getattr(ext.base, name), getattr(plain, name))
    np.testing.assert_array_equal(
        jax.random.key_data(ext.base.key), jax.random.key_data(plain.key)
    )
    for name in ("loss/td", "eval/return", "episode/return", "train/num_updates"):
        np.testing.assert_array_equal(metrics[name], plain_metrics[name])
    # after_iteration ran once per iteration on the collected transitions.
    iters, envs_ = CONFIG.iters_per_chunk, CONFIG.num_envs
    assert int(ext.calls) == iters
    np.testing.assert_array_equal(metrics["ext/actions"], np.full(iters, envs_))
    # The buffer keeps the buffer_keys only; its costs are those summed above.
    stored = ext.base.buffer.data.extras
    assert set(stored) == {"cost"}
    n = iters * envs_
    costs = np.asarray(stored["cost"]).reshape(-1)[:n]
    np.testing.assert_allclose(float(ext.total_cost), costs.sum())
    np.testing.assert_array_equal(costs, 1.0)  # |x| > 0 after every step
    # The loss saw the extension's params and the stored cost; rows before
    # learning_starts are NaN.
    learned = ~np.isnan(np.asarray(metrics["loss/td"]))
    assert learned.sum() == iters - CONFIG.learning_starts // envs_ + 1
    np.testing.assert_array_equal(metrics["ext/forced"][learned], 1.0)
    np.testing.assert_array_equal(metrics["ext/batch_keys"][learned], 1.0)
    np.testing.assert_array_equal(metrics["ext/batch_cost"][learned], 1.0)
    assert "ext/returned" in metrics and "ext/forced" not in plain_metrics


def test_buffer_keys_must_be_collected():
    with pytest.raises(ConfigError, match="buffer_keys"):
        _value_loop.Extension(
            init=lambda b: b,
            params=lambda q, s: q,
            after_iteration=lambda s, tr, info: (s, {}),
            info_keys=("cost",),
            buffer_keys=("discounted_cost",),
        )


def test_shared_branch_is_unbatched_under_nested_vmap():
    branch = _value_loop._shared_branch
    assert int(branch(jnp.bool_(True))) == 2 and int(branch(jnp.bool_(False))) == 0
    preds = jnp.array([[True, True], [True, False], [False, False]])

    def per_row(row):  # out_axes=None: vmap fails unless the index is unbatched
        return jax.vmap(branch, out_axes=None)(row)

    assert [int(per_row(r)) for r in preds] == [2, 1, 0]
    # nested vmaps reduce over both axes: still one unbatched index
    assert int(jax.vmap(per_row, out_axes=None)(preds)) == 1
    assert int(jax.vmap(per_row, out_axes=None)(preds[:1])) == 2


@pytest.mark.heavy
def test_mixed_learning_starts_sweep_equals_separate_runs():
    # seeds of one vmap disagreeing on should_learn take the select branch
    env, env_params = envs.make("CartPole-v1")
    starts = jnp.array([4, 8])
    config = CONFIG.replace(num_eval_episodes=0)

    def keys():
        return jax.random.split(jax.random.key(1), 2)

    def run(key, learning_starts):
        c = config.replace(learning_starts=learning_starts)
        return dqn.make_train(c, env, env_params)(key)

    _, both = jax.jit(jax.vmap(run))(keys(), starts)
    for i in range(2):
        _, one = jax.jit(run)(keys()[i], starts[i])
        np.testing.assert_allclose(
            both["loss/td"][i], one["loss/td"], rtol=1e-5, equal_nan=True
        )
    assert np.isnan(both["loss/td"][1][2]) and not np.isnan(both["loss/td"][0][2])


def test_minatar_replay_stores_bool_observations():
    env, env_params = envs.make("Breakout-MinAtar")
    config = CONFIG.replace(conv_features=(2,), hidden_sizes=(4,))
    state = dqn.init(jax.random.key(0), env, env_params, config)
    assert state.buffer.data.obs.dtype == jnp.bool_
    assert state.buffer.data.next_obs.dtype == jnp.bool_
    assert state.obs.dtype == jnp.float32


def test_explore_draws_coin_and_action_from_one_bits_call():
    """ε-greedy: coin ``U < ε`` from word 0, action from words 1-2 (exact), and
    the frequencies of both match ε and the uniform law (chi-square)."""
    from scipy import stats

    from jaxrl.ops import sampling

    n, num_actions, eps = 60_000, 5, 0.3
    seeds = jnp.arange(n)
    keys = jax.vmap(jax.random.key)(seeds)
    best = jnp.int32(2)
    acts = jax.jit(jax.vmap(lambda k: _value_loop.explore(best, k, eps, num_actions)))(
        keys
    )
    words = np.asarray(
        jax.vmap(lambda s: jax.random.bits(jax.random.key(s), (3,), jnp.uint32))(seeds)
    )
    coin = (words[:, 0].astype(np.uint64) >> 9) / 2.0**23 < eps
    action = [((int(h) << 32 | int(lo)) * num_actions) >> 64 for h, lo in words[:, 1:]]
    want = np.where(coin, action, 2)
    np.testing.assert_array_equal(np.asarray(acts), want)
    # laws: P(explore) = eps; explored actions uniform on {0..A-1}
    assert abs(coin.mean() - eps) < 4 * np.sqrt(eps * (1 - eps) / n)
    counts = np.bincount(np.asarray(action)[coin], minlength=num_actions)
    assert stats.chisquare(counts).pvalue > 1e-4
    np.testing.assert_array_equal(
        np.asarray(sampling.index_from_words(words[:, 1], words[:, 2], num_actions)),
        action,
    )
    # ε = 0 is always greedy
    greedy = jax.vmap(lambda k: _value_loop.explore(best, k, 0.0, num_actions))(
        jax.vmap(jax.random.key)(seeds[:100])
    )
    np.testing.assert_array_equal(np.asarray(greedy), 2)


def _learner_and_batches(key, config, num_batches=1):
    """A DQN learner state (the fields learning does not touch removed) and
    ``num_batches`` random CartPole-shaped batches ``Transition[U, B]``."""
    env, env_params = envs.make("CartPole-v1")
    state = dqn.init(key, env, env_params, config)
    k_obs, k_rest = jax.random.split(jax.random.fold_in(key, 1))
    shape = (num_batches, config.batch_size)
    obs = jax.random.normal(k_obs, (*shape, 4))
    k_a, k_r, k_n, k_t = jax.random.split(k_rest, 4)
    batches = Transition(
        obs=obs,
        action=jax.random.randint(k_a, shape, 0, 2),
        reward=jax.random.normal(k_r, shape),
        next_obs=obs + 0.1 * jax.random.normal(k_n, (*shape, 4)),
        terminated=jax.random.bernoulli(k_t, 0.2, shape),
        truncated=jnp.zeros(shape, bool),
    )
    learner = state.replace(key=None, buffer=None, env_state=None, obs=None, step=None)
    return learner, batches


def test_learn_once_is_update_where_learning_and_nothing_elsewhere():
    # one gradient step per iteration takes the loop's own path (_learn_once:
    # the gradient in the branch, the optimiser step outside it); it must be
    # update() where should_learn and leave the state alone (NaN metrics) where not
    config = CONFIG.replace(target_update_period=1, polyak=0.5)
    learn_once = jax.jit(
        lambda s, b, p: _value_loop._learn_once(s, b, p, config, dqn.loss)
    )
    step = jax.jit(lambda s, b: dqn.update(s, b, config))
    learner, batches = _learner_and_batches(jax.random.key(3), config)
    batch = jax.tree.map(lambda x: x[0], batches)
    want, want_metrics = step(learner, batch)
    got, metrics = learn_once(learner, batches, jnp.bool_(True))
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-7)
    assert int(got.num_updates) == 1
    # the target moved halfway to the new parameters (period 1, polyak 0.5)
    chex.assert_trees_all_close(
        got.target_params,
        jax.tree.map(lambda t, p: 0.5 * (t + p), learner.target_params, got.params),
        rtol=1e-6,
        atol=1e-7,
    )
    assert set(metrics) == set(want_metrics)
    chex.assert_trees_all_close(metrics, want_metrics, rtol=1e-6, atol=1e-7)
    kept, nan_metrics = learn_once(learner, batches, jnp.bool_(False))
    chex.assert_trees_all_equal(kept, learner)
    assert all(np.isnan(v) for v in jax.tree.leaves(nan_metrics))
    # seeds of one vmap that disagree: each gets its own single-seed result
    both = jax.tree.map(lambda x: jnp.stack([x, x]), (learner, batches))
    got2, metrics2 = jax.jit(jax.vmap(learn_once))(*both, jnp.array([True, False]))
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[0], got2), want, rtol=1e-6, atol=1e-7
    )
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], got2), learner)
    assert not np.isnan(metrics2["loss/td"][0]) and np.isnan(metrics2["loss/td"][1])


def test_learn_once_and_the_update_scan_agree_on_one_step():
    # updates_per_iter = 1 takes _learn_once, more take the scan of update():
    # on one batch the two give the same state
    config = CONFIG.replace(target_update_period=1)
    learner, batches = _learner_and_batches(jax.random.key(4), config)
    scanned, _ = jax.jit(lambda s, b: _value_loop._learn(s, b, config, dqn.loss))(
        learner, batches
    )
    once, _ = jax.jit(
        lambda s, b: _value_loop._learn_once(s, b, jnp.bool_(True), config, dqn.loss)
    )(learner, batches)
    chex.assert_trees_all_close(once, scanned, rtol=1e-6, atol=1e-7)
    head = once.params["params"]["head"]["kernel"]
    assert not np.allclose(head, learner.params["params"]["head"]["kernel"])

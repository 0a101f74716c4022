"""Tests for jaxrl.optim: traced hyperparameters, schedule, clipping, Adam reference."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl import optim


def _np_adam_run(
    grads, lr, max_norm, eps, b1=0.9, b2=0.999, decay_steps=0, end_fraction=1.0
):
    """Plain NumPy clip + Adam + linear-decay reference over a list of gradients."""
    w = np.zeros_like(grads[0])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for k, g in enumerate(grads):
        norm = np.sqrt(np.sum(g**2))
        if norm >= max_norm:
            g = g / norm * max_norm
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1 ** (k + 1))
        v_hat = v / (1 - b2 ** (k + 1))
        frac = min(k / decay_steps, 1.0) if decay_steps > 0 else 0.0
        lr_k = lr * (1 - (1 - end_fraction) * frac)
        w = w - lr_k * m_hat / (np.sqrt(v_hat) + eps)
    return w


def _run(lr, max_norm, eps, grads, decay_steps=0, end_fraction=1.0):
    opt = optim.make_optimizer(
        lr,
        max_grad_norm=max_norm,
        eps=eps,
        decay_steps=decay_steps,
        end_fraction=end_fraction,
    )
    w = jnp.zeros_like(grads[0])
    state = opt.init(w)

    def body(carry, g):
        w, state = carry
        u, state = opt.update(g, state, w)
        return (w + u, state), None

    (w, _), _ = jax.lax.scan(body, (w, state), grads)
    return w


GRADS = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32) * 3


def test_matches_numpy_adam():
    got = jax.jit(_run)(0.1, 2.0, 1e-3, GRADS, 4, 0.25)
    want = _np_adam_run(list(GRADS), 0.1, 2.0, 1e-3, decay_steps=4, end_fraction=0.25)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_vmap_over_lrs_equals_separate_runs():
    lrs = jnp.array([0.1, 0.01])
    norms = jnp.array([1.0, jnp.inf])
    vmapped = jax.jit(jax.vmap(_run, in_axes=(0, 0, None, None)))(
        lrs, norms, 1e-8, GRADS
    )
    for i in range(2):
        single = jax.jit(_run)(lrs[i], norms[i], 1e-8, GRADS)
        np.testing.assert_allclose(vmapped[i], single, rtol=1e-6, atol=1e-7)
    assert not np.allclose(vmapped[0], vmapped[1])


def test_no_retrace_when_hyperparameters_change():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(lr, max_norm, eps, decay, end):
        return _run(lr, max_norm, eps, GRADS, decay, end)

    a = run(0.1, 1.0, 1e-8, 0.0, 1.0)
    b = run(0.01, 5.0, 1e-3, 3.0, 0.0)
    assert not np.allclose(a, b)


def test_opt_state_independent_of_hyperparameters():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    s1 = optim.make_optimizer(0.1, max_grad_norm=1.0).init(params)
    s2 = optim.make_optimizer(0.5, max_grad_norm=jnp.inf, eps=1e-3, decay_steps=7).init(
        params
    )
    assert jax.tree.structure(s1) == jax.tree.structure(s2)
    chex.assert_trees_all_equal(s1, s2)


def test_inf_norm_disables_clipping():
    big = GRADS * 1000
    np.testing.assert_allclose(
        _run(0.1, jnp.inf, 1e-8, big),
        _np_adam_run(list(big), 0.1, np.inf, 1e-8),
        rtol=1e-4,
    )


def test_linear_decay_values():
    sched = optim.linear_decay(2.0, 0.5, 4)
    np.testing.assert_allclose(
        [sched(k) for k in range(6)], [2.0, 1.75, 1.5, 1.25, 1.0, 1.0]
    )
    np.testing.assert_allclose(optim.linear_decay(2.0, 0.0, 0)(100), 2.0)  # no decay
    np.testing.assert_allclose(
        optim.learning_rate_at(2, 1.0, decay_steps=4, end_fraction=0.0), 0.5
    )


def test_clip_by_global_norm_is_optax_clipping_bitwise():
    import optax

    grads = {"w": jnp.array([3.0, 4.0, 1e-3]), "b": jnp.array([[0.5, -7.0]])}
    for max_norm in (1.0, 100.0):
        want, _ = optax.clip_by_global_norm(jnp.float32(max_norm)).update(grads, None)
        got = optim.clip_by_global_norm(grads, optax.tree.norm(grads), max_norm)
        chex.assert_trees_all_equal(got, want)
    # without its clipping stage the optimiser state keeps its structure
    params = {"w": jnp.zeros(3)}
    chex.assert_trees_all_equal_structs(
        optim.make_optimizer(0.1).init(params),
        optim.make_optimizer(0.1, clip=False).init(params),
    )


# ------------------------------------------------------------------- flatten_small


def _tree_of(flat: np.ndarray) -> dict:
    """A three-array tree (9 + 4 + 3 = 16 scalars) of a ``[..., 16]`` vector."""
    return {
        "w": flat[..., :9].reshape(*flat.shape[:-1], 3, 3),
        "b": flat[..., 9:13].reshape(*flat.shape[:-1], 4),
        "c": flat[..., 13:],
    }


def _tree_run(opt, grads):
    params = jax.tree.map(jnp.zeros_like, _tree_of(grads[0]))
    state = opt.init(params)

    def body(carry, g):
        w, state = carry
        u, state = opt.update(_tree_of(g), state, w)
        return (jax.tree.map(jnp.add, w, u), state), None

    (params, state), _ = jax.lax.scan(body, (params, state), grads)
    return params, state


TREE_GRADS = np.random.default_rng(1).normal(size=(7, 16)).astype(np.float32) * 2


def test_small_tree_is_adam_on_the_whole_vector():
    # the numpy reference steps the 16 parameters as one vector: one global
    # norm, one Adam; the optimiser sees them as three arrays
    opt = optim.make_optimizer(0.05, max_grad_norm=3.0, eps=1e-3, decay_steps=5)
    for fn in (_tree_run, jax.jit(_tree_run, static_argnums=0)):
        params, state = fn(opt, TREE_GRADS)
        want = _np_adam_run(list(TREE_GRADS), 0.05, 3.0, 1e-3, decay_steps=5)
        chex.assert_trees_all_close(params, _tree_of(want), rtol=1e-4, atol=1e-6)
        # Adam's moments are one vector of all 16 parameters
        (adam, _) = state[1]
        assert adam.mu.shape == adam.nu.shape == (16,)


def test_flatten_small_keeps_large_trees_and_the_numbers():
    inner = optax.chain(optax.scale_by_adam(eps=1e-3), optax.scale(-0.05))
    for max_params in (16, 15):  # flattened at 16 scalars, kept as a tree at 15
        opt = optim.flatten_small(inner, max_params=max_params)
        params, state = jax.jit(_tree_run, static_argnums=0)(opt, TREE_GRADS)
        want, want_state = jax.jit(_tree_run, static_argnums=0)(inner, TREE_GRADS)
        chex.assert_trees_all_close(params, want, rtol=1e-6, atol=1e-7)
        mu = state[0].mu
        if max_params == 16:
            assert mu.shape == (16,)
            np.testing.assert_allclose(
                mu,
                np.concatenate(
                    [np.ravel(x) for x in jax.tree.leaves(want_state[0].mu)]
                ),
                rtol=1e-6,
            )
        else:
            chex.assert_trees_all_close(mu, want_state[0].mu, rtol=1e-6)


def test_num_params_counts_scalars():
    assert optim.num_params({"a": jnp.ones((2, 3)), "b": [jnp.ones(4), 1.0]}) == 11
    assert optim.num_params({}) == 0

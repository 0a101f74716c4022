"""Tests for jaxrl.optim: traced hyperparameters, schedule, clipping, Adam reference."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

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

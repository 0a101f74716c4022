"""Tests for jaxrl.envs.offline.controllers: the scripted controllers against the physics, noisy mixing.

The Pendulum reference is the gymnax ``Pendulum-v1`` step written in NumPy
(``θ̈ = 15 sin θ + 3 u``, ``dt = 0.05``, ``|θ̇| <= 8``), under which the energy
``E = θ̇²/2 + 15 cos θ`` changes at the rate ``dE/dt = 3 u θ̇``.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxrl import envs
from jaxrl.envs import offline


def _pendulum_step(theta: float, vel: float, u: float) -> tuple[float, float]:
    """One gymnax Pendulum-v1 step in float64 (g=10, m=l=1, dt=0.05, |u|<=2)."""
    u = float(np.clip(u, -2.0, 2.0))
    vel = float(np.clip(vel + (3 * 10.0 / 2 * np.sin(theta) + 3.0 * u) * 0.05, -8, 8))
    return theta + vel * 0.05, vel


def _obs(theta, vel):
    return np.stack([np.cos(theta), np.sin(theta), vel], axis=-1).astype(np.float32)


class TestPendulum:
    def test_pumps_energy_towards_the_top_and_balances_near_it(self):
        rng = np.random.default_rng(0)
        theta = rng.uniform(-np.pi, np.pi, 2000)
        vel = rng.uniform(-8.0, 8.0, 2000)
        obs = _obs(theta, vel)
        ctrl = offline.CONTROLLERS["pendulum-swingup-pd"]
        u = np.asarray(ctrl(jax.random.key(0), obs))[:, 0]
        assert u.shape == (2000,) and np.all(np.abs(u) <= 2.0)
        cos = obs[:, 0].astype(np.float64)
        th = np.arctan2(obs[:, 1], obs[:, 0]).astype(np.float64)
        v = obs[:, 2].astype(np.float64)
        energy = 0.5 * v**2 + 15.0 * cos
        near = cos > 0.85
        # Near the top: the PD law -(10 theta + 2 theta_dot), clipped.
        np.testing.assert_allclose(
            u[near], np.clip(-(10.0 * th[near] + 2.0 * v[near]), -2, 2), atol=1e-5
        )
        # Away from it: full torque moving E towards 15 (dE/dt = 3 u theta_dot).
        away = ~near & (np.abs(v) > 1e-3) & (np.abs(15.0 - energy) > 1e-3)
        assert away.sum() > 500
        np.testing.assert_array_equal(np.abs(u[away]), 2.0)
        assert np.all(3.0 * u[away] * v[away] * (15.0 - energy[away]) > 0)

    def test_swings_up_from_hanging_and_stays_upright(self):
        ctrl = jax.jit(offline.pendulum_swingup_pd)
        theta, vel = np.pi, 0.0
        cos = []
        for _ in range(300):
            u = float(
                ctrl(jax.random.key(0), _obs(np.array([theta]), np.array([vel])))[0, 0]
            )
            theta, vel = _pendulum_step(theta, vel, u)
            cos.append(np.cos(theta))
        assert min(cos) < -0.99  # it started hanging down
        assert np.all(np.asarray(cos[-50:]) > 0.999)  # the last 2.5 s upright


class TestMountainCarAndMixing:
    def test_controllers_are_labelled_and_noisy_mixes(self):
        env, params = envs.make("MountainCarContinuous-v0")
        obs = np.array([[-0.5, 0.01], [-0.5, -0.02]], np.float32)
        ctrl = offline.CONTROLLERS["mountaincar-push-with-velocity"]
        np.testing.assert_array_equal(ctrl(jax.random.key(0), obs), [[1.0], [-1.0]])
        uniform = offline.uniform_policy(env, params)
        many = np.repeat(obs[:1], 4000, 0)
        always = offline.noisy_policy(ctrl, uniform, 1.0)(jax.random.key(1), many)
        never = offline.noisy_policy(ctrl, uniform, 0.0)(jax.random.key(2), many)
        half = offline.noisy_policy(ctrl, uniform, 0.5)(jax.random.key(3), many)
        np.testing.assert_array_equal(never, 1.0)
        assert np.mean(np.asarray(always) == 1.0) < 0.01
        assert abs(np.mean(np.asarray(half) == 1.0) - 0.5) < 0.05

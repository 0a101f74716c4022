r"""Stock-augmented distributional DQN (DηN): deep risk-sensitive control.

The deep counterpart of :mod:`jaxrl.agents.distributional_dp` (Pires et al., JMLR 2025,
arXiv 2501.13028, the DηN agent). The environment is wrapped in
:class:`jaxrl.envs.stock.StockWrapper`, which appends the stock

.. math:: c_{t+1} = (c_t + r_t)/\gamma, \qquad c_0 + G_0 = \gamma^t (c_t + G_t),

to the (flattened) observation; the network maps the augmented observation
:math:`(o, c)` to one return law :math:`\eta(o, c, a)` per action, with a
categorical head (C51: logits on ``categorical_support(v_min, v_max,
num_atoms)``) or a quantile head (QR-DQN: ``num_atoms`` quantiles at the
midpoint fractions). Acting and bootstrapping use the **stock-shifted greedy
rule** for the objective's utility ``f``:

.. math:: a^*(o, c) \in \arg\max_b \mathbb{E}_{X \sim \eta(o, c, b)} f(c + X),

ties (e.g. ``f = indicator`` when every action surely reaches, or surely misses,
the threshold) broken by the largest mean return. The loss is the
categorical cross-entropy to the projected target
:math:`\Pi(r + \gamma(1 - \text{terminated}) Z(o', c', a^*))`, or the quantile
Huber loss to :math:`r + \gamma(1 - \text{terminated})\theta(o', c', a^*)`, with
:math:`c'` the stock stored in the pre-reset ``next_obs`` and :math:`a^*` chosen
on the target network (online network with ``double_q``). Stocks are stored in
the replay buffer with the observations; at every episode start the training
environments draw :math:`c_0 \sim U[\text{stock0\_low}, \text{stock0\_high}]`,
so one network covers a range of initial stocks.

Objectives (static ``Config.objective``, the same as
:mod:`jaxrl.agents.distributional_dp`; numeric parameters traced):

* ``"mean"``: :math:`\mathbb{E} G`, ``f(x) = x`` (the stock is ignored);
* ``"cvar"``: :math:`\mathrm{CVaR}_\alpha(G) = \max_{c_0} [-c_0 +
  \frac1\alpha \max_\pi \mathbb{E}\min(c_0 + G^\pi, 0)]`: the inner problem is
  learned for every :math:`c_0` of the training range (``f = min_zero``); at
  evaluation the outer maximum is taken over ``num_stock0`` evenly spaced
  :math:`c_0` in ``[stock0_low, stock0_high]`` with the learned laws, averaged
  over fresh initial states;
* ``"threshold"``: :math:`P(G \ge \text{threshold})` (``f = indicator``,
  :math:`c_0 = -\text{threshold}`);
* ``"homeostatic"``: :math:`\mathbb{E} f(G - \text{set\_point})`, ``f`` one
  of ``neg_abs``/``neg_square`` (:math:`c_0 = -\text{set\_point}`);
* ``"utility"``: :math:`\mathbb{E} f(c_0 + G)` for any utility name, with
  :math:`c_0 =` ``stock0``.

``G`` is the **discounted** return :math:`\sum_t \gamma^t r_t` with the agent's
``gamma``; on one of our :class:`jaxrl.envs.finite_mdp.FiniteMDPEnv` environments it
must equal the MDP's discount (checked), so the learned laws are comparable with
:mod:`jaxrl.agents.distributional_dp`.

Everything else (replay, ε-greedy schedule, target network, chunks) is the
shared loop of :mod:`jaxrl.agents.dqn`. The evaluation at the end of each chunk runs
``num_eval_episodes`` greedy episodes from the objective's :math:`c_0` and
reports (``NaN`` on a chunk's other iterations):

* ``"eval/return"``, ``"eval/length"``: mean undiscounted return and length;
* ``"eval/discounted_return"``: mean :math:`G`;
* ``"eval/objective"``: the empirical objective of the episodes
  (:func:`empirical_objective`: CVaR of the sample for ``"cvar"``, the
  fraction with :math:`G \ge` threshold for ``"threshold"``, the mean of
  :math:`f(c_0 + G)` otherwise);
* ``"eval/predicted"``: the network's own value of the objective at the
  initial states (for ``"cvar"`` the Rockafellar-Uryasev value at the chosen
  :math:`c_0`);
* ``"eval/stock0"``: the :math:`c_0` used.

Usage::

    env, env_params = jaxrl.envs.make("CartPole-v1")
    config = dist_dqn.Config(objective="cvar", alpha=0.1, ...)
    train = jax.jit(jax.vmap(dist_dqn.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Pires, Rowland, Borsa, Guo, Khetarpal, Barreto, Abel, Munos, Dabney,
  "Optimizing return distributions with distributional dynamic programming",
  JMLR 2025 (arXiv 2501.13028). Bellemare, Dabney, Munos, ICML 2017 (C51).
  Dabney, Rowland, Bellemare, Munos, AAAI 2018 (QR-DQN).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import envs, rollout
from jaxrl import transition as transition_lib
from jaxrl.agents import _value_loop, distributional_dp, dqn
from jaxrl.agents._value_loop import State, epsilon_at
from jaxrl.config import (
    check_order,
    check_positive,
    check_range,
    is_concrete,
    static,
)
from jaxrl.envs.stock import StockParams, StockWrapper, split_stock, with_stock
from jaxrl.envs.wrappers import LogWrapper
from jaxrl.errors import ConfigError
from jaxrl.ops import distributional as dist
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "OBJECTIVES",
    "HEADS",
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "epsilon_at",
    "stock_env",
    "return_laws",
    "greedy_action",
    "choose_stock0",
    "run_episodes",
    "empirical_objective",
    "evaluate",
]

OBJECTIVES = distributional_dp.OBJECTIVES
"""Values of :attr:`Config.objective` (those of :mod:`jaxrl.agents.distributional_dp`)."""

HEADS = ("categorical", "quantile")
"""Values of :attr:`Config.head`."""

_TIE_TOL = 1e-6


@struct.dataclass
class Config(dqn.Config):
    """DηN hyperparameters: every :class:`jaxrl.agents.dqn.Config` field plus these.

    ``huber_delta`` and the network's conv torso are not used (the stock
    wrapper flattens observations; ``conv_features`` must be empty). The
    inherited defaults are DQN's CartPole settings.

    Attributes:
      head: static, ``"categorical"`` or ``"quantile"``.
      num_atoms: static ``N >= 2``: atoms (categorical) or quantiles.
      objective: static, one of :data:`OBJECTIVES`.
      utility: static utility of ``"homeostatic"`` (``neg_abs``/``neg_square``)
        and ``"utility"`` (any :data:`jaxrl.ops.distributional.UTILITY_NAMES`).
      num_stock0: static ``>= 2``, candidate :math:`c_0` of the ``"cvar"``
        outer search.
      v_min: smallest categorical atom.
      v_max: largest categorical atom.
      kappa: κ, Huber threshold of the quantile loss (QR-DQN: 1).
      alpha: α, CVaR level in ``(0, 1]``.
      threshold: return threshold of ``"threshold"``.
      set_point: target return of ``"homeostatic"``.
      stock0: :math:`c_0` of ``"utility"``.
      stock0_low: lower end of the training initial-stock range.
      stock0_high: upper end of it (``"cvar"``: also the search range).
      stock_scale: the network sees the stock as ``tanh(c / stock_scale)``.
    """

    head: str = static(default="quantile")
    num_atoms: int = static(default=51)
    objective: str = static(default="mean")
    utility: str = static(default="neg_abs")
    num_stock0: int = static(default=41)
    v_min: float = -10.0
    v_max: float = 10.0
    kappa: float = 1.0  # κ
    alpha: float = 0.1  # α
    threshold: float = 0.0
    set_point: float = 0.0
    stock0: float = 0.0  # c_0 of "utility"
    stock0_low: float = 0.0
    stock0_high: float = 0.0
    stock_scale: float = 10.0

    @property
    def inner_utility(self) -> str:
        """The utility ``f`` of the (inner) expected-utility problem (static)."""
        return distributional_dp.inner_utility(self.objective, self.utility)

    @property
    def initial_stock(self) -> Array:
        """``[]`` the objective's :math:`c_0` (``"cvar"``: searched, 0 here)."""
        return distributional_dp.initial_stock(self, jnp.float32)

    def validate(self) -> None:
        """Raise :class:`~jaxrl.errors.ConfigError` naming the first invalid field."""
        super().validate()
        if self.head not in HEADS:
            raise ConfigError(
                f"head must be one of {', '.join(HEADS)}, got {self.head!r}"
            )
        distributional_dp.check_objective(self.objective, self.utility)
        for name in ("num_atoms", "num_stock0"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 2:
                raise ConfigError(f"{name} must be an integer >= 2, got {value!r}")
        if self.conv_features:
            raise ConfigError(
                "conv_features must be empty for dist_dqn: the stock wrapper "
                "flattens observations (use an MLP torso)"
            )
        check_range("gamma", self.gamma, 0.0, 1.0, low_inclusive=False)
        check_range("alpha", self.alpha, 0.0, 1.0, low_inclusive=False)
        check_range("kappa", self.kappa, 0.0)
        check_positive("stock_scale", self.stock_scale)
        for name in ("threshold", "set_point", "stock0"):
            check_range(name, getattr(self, name))  # finite, not NaN
        check_order("v_min", self.v_min, "v_max", self.v_max)
        check_order(
            "stock0_low", self.stock0_low, "stock0_high", self.stock0_high, strict=False
        )
        if self.objective in ("threshold", "homeostatic", "utility"):
            c0, low, high = self.initial_stock, self.stock0_low, self.stock0_high
            if all(is_concrete(x) for x in (c0, low, high)) and not (
                float(low) <= float(c0) <= float(high)
            ):
                raise ConfigError(
                    f"the {self.objective} objective starts from c0 = {float(c0):g}, "
                    f"outside the training stock range [stock0_low, stock0_high] = "
                    f"[{float(low):g}, {float(high):g}]"
                )


# ------------------------------------------------------------------------- environment


def stock_env(env: Any, env_params: Any, config: Config) -> tuple[Any, StockParams]:
    """Return the stock-augmented ``(env, params)`` the agent trains on.

    ``StockWrapper(env)`` with ``StockParams(env_params, gamma=config.gamma,
    stock0_low=config.stock0_low, stock0_high=config.stock0_high)``.

    Raises:
      ConfigError: if ``env`` is already stock-augmented, has no ``Discrete``
        action space, or is one of our finite-MDP environments whose discount
        differs from ``config.gamma`` (both concrete).
    """
    inner = env.env if isinstance(env, LogWrapper) else env
    if isinstance(inner, StockWrapper):
        raise ConfigError(
            "dist_dqn adds the stock itself: pass the environment without StockWrapper"
        )
    envs.num_actions(inner, env_params, user="dist_dqn")
    mdp = getattr(env_params, "mdp", None)
    if mdp is not None and is_concrete(mdp.gamma) and is_concrete(config.gamma):
        if not np.isclose(float(mdp.gamma), float(config.gamma), rtol=1e-6):
            raise ConfigError(
                f"config.gamma ({float(config.gamma):g}) differs from the MDP's "
                f"discount ({float(mdp.gamma):g}); the stock and the return "
                "laws need the same gamma"
            )
    params = StockParams(
        env_params,
        gamma=jnp.asarray(config.gamma, jnp.float32),
        stock0_low=jnp.asarray(config.stock0_low, jnp.float32),
        stock0_high=jnp.asarray(config.stock0_high, jnp.float32),
    )
    return StockWrapper(inner), params


# ------------------------------------------------------------------------- return laws


def _network_input(obs: Array, config: Config) -> Array:
    x, c = split_stock(obs)
    feature = jnp.tanh(c / jnp.asarray(config.stock_scale, c.dtype))
    return jnp.concatenate([x, feature[..., None]], axis=-1)


def _outputs(params: Params, obs: ArrayLike, config: Config) -> Array:
    """``[..., A, N]`` raw head outputs (logits or quantiles)."""
    obs = jnp.asarray(obs, jnp.float32)
    out = _value_loop.q_values(params, _network_input(obs, config), config, 1)
    return jnp.reshape(out, (*out.shape[:-1], -1, config.num_atoms))


def _laws(out: Array, config: Config) -> tuple[Array, Array]:
    if config.head == "categorical":
        support = dist.categorical_support(config.v_min, config.v_max, config.num_atoms)
        support = support.astype(out.dtype)
        return jnp.broadcast_to(support, out.shape), jax.nn.softmax(out, axis=-1)
    return out, jnp.full(out.shape, 1.0 / config.num_atoms, out.dtype)


def return_laws(params: Params, obs: ArrayLike, config: Config) -> tuple[Array, Array]:
    """Return the per-action return laws ``(atoms, probs)`` of augmented observations.

    Args:
      params: network parameters.
      obs: ``[..., D + 1]`` stock-augmented observations.
      config: the config.

    Returns:
      ``(atoms[..., A, N], probs[..., A, N])``: categorical head: the support
      broadcast to every action and the softmax probabilities; quantile head:
      the quantiles and equal weights ``1/N``.
    """
    return _laws(_outputs(params, obs, config), config)


def _values(atoms: Array, probs: Array, stock: Array, config: Config) -> Array:
    """``[A]`` stock-shifted expected utilities of one state's laws."""
    return dist.stock_shifted_values(atoms, probs, stock, config.inner_utility)


def greedy_action(
    atoms: ArrayLike, probs: ArrayLike, stock: ArrayLike, config: Config
) -> Array:
    r"""Return the stock-shifted greedy action, ties by the largest mean, ``[]``.

    Args:
      atoms: ``[A, N]`` per-action atoms.
      probs: ``[A, N]`` per-action probabilities.
      stock: ``[]`` the stock ``c``.
      config: the config (objective's utility).

    Returns:
      ``[]`` int32 action.
    """
    atoms, probs = jnp.asarray(atoms), jnp.asarray(probs)
    values = _values(atoms, probs, jnp.asarray(stock, atoms.dtype), config)
    means = jnp.sum(atoms * probs, axis=-1)
    tol = _TIE_TOL * (1.0 + jnp.max(jnp.abs(values)))
    best = values >= jnp.max(values) - tol
    return jnp.argmax(jnp.where(best, means, -jnp.inf)).astype(jnp.int32)


# ----------------------------------------------------------------------------- contract


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise networks, optimiser, replay buffer and ``num_envs`` environments.

    Args:
      key: a typed PRNG key.
      env: a gymnax environment with discrete actions and a ``Box`` observation
        (stock-augmented here, see :func:`stock_env`).
      env_params: its parameters.
      config: the config.

    Returns:
      The initial :class:`State`; ``obs`` and the replay items are augmented.
    """
    config.validate()
    senv, sparams = stock_env(env, env_params, config)
    return _value_loop.init(
        key, senv, sparams, config, outputs_per_action=config.num_atoms
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    """Choose an action for ONE stock-augmented observation ``[D + 1]``.

    The stock-shifted greedy action (:func:`greedy_action`), or with
    probability ε a uniform action.

    Args:
      params: network parameters.
      obs: ``[D + 1]`` observation with the stock last.
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static switch: no exploration.
      epsilon: ``[]`` exploration rate; ``None`` uses ``config.eps_end``.

    Returns:
      ``[]`` int32 action.
    """
    atoms, probs = return_laws(params, obs, config)
    best = greedy_action(atoms, probs, split_stock(obs)[1], config)
    if greedy:
        del key
        return best
    eps = config.eps_end if epsilon is None else epsilon
    return _value_loop.explore(best, key, eps, atoms.shape[-2])


def loss(
    params: Params, target_params: Params, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    """Return the mean distributional TD loss of a batch of augmented transitions.

    The next action is :func:`greedy_action` at ``next_obs`` (its stock
    :math:`c' = (c + r)/\\gamma`) on the target network (the online one with
    ``double_q``); the target law is ``r + gamma (1 - terminated) Z'``.
    Categorical: :func:`jaxrl.ops.distributional.categorical_td_loss`;
    quantile: :func:`jaxrl.ops.distributional.quantile_td_loss` with ``kappa``.

    Args:
      params: online parameters (differentiated).
      target_params: target parameters.
      batch: ``Transition[B]`` with ``[B, D + 1]`` observations.
      config: the config.

    Returns:
      ``(loss, metrics)`` with ``"loss/td"``, ``"q/mean"`` (mean return of the
      taken actions) and ``"dist/std"`` (their mean standard deviation).
    """
    action = batch.action.astype(jnp.int32)
    discount_t = transition_lib.discount(batch, config.gamma)
    out_tm1 = _outputs(params, batch.obs, config)  # [B, A, N]
    atoms_tm1, probs_tm1 = _laws(out_tm1, config)
    atoms_t, probs_t = return_laws(target_params, batch.next_obs, config)
    if config.double_q:
        sel_atoms, sel_probs = return_laws(params, batch.next_obs, config)
    else:
        sel_atoms, sel_probs = atoms_t, probs_t
    stock_t = split_stock(batch.next_obs)[1]
    choose = functools.partial(greedy_action, config=config)
    a_t = jax.vmap(choose)(sel_atoms, sel_probs, stock_t)
    a_t = jax.lax.stop_gradient(a_t)
    pick = lambda x, a: jnp.take_along_axis(x, a[:, None, None], axis=1)[:, 0]
    if config.head == "categorical":
        support = atoms_tm1[0, 0]
        losses = jax.vmap(dist.categorical_td_loss, in_axes=(0, 0, 0, 0, 0, None))(
            out_tm1, action, batch.reward, discount_t, pick(probs_t, a_t), support
        )
    else:
        losses = jax.vmap(dist.quantile_td_loss, in_axes=(0, 0, 0, 0, 0, None))(
            atoms_tm1,
            action,
            batch.reward,
            discount_t,
            pick(atoms_t, a_t),
            jnp.asarray(config.kappa, atoms_tm1.dtype),
        )
    value = jnp.mean(losses)
    taken_atoms, taken_probs = pick(atoms_tm1, action), pick(probs_tm1, action)
    mean = jnp.sum(taken_atoms * taken_probs, axis=-1)
    var = jnp.sum(taken_probs * (taken_atoms - mean[:, None]) ** 2, axis=-1)
    return value, {
        "loss/td": value,
        "q/mean": jnp.mean(mean),
        "dist/std": jnp.mean(jnp.sqrt(jnp.maximum(var, 0.0))),
    }


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step on ``data``, then maybe move the target network.

    See :func:`jaxrl.agents.dqn.update`; ``data`` holds augmented observations.
    """
    return _value_loop.update(state, data, config, loss_fn=loss)


# -------------------------------------------------------------------------- evaluation


def choose_stock0(
    params: Params, obs0: ArrayLike, config: Config
) -> tuple[Array, Array]:
    r"""Return the evaluation :math:`c_0` and the network's objective value there.

    For ``"cvar"``: the maximiser over ``num_stock0`` evenly spaced
    :math:`c_0 \in [\text{stock0\_low}, \text{stock0\_high}]` of the
    Rockafellar-Uryasev value

    .. math:: -c_0 + \frac{1}{\alpha}\,\frac1M\sum_{i=1}^M \max_b
              \mathbb{E}\min(c_0 + Z(o_i, c_0, b), 0)

    over the ``M`` initial observations (a CVaR of the return over random
    initial states; the policy may depend on the initial state). Otherwise
    :attr:`Config.initial_stock` and the mean over the initial observations of
    :math:`\max_b \mathbb{E} f(c_0 + Z(o_i, c_0, b))`.

    Args:
      params: network parameters.
      obs0: ``[M, D + 1]`` initial augmented observations (their stocks are
        replaced).
      config: the config.

    Returns:
      ``([] c_0, [] predicted objective)``.
    """
    obs0 = jnp.asarray(obs0, jnp.float32)

    def predicted(c0: Array) -> Array:
        atoms, probs = return_laws(params, with_stock(obs0, c0), config)
        values = jax.vmap(lambda a, p: _values(a, p, c0, config))(atoms, probs)
        return jnp.mean(jnp.max(values, axis=-1))

    if config.objective != "cvar":
        c0 = config.initial_stock
        return c0, predicted(c0)
    frac = jnp.asarray(np.linspace(0.0, 1.0, config.num_stock0), jnp.float32)
    low = jnp.asarray(config.stock0_low, jnp.float32)
    high = jnp.asarray(config.stock0_high, jnp.float32)
    grid = low + (high - low) * frac
    bound = -grid + jax.vmap(predicted)(grid) / jnp.asarray(config.alpha, jnp.float32)
    best = jnp.argmax(bound)
    return grid[best], bound[best]


def run_episodes(
    params: Params,
    key: PRNGKey,
    config: Config,
    env: Any,
    env_params: Any,
    stock0: ArrayLike,
    num_episodes: int,
    max_steps: int,
) -> dict[str, Array]:
    """Run ``num_episodes`` greedy episodes of the stock-augmented env from ``stock0``.

    Args:
      params: network parameters.
      key: typed PRNG key.
      config: the config.
      env: the plain environment (augmented here, :func:`stock_env`).
      env_params: its parameters.
      stock0: ``[]`` the initial stock of every episode.
      num_episodes: static ``M``.
      max_steps: static step limit (unfinished episodes: ``completed`` False).

    Returns:
      ``{"return", "discounted_return", "length", "completed"}``, each ``[M]``.
    """
    senv, sparams = stock_env(env, env_params, config)
    return _run_episodes(
        params, key, config, senv, sparams, stock0, num_episodes, max_steps
    )


def _run_episodes(
    params: Params,
    key: PRNGKey,
    config: Config,
    senv: Any,
    sparams: StockParams,
    stock0: ArrayLike,
    num_episodes: int,
    max_steps: int,
) -> dict[str, Array]:
    stock0 = jnp.asarray(stock0, jnp.float32)
    sparams = sparams.replace(stock0_low=stock0, stock0_high=stock0)

    def policy(k: PRNGKey, obs: Array) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key, senv, sparams, policy, num_episodes, max_steps, gamma=config.gamma
    )
    return {
        "return": out["return"],
        "discounted_return": out["discounted_return"],
        "length": out["length"],
        "completed": out["completed"],
    }


def empirical_objective(
    discounted_return: ArrayLike, stock0: ArrayLike, config: Config
) -> Array:
    r"""Return the objective of a sample of discounted returns ``G[M]``, ``[]``.

    ``"cvar"``: the CVaR at level ``alpha`` of the sample (equal weights);
    otherwise the mean of :math:`f(c_0 + G)` (``"mean"``: the mean return;
    ``"threshold"``: the fraction with :math:`G \ge` threshold).
    """
    g = jnp.asarray(discounted_return, jnp.float32)
    if config.objective == "cvar":
        return dist.cvar(g, None, config.alpha)
    f = dist.get_utility(config.inner_utility)
    return jnp.mean(f(jnp.asarray(stock0, jnp.float32) + g))


def _evaluate_objective(
    params: Params,
    key: PRNGKey,
    config: Config,
    senv: Any,
    sparams: StockParams,
    num_episodes: int,
    max_steps: int,
) -> dict[str, Array]:
    """Choose c0 on fresh initial observations, then run greedy episodes from it."""
    k_obs, k_run = jax.random.split(key)
    obs0, _ = rollout.reset(k_obs, senv, sparams, num_episodes)
    c0, predicted = choose_stock0(params, obs0, config)
    out = _run_episodes(
        params, k_run, config, senv, sparams, c0, num_episodes, max_steps
    )
    return {
        **out,
        "stock0": c0,
        "predicted": predicted,
        "objective": empirical_objective(out["discounted_return"], c0, config),
    }


def _evaluate(
    params: Params, key: PRNGKey, config: Config, senv: Any, sparams: StockParams
) -> Metrics:
    out = _evaluate_objective(
        params,
        key,
        config,
        senv,
        sparams,
        config.num_eval_episodes,
        config.eval_max_steps,
    )
    return {
        "eval/return": jnp.mean(out["return"]),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
        "eval/discounted_return": jnp.mean(out["discounted_return"]),
        "eval/objective": out["objective"],
        "eval/predicted": out["predicted"],
        "eval/stock0": out["stock0"],
    }


def evaluate(
    params: Params,
    key: PRNGKey,
    config: Config,
    env: Any,
    env_params: Any,
    num_episodes: int,
    max_steps: int,
) -> dict[str, Array]:
    """Evaluate the greedy stock-augmented policy on its objective.

    Chooses :math:`c_0` with :func:`choose_stock0` on ``num_episodes`` fresh
    initial observations, then runs ``num_episodes`` greedy episodes from it
    (:func:`run_episodes`).

    Returns:
      :func:`run_episodes`' per-episode arrays plus ``"stock0"``,
      ``"predicted"`` and ``"objective"`` (:func:`empirical_objective`), ``[]``.
    """
    senv, sparams = stock_env(env, env_params, config)
    return _evaluate_objective(
        params, key, config, senv, sparams, num_episodes, max_steps
    )


# ------------------------------------------------------------------------ training loop


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then the objective
    evaluation described in the module docstring.
    """
    senv, sparams = stock_env(env, env_params, config)
    return _value_loop.make_run(
        config, senv, sparams, loss_fn=loss, act_fn=act, eval_fn=_evaluate
    )


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    Use ``jax.jit(jax.vmap(train))(keys)`` for several seeds; metrics have a
    leading ``[num_chunks * iters_per_chunk]`` axis.
    """
    senv, sparams = stock_env(env, env_params, config)
    return _value_loop.make_train(
        config,
        senv,
        sparams,
        loss_fn=loss,
        act_fn=act,
        eval_fn=_evaluate,
        outputs_per_action=config.num_atoms,
    )

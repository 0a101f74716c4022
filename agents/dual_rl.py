r"""Deep offline dual RL: XQL, f-DVL, IQL, behaviour cloning and ReCOIL.

Every method learns from a fixed offline dataset (no environment interaction
while learning) with the IQL skeleton shared by XQL and f-DVL: double Q-networks
:math:`Q_{1,2}(s, a)` with Polyak-averaged targets :math:`\bar Q_{1,2}`, a
state-value network :math:`V(s)` and a policy :math:`\pi(a|s)` extracted by
advantage-weighted regression (AWR). One gradient step minimises, on a batch
sampled uniformly from the data,

.. math::

    L_V = \ell\big(\min_k \bar Q_k(s,a) - V(s)\big), \qquad
    L_Q = \textstyle\sum_k \mathrm{huber}_\delta\big(Q_k(s,a) - r
          - \gamma (1 - \text{term})\, \mathrm{sg}\, V(s')\big), \qquad
    L_\pi = -\min\big(e^{\beta_\pi(\min_k \bar Q_k(s,a) - V(s))}, w_{max}\big)
            \log\pi(a|s),

(batch means; the three networks are disjoint and each loss sees the other
networks through ``stop_gradient``, so one joint gradient is the three
separate ones, a simultaneous version of the reference codes' V -> policy -> Q
sequence). The static ``Config.method`` picks the value loss :math:`\ell`
(all from :mod:`jaxrl.ops.dual`):

* ``"xql"``: Gumbel regression with temperature ``beta`` (Garg et al., ICLR
  2023), with the reference code's stabilisers chosen by the static
  ``gumbel_stabilizer``: ``"rescale"`` (default; exponent clipped at
  ``max_clip`` and the batch max-normalisation,
  :func:`~jaxrl.ops.dual.gumbel_rescale_loss`), ``"log"`` (the log-loss with
  its analytic gradient, :func:`~jaxrl.ops.dual.gumbel_log_loss`), ``"clip"``
  (exponent clipping only) or ``"none"`` (the plain loss
  :math:`e^z - z - 1`, which overflows when :math:`(Q - V)/\beta` exceeds ~88).
* ``"fdvl"``: f-DVL (Sikchi et al., ICLR 2024) with the static ``f``:
  ``"chi_square"`` or ``"total_variation"`` (trade-off ``lam``) or
  ``"reverse_kl"`` (which *is* XQL: Gumbel loss with ``beta`` and the
  stabiliser).
* ``"iql"``: the expectile loss with ``expectile`` (Kostrikov et al., ICLR
  2022).
* ``"bc"``: behaviour cloning, :math:`L = -\log\pi(a|s)` only (the critics are
  not trained).
* ``"recoil"``: ReCOIL imitation (Sikchi et al., ICLR 2024) as in the authors'
  code: rewards are not used; each step pairs a batch of the (arbitrary,
  suboptimal) data with a batch of expert data; the critics regress expert
  pairs to :math:`Q_{gap}` and data pairs to the bounded target
  :math:`-r_{gap} + \gamma[(1-\text{term})V(s') - \text{term}\,Q_{gap}]`
  (:func:`~jaxrl.ops.dual.recoil_critic_loss`,
  :func:`~jaxrl.ops.dual.recoil_td_target`); :math:`V` (Gumbel, with the
  stabiliser) and the AWR policy are fitted on the data half only. With
  expert-only data (``data = expert``) and no terminations, every pair has the
  same fixed point :math:`Q = V = (Q_{gap} - r_{gap}) / (2 - \gamma)`, so the
  advantages vanish and the extracted policy is behaviour cloning of the
  expert, stochastic or not (tested); a termination lowers the target of the
  actions that reach it.

The fixed point of the XQL / f-DVL / IQL losses on a tabular dataset is the
exact dual-RL DP of :mod:`agents.dual_tabular` on the data's empirical MDP and
state-action distribution (the tests check the agreement); with
``awr_beta = 0`` the extracted policy is the data's behaviour policy (BC).

**Actions.** Discrete action spaces (``gymnax`` ``Discrete``): critics output
:math:`Q(s, \cdot)` ``[A]``, the policy is categorical (logits ``[A]``).
Continuous (``Box`` with finite bounds): critics take :math:`(s, a)`, the policy
is a Gaussian with a ``tanh`` mean and a state-independent, clipped log-std (as
XQL / IQL); networks see actions rescaled to ``[-1, 1]``, and the bounds are
kept, untrained, in :class:`Networks` so that :func:`act` returns actions in the
environment's units (clipped to the bounds).

**Where the data lives.** The dataset is a field of :class:`State`: one
device-resident :class:`jaxrl.transition.Transition` with leading axis ``[N]``
(``terminated`` and ``truncated`` separate, ``next_obs`` before any reset,
``extras`` free), sampled with :func:`jaxrl.buffer.sample_dataset`. ReCOIL also
keeps the expert set ``State.expert`` (``None`` for the other methods); its
"data" is the arbitrary dataset the imitation mixes with the expert's (in the
paper's setup it already contains a few expert trajectories). Pass ``data =
expert`` for the expert-only case, where ReCOIL's extracted policy is behaviour
cloning of the expert. As in :mod:`agents.dual_tabular`:

* :func:`init_from_data` / :func:`make_train_from_data` (``train(key, data,
  expert=None)``) take the dataset(s); ``jax.vmap(train, in_axes=(0, None,
  None))`` runs several seeds on one dataset without copying it per seed
  during training (the returned states do hold a copy each; drop ``data`` from
  them when not resuming).
* :func:`init` / :func:`make_train` (the agent contract) generate a default
  dataset from the key: ``data_num_envs * data_steps`` transitions of the
  uniformly random policy (:func:`default_data`); ReCOIL then uses it as the
  expert set too.

**Loop.** A chunk (:func:`make_run`) is ``iters_per_chunk`` gradient steps
followed by ``num_eval_episodes`` greedy (mode / mean action) episodes with
:func:`jaxrl.rollout.evaluate`; ``train`` is ``num_chunks`` chunks.

Metrics per gradient step (stacked to ``[num_chunks * iters_per_chunk]``):
``"loss/total"``, ``"loss/critic"``, ``"loss/value"`` (for ``"log"`` the
surrogate whose gradient is used), ``"loss/policy"``, ``"q/mean"`` (target
:math:`\min_k \bar Q_k` on the batch), ``"v/mean"``, ``"adv/mean"``,
``"awr/weight_mean"``, ``"train/grad_norm"``, ``"train/actor_lr"`` and
``"train/diverged"`` (1.0 when the loss is not finite or a batch value
:math:`|V|` or :math:`|\bar Q|` exceeds ``diverge_threshold``, else 0.0: a run
diverged iff any step did); ``"eval/return"``, ``"eval/length"`` and
``"eval/normalized_score"`` (:math:`100 (R - R_{random}) / (R_{expert} -
R_{random})` from the traced reference returns, NaN when they are NaN) on the
last step of each chunk, NaN elsewhere.

Not implemented: XQL's action noise and extra random actions in the value loss,
gradient penalties, dropout, and reward normalisation by trajectory returns
(use the traced ``reward_scale`` / ``reward_shift`` with a scale computed from
the dataset).

Examples:
  >>> import gymnax
  >>> env, env_params = gymnax.make("CartPole-v1")
  >>> config = Config(method="iql", hidden_sizes=(16,), batch_size=32,
  ...                 data_num_envs=2, data_steps=50, num_chunks=2,
  ...                 iters_per_chunk=20, num_eval_episodes=2, eval_max_steps=50)
  >>> train = jax.jit(jax.vmap(make_train(config, env, env_params)))
  >>> state, metrics = train(jax.random.split(jax.random.key(0), 3))
  >>> metrics["loss/value"].shape, metrics["eval/return"].shape
  ((3, 40), (3, 40))

References:
  Garg, Hejna, Geist and Ermon, "Extreme Q-Learning: MaxEnt RL without
  Entropy", ICLR 2023. Sikchi, Zheng, Zhang and Niekum, "Dual RL: Unification
  and New Methods for Reinforcement and Imitation Learning", ICLR 2024.
  Kostrikov, Nair and Levine, "Offline Reinforcement Learning with Implicit
  Q-Learning", ICLR 2022. Peng, Kumar, Zhang and Levine, "Advantage-Weighted
  Regression", 2019.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.stats import norm

from jaxrl import buffer as buffer_lib
from jaxrl import config as config_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.nets import ACTIVATIONS, MLP, QNetwork
from jaxrl.ops import dual
from jaxrl.ops.losses import huber_loss
from jaxrl.ops.policy_gradient import categorical_log_prob
from jaxrl.optim import learning_rate_at, make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "METHODS",
    "DIVERGENCES",
    "STABILIZERS",
    "Config",
    "Networks",
    "Batch",
    "State",
    "StateActionCritic",
    "GaussianPolicy",
    "init",
    "init_from_data",
    "default_data",
    "check_data",
    "act",
    "loss",
    "value_objective",
    "update",
    "sample_batch",
    "evaluate",
    "make_run",
    "make_train",
    "make_train_from_data",
    "critic_values",
    "state_values",
    "policy_log_prob",
]

METHODS = ("xql", "fdvl", "iql", "bc", "recoil")
"""Values of ``Config.method``."""

DIVERGENCES = ("chi_square", "total_variation", "reverse_kl")
"""Values of ``Config.f`` (the f-DVL divergence)."""

STABILIZERS = ("none", "clip", "rescale", "log")
"""Values of ``Config.gumbel_stabilizer``."""

_F_TO_LOSS = {
    "chi_square": "chi_square",
    "total_variation": "total_variation",
    "reverse_kl": "gumbel",
}


@struct.dataclass
class Config:
    """Hyperparameters of the deep offline dual-RL agents.

    Static fields fix shapes, loop lengths and code paths; every other field is
    traced (sweep it with ``vmap``, no recompilation). Defaults follow the XQL
    / IQL MuJoCo settings (1M steps in 200 chunks of 5k, evaluation of 10
    episodes per chunk; the actor's cosine decay is linear here).

    Attributes:
      method: ``"xql"``, ``"fdvl"``, ``"iql"``, ``"bc"`` or ``"recoil"``.
      f: f-DVL divergence: ``"chi_square"``, ``"total_variation"`` or
        ``"reverse_kl"`` (= XQL); used by ``"fdvl"`` only.
      gumbel_stabilizer: Gumbel-loss form, ``"rescale"``, ``"log"``,
        ``"clip"`` or ``"none"`` (see the module docstring).
      double_q: two critics and their minimum (else one).
      hidden_sizes: MLP widths of every network.
      activation: activation name (``jaxrl.nets.ACTIVATIONS``).
      value_layer_norm: LayerNorm in the value network (XQL: on).
      batch_size: B, transitions per gradient step (ReCOIL: B data + B expert).
      num_chunks: chunks per run.
      iters_per_chunk: gradient steps per chunk.
      num_eval_episodes: greedy episodes after each chunk (0: none).
      eval_max_steps: step cap of an evaluation episode.
      data_num_envs: environments of the default random dataset.
      data_steps: steps per environment of the default random dataset.
      gamma: discount.
      lr: initial Adam step size of the critics and the value network.
      lr_end_fraction: their final step size as a fraction of ``lr`` (linear
        decay over the run; 1: constant).
      actor_lr: initial Adam step size of the policy.
      actor_lr_end_fraction: final actor step size as a fraction of
        ``actor_lr`` (linear decay over the run; 1: constant).
      adam_eps: Adam epsilon.
      max_grad_norm: global-norm clip per network (``inf``: none).
      polyak: Polyak rate of the target critics per step.
      beta: Gumbel temperature (XQL, f-DVL reverse KL, ReCOIL).
      lam: f-DVL trade-off (chi-square ``(0, 1]``, total variation
        ``[1/2, 1]``).
      expectile: IQL expectile tau in ``(0, 1)``.
      awr_beta: AWR inverse temperature beta_pi >= 0 (0: behaviour cloning).
      max_weight: AWR weight clip.
      max_clip: clip of the Gumbel exponent (``"rescale"``, ``"log"``,
        ``"clip"``; ``inf``: none).
      huber_delta: Huber threshold of the TD loss (XQL: 20; ``inf``: squared).
      reward_scale: rewards are used as ``reward_scale * r + reward_shift``.
      reward_shift: see ``reward_scale`` (antmaze: -1).
      reward_gap: ReCOIL's pseudo-reward gap r_gap.
      q_gap: ReCOIL's expert target Q_gap.
      log_std_min: lower clip of the Gaussian policy's log-std.
      log_std_max: upper clip of the Gaussian policy's log-std.
      diverge_threshold: ``|V|`` or ``|Q|`` above it counts as diverged.
      random_return: R_random of the normalised score (NaN: no score).
      expert_return: R_expert of the normalised score (NaN: no score).
    """

    # STATIC: code paths, shapes, loop lengths.
    method: str = static(default="xql")
    f: str = static(default="chi_square")
    gumbel_stabilizer: str = static(default="rescale")
    double_q: bool = static(default=True)
    hidden_sizes: tuple[int, ...] = static(default=(256, 256))
    activation: str = static(default="relu")
    value_layer_norm: bool = static(default=True)
    batch_size: int = static(default=256)  # B
    num_chunks: int = static(default=200)
    iters_per_chunk: int = static(default=5_000)
    num_eval_episodes: int = static(default=10)
    eval_max_steps: int = static(default=1_000)
    data_num_envs: int = static(default=10)
    data_steps: int = static(default=1_000)

    # TRACED: numeric hyperparameters.
    gamma: float = 0.99  # γ
    lr: float = 3e-4  # η (critics, value)
    lr_end_fraction: float = 1.0
    actor_lr: float = 3e-4  # η_π
    actor_lr_end_fraction: float = 0.0
    adam_eps: float = 1e-8
    max_grad_norm: float = math.inf
    polyak: float = 0.005  # Polyak rate of the target critics
    beta: float = 2.0  # β, Gumbel temperature
    lam: float = 0.8  # λ, f-DVL trade-off
    expectile: float = 0.7  # τ, IQL
    awr_beta: float = 3.0  # β_π, AWR inverse temperature
    max_weight: float = 100.0  # w_max
    max_clip: float = 7.0  # clip of (Q - V) / β in the Gumbel loss
    huber_delta: float = 20.0  # δ
    reward_scale: float = 1.0
    reward_shift: float = 0.0
    reward_gap: float = 2.0  # r_gap (ReCOIL)
    q_gap: float = 200.0  # Q_gap (ReCOIL)
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    diverge_threshold: float = 1e6
    random_return: float = math.nan  # R_random
    expert_return: float = math.nan  # R_expert

    @property
    def num_iters(self) -> int:
        """Gradient steps in a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def dataset_size(self) -> int:
        """Transitions of the default dataset, ``data_num_envs * data_steps``."""
        return self.data_num_envs * self.data_steps

    @property
    def value_loss_name(self) -> str | None:
        """The ``jaxrl.ops.dual.VALUE_LOSSES`` name of the method (None for BC)."""
        if self.method in ("xql", "recoil"):
            return "gumbel"
        if self.method == "iql":
            return "expectile"
        if self.method == "fdvl":
            return _F_TO_LOSS[self.f]
        return None

    @property
    def value_param(self) -> Any:
        """The value loss's parameter: ``beta``, ``lam`` or ``expectile``."""
        name = self.value_loss_name
        if name == "gumbel":
            return self.beta
        if name == "expectile":
            return self.expectile
        return self.lam

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name, options in (
            ("method", METHODS),
            ("f", DIVERGENCES),
            ("gumbel_stabilizer", STABILIZERS),
        ):
            if getattr(self, name) not in options:
                raise ConfigError(
                    f"{name} must be one of {', '.join(options)}, "
                    f"got {getattr(self, name)!r}"
                )
        for name in (
            "batch_size",
            "num_chunks",
            "iters_per_chunk",
            "eval_max_steps",
            "data_num_envs",
            "data_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        episodes = self.num_eval_episodes
        if (
            isinstance(episodes, bool)
            or not isinstance(episodes, int | np.integer)
            or episodes < 0
        ):
            raise ConfigError(
                f"num_eval_episodes must be an integer >= 0, got {episodes!r}"
            )
        sizes = self.hidden_sizes
        if not isinstance(sizes, tuple) or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0
            for s in sizes
        ):
            raise ConfigError(
                f"hidden_sizes must be a tuple of positive integers, got {sizes!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
                f"got {self.activation!r}"
            )
        check_range("gamma", self.gamma, 0.0, 1.0)
        for name in ("lr", "actor_lr", "adam_eps", "max_grad_norm", "beta"):
            check_positive(name, getattr(self, name))
        for name in ("max_weight", "max_clip", "huber_delta", "diverge_threshold"):
            check_positive(name, getattr(self, name))
        check_range("lr_end_fraction", self.lr_end_fraction, 0.0, 1.0)
        check_range("actor_lr_end_fraction", self.actor_lr_end_fraction, 0.0, 1.0)
        check_range("polyak", self.polyak, 0.0, 1.0, low_inclusive=False)
        if self.method == "fdvl" and self.f == "total_variation":
            check_range("lam", self.lam, 0.5, 1.0)
        else:
            check_range("lam", self.lam, 0.0, 1.0, low_inclusive=False)
        check_range(
            "expectile",
            self.expectile,
            0.0,
            1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        check_range("awr_beta", self.awr_beta, 0.0)
        check_range("reward_gap", self.reward_gap, 0.0)
        check_range("q_gap", self.q_gap, 0.0)
        if config_lib.is_concrete(self.log_std_min) and config_lib.is_concrete(
            self.log_std_max
        ):
            lo, hi = np.asarray(self.log_std_min), np.asarray(self.log_std_max)
            if not np.all(lo < hi):
                raise ConfigError(
                    f"log_std_min ({self.log_std_min}) must be below "
                    f"log_std_max ({self.log_std_max})"
                )


# ------------------------------------------------------------------- networks


class StateActionCritic(nn.Module):
    """Continuous-action critic ``Q(s, a)``: MLP on ``[flatten(s), a]``, scalar head.

    Attributes:
      hidden_sizes: MLP widths.
      activation: activation name.
      obs_ndim: trailing observation axes (flattened).
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        """Return ``[...]`` values of ``[..., *obs_shape]`` and ``[..., d]`` actions."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = jnp.concatenate([x, jnp.asarray(action, jnp.float32)], axis=-1)
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        return nn.Dense(1, name="head")(x)[..., 0]


class GaussianPolicy(nn.Module):
    """Gaussian policy on ``[-1, 1]``-scaled actions: ``tanh`` mean, free log-std.

    Attributes:
      action_dim: d.
      hidden_sizes: MLP widths.
      activation: activation name.
      obs_ndim: trailing observation axes (flattened).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        """Return the mean ``[..., d]`` and the unclipped log-std ``[d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        mean = jnp.tanh(nn.Dense(self.action_dim, name="mean")(x))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, log_std


@struct.dataclass
class Networks:
    """The learned networks (the agent's ``params``).

    Attributes:
      critic: ``K`` critics' parameters stacked on a leading axis (K = 2 with
        ``double_q``).
      value: parameters of ``V(s)``.
      policy: parameters of the policy.
      action_low: ``[d]`` lower action bounds (continuous; ``None`` if discrete).
        Constants, never trained.
      action_high: ``[d]`` upper action bounds (continuous; ``None`` if discrete).
    """

    critic: ArrayTree
    value: ArrayTree
    policy: ArrayTree
    action_low: Array | None = None
    action_high: Array | None = None

    @property
    def discrete(self) -> bool:
        """Whether the action space is discrete (static)."""
        return self.action_low is None


@struct.dataclass
class Batch:
    """One gradient step's data: ``Transition[B]`` (+ expert ``Transition[B]``).

    Attributes:
      data: transitions sampled from the dataset.
      expert: transitions sampled from the expert set (ReCOIL), else ``None``.
    """

    data: Transition
    expert: Transition | None = None


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      params: the :class:`Networks`.
      target_params: target critics (stacked like ``params.critic``).
      opt_state: ``{"critic", "value", "policy"}`` optimiser states.
      data: the dataset, ``Transition[N]``.
      expert: the expert set ``Transition[N_E]`` (ReCOIL), else ``None``.
      key: typed key, split before every use.
      step: ``[]`` int32 gradient steps done.
    """

    params: Networks
    target_params: ArrayTree
    opt_state: dict[str, Any]
    data: Transition
    expert: Transition | None
    key: PRNGKey
    step: Array


def _head_size(params: ArrayTree, name: str) -> int:
    return int(params["params"][name]["kernel"].shape[-1])


def _mlp_kw(config: Config) -> dict[str, Any]:
    return {"hidden_sizes": tuple(config.hidden_sizes), "activation": config.activation}


def critic_values(
    critic: ArrayTree, obs: Array, action: Array, config: Config, discrete: bool
) -> Array:
    """Return ``[K, B]`` values ``Q_k(s_b, a_b)`` of stacked critics.

    Args:
      critic: ``K`` stacked critic parameters.
      obs: ``[B, *obs_shape]`` observations.
      action: ``[B]`` int actions (discrete) or ``[B, d]`` scaled actions.
      config: the config (network fields).
      discrete: the action-space kind (static).

    Returns:
      ``[K, B]`` action values.
    """
    obs_ndim = jnp.ndim(obs) - 1
    if discrete:
        num_actions = _head_size(critic, "head")
        net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **_mlp_kw(config))
        q = jax.vmap(lambda p: net.apply(p, obs))(critic)  # [K, B, A]
        idx = jnp.asarray(action, jnp.int32)[:, None]  # [B, 1]
        return jax.vmap(lambda q_k: jnp.take_along_axis(q_k, idx, -1)[:, 0])(q)
    net = StateActionCritic(obs_ndim=obs_ndim, **_mlp_kw(config))
    return jax.vmap(lambda p: net.apply(p, obs, action))(critic)


def state_values(value: ArrayTree, obs: Array, config: Config) -> Array:
    """Return ``[...]`` state values ``V(s)`` of ``[..., *obs_shape]`` observations.

    Args:
      value: value-network parameters.
      obs: observations (``obs_ndim`` = their rank minus one: batched).
      config: the config.

    Returns:
      ``[B]`` values.
    """
    net = QNetwork(
        num_actions=1,
        obs_ndim=jnp.ndim(obs) - 1,
        layer_norm=config.value_layer_norm,
        **_mlp_kw(config),
    )
    return net.apply(value, obs)[..., 0]


def _policy_out(
    params: Networks, obs: Array, config: Config, obs_ndim: int
) -> Array | tuple[Array, Array]:
    """Logits ``[..., A]``, or ``(mean [..., d], std [d])`` on scaled actions."""
    if params.discrete:
        net = QNetwork(
            num_actions=_head_size(params.policy, "head"),
            obs_ndim=obs_ndim,
            **_mlp_kw(config),
        )
        return net.apply(params.policy, obs)
    net = GaussianPolicy(
        action_dim=_head_size(params.policy, "mean"),
        obs_ndim=obs_ndim,
        **_mlp_kw(config),
    )
    mean, log_std = net.apply(params.policy, obs)
    log_std = jnp.clip(log_std, config.log_std_min, config.log_std_max)
    return mean, jnp.exp(log_std)


def policy_log_prob(
    params: Networks, obs: Array, action: Array, config: Config
) -> Array:
    """Return ``[B]`` log-probabilities ``log pi(a_b | s_b)`` of a batch.

    Continuous actions are in the networks' ``[-1, 1]`` scale (the density of
    the scaled action; it differs from the unscaled one by a constant).

    Args:
      params: the networks.
      obs: ``[B, *obs_shape]`` observations.
      action: ``[B]`` int or ``[B, d]`` scaled actions.
      config: the config.

    Returns:
      ``[B]`` log-probabilities.
    """
    out = _policy_out(params, obs, config, jnp.ndim(obs) - 1)
    if params.discrete:
        return jax.vmap(categorical_log_prob)(out, jnp.asarray(action, jnp.int32))
    mean, std = out
    return jnp.sum(norm.logpdf(action, mean, std), axis=-1)


def _scale_action(params: Networks, action: Array) -> Array:
    """Environment action -> network input (int, or affine map to [-1, 1])."""
    if params.discrete:
        return jnp.asarray(action, jnp.int32)
    low = jax.lax.stop_gradient(params.action_low)
    high = jax.lax.stop_gradient(params.action_high)
    action = jnp.asarray(action, jnp.float32)
    return (2.0 * action - (high + low)) / (high - low)


def _unscale_action(params: Networks, u: Array) -> Array:
    low, high = params.action_low, params.action_high
    return jnp.clip(
        low + 0.5 * (jnp.clip(u, -1.0, 1.0) + 1.0) * (high - low), low, high
    )


# ----------------------------------------------------------------------- data


def _action_space(env: Any, env_params: Any) -> tuple[bool, Any]:
    """Return ``(discrete, space)`` of the env's action space."""
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return True, space
    if hasattr(space, "low") and hasattr(space, "high"):
        return False, space
    raise ConfigError(
        f"dual_rl needs a Discrete or Box action space, got {type(space).__name__}"
    )


def _bounds(space: Any) -> tuple[Array, Array]:
    shape = tuple(space.shape)
    if len(shape) != 1:
        raise ConfigError(f"continuous actions must be vectors [d], got shape {shape}")
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    if config_lib.is_concrete(low) and config_lib.is_concrete(high):
        lo, hi = np.asarray(low), np.asarray(high)
        if not (
            np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)
        ):
            raise ConfigError(
                f"continuous action bounds must be finite with low < high, "
                f"got low={lo.tolist()}, high={hi.tolist()}"
            )
    return low, high


def check_data(data: Any, env: Any, env_params: Any, name: str = "data") -> Transition:
    """Check an offline dataset against the environment; return it with float32 rewards.

    Args:
      data: a :class:`~jaxrl.transition.Transition` with leading axis ``[N]``,
        ``N >= 1``.
      env: the environment (its observation and action spaces).
      env_params: its parameters.
      name: the dataset's name in error messages.

    Returns:
      The dataset (``reward`` cast to float32).

    Raises:
      ConfigError: not a Transition, empty, leaves disagreeing on ``N``,
        observation / action shapes or dtypes not matching the spaces, or
        ``reward`` / ``terminated`` / ``truncated`` not ``[N]`` (the flags bool).
    """
    if not isinstance(data, Transition):
        raise ConfigError(
            f"{name} must be a jaxrl.transition.Transition, got {type(data).__name__}"
        )
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(data)}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ConfigError(
            f"{name}: every leaf needs the same leading axis N >= 1, got {sizes}"
        )
    n = sizes.pop()
    obs_shape = tuple(env.observation_space(env_params).shape)
    for field in ("obs", "next_obs"):
        got = jnp.shape(getattr(data, field))
        if got != (n, *obs_shape):
            raise ConfigError(
                f"{name}.{field} must have shape [N, *obs_shape] = "
                f"{[n, *obs_shape]}, got {list(got)}"
            )
    for field in ("reward", "terminated", "truncated"):
        got = jnp.shape(getattr(data, field))
        if got != (n,):
            raise ConfigError(f"{name}.{field} must have shape [{n}], got {list(got)}")
    for field in ("terminated", "truncated"):
        if jnp.result_type(getattr(data, field)) != jnp.bool_:
            raise ConfigError(f"{name}.{field} must be bool")
    discrete, space = _action_space(env, env_params)
    action = data.action
    if discrete:
        if jnp.shape(action) != (n,) or not jnp.issubdtype(
            jnp.result_type(action), jnp.integer
        ):
            raise ConfigError(
                f"{name}.action must be integer [{n}] for a discrete action space, "
                f"got {jnp.result_type(action)} {list(jnp.shape(action))}"
            )
        if config_lib.is_concrete(action) and config_lib.is_concrete(space.n):
            a = np.asarray(action)
            if a.min() < 0 or a.max() >= int(space.n):
                raise ConfigError(
                    f"{name}.action must lie in [0, {int(space.n)}), "
                    f"got [{a.min()}, {a.max()}]"
                )
    else:
        want = (n, *tuple(space.shape))
        if jnp.shape(action) != want or not jnp.issubdtype(
            jnp.result_type(action), jnp.floating
        ):
            raise ConfigError(
                f"{name}.action must be float {list(want)} for a continuous action "
                f"space, got {jnp.result_type(action)} {list(jnp.shape(action))}"
            )
    return data.replace(reward=jnp.asarray(data.reward, jnp.float32))


def default_data(key: PRNGKey, env: Any, env_params: Any, config: Config) -> Transition:
    """Return the default dataset: the uniformly random policy's transitions.

    ``data_steps`` steps of ``data_num_envs`` environments (auto-reset; each
    transition keeps its pre-reset ``next_obs`` and both episode flags),
    flattened to ``Transition[data_num_envs * data_steps]``.

    Args:
      key: typed key (reset and rollout).
      env: the environment.
      env_params: its parameters.
      config: the config (``data_num_envs``, ``data_steps``).

    Returns:
      ``Transition[N]``.
    """
    _, space = _action_space(env, env_params)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = rollout.reset(k_reset, env, env_params, config.data_num_envs)

    def policy(k: PRNGKey, o: ArrayTree) -> Array:
        del o
        return jax.vmap(space.sample)(jax.random.split(k, config.data_num_envs))

    data, *_ = rollout.collect(
        k_run, env, env_params, env_state, obs, policy, config.data_steps
    )
    return transition_lib.flatten_batch(data)


# --------------------------------------------------------------------- agent


def _optimizers(config: Config) -> dict[str, Any]:
    common = {
        "max_grad_norm": config.max_grad_norm,
        "eps": config.adam_eps,
        "decay_steps": config.num_iters,
    }
    critic = functools.partial(
        make_optimizer, config.lr, end_fraction=config.lr_end_fraction, **common
    )
    return {
        "critic": critic(),
        "value": critic(),
        "policy": make_optimizer(
            config.actor_lr, end_fraction=config.actor_lr_end_fraction, **common
        ),
    }


def init_from_data(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Config,
    data: Transition,
    expert: Transition | None = None,
) -> State:
    """Return the initial state for a given dataset (and expert set for ReCOIL).

    Args:
      key: typed key (network initialisation; the rest is kept in the state).
      env: the environment (spaces only).
      env_params: its parameters.
      config: the config (validated here).
      data: ``Transition[N]`` dataset (see :func:`check_data`).
      expert: ``Transition[N_E]`` expert set; required by ``"recoil"``, refused
        by the other methods.

    Returns:
      The :class:`State`.

    Raises:
      ConfigError: invalid config or data, or ``expert`` given / missing.
    """
    config_lib.validate(config)
    data = check_data(data, env, env_params, "data")
    if config.method == "recoil":
        if expert is None:
            raise ConfigError("method='recoil' needs an expert dataset (expert=...)")
        expert = check_data(expert, env, env_params, "expert")
    elif expert is not None:
        raise ConfigError(
            f"an expert dataset is used by method='recoil' only, not {config.method!r}"
        )
    discrete, space = _action_space(env, env_params)
    obs_0 = data.obs[0]
    obs_ndim = jnp.ndim(obs_0)
    num_critics = 2 if config.double_q else 1
    key, k_critic, k_value, k_policy = jax.random.split(key, 4)
    critic_keys = jax.random.split(k_critic, num_critics)
    kw = _mlp_kw(config)
    if discrete:
        num_actions = int(space.n)
        critic_net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **kw)
        critic = jax.vmap(lambda k: critic_net.init(k, obs_0))(critic_keys)
        policy_net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **kw)
        policy = policy_net.init(k_policy, obs_0)
        low = high = None
    else:
        low, high = _bounds(space)
        critic_net = StateActionCritic(obs_ndim=obs_ndim, **kw)
        critic = jax.vmap(lambda k: critic_net.init(k, obs_0, jnp.zeros_like(low)))(
            critic_keys
        )
        policy_net = GaussianPolicy(action_dim=low.shape[0], obs_ndim=obs_ndim, **kw)
        policy = policy_net.init(k_policy, obs_0)
    value_net = QNetwork(
        num_actions=1, obs_ndim=obs_ndim, layer_norm=config.value_layer_norm, **kw
    )
    value = value_net.init(k_value, obs_0)
    params = Networks(
        critic=critic, value=value, policy=policy, action_low=low, action_high=high
    )
    opts = _optimizers(config)
    opt_state = {name: opts[name].init(getattr(params, name)) for name in opts}
    return State(
        params=params,
        target_params=jax.tree.map(jnp.copy, critic),
        opt_state=opt_state,
        data=data,
        expert=expert,
        key=key,
        step=jnp.zeros((), jnp.int32),
    )


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Return the initial state on the default random dataset (:func:`default_data`).

    ReCOIL uses that dataset as its expert set too (the expert-only case).

    Args:
      key: typed key (dataset, then networks).
      env: the environment.
      env_params: its parameters.
      config: the config.

    Returns:
      The :class:`State`.
    """
    config_lib.validate(config)
    key, k_data = jax.random.split(key)
    data = default_data(k_data, env, env_params, config)
    expert = data if config.method == "recoil" else None
    return init_from_data(key, env, env_params, config, data, expert)


def act(
    params: Networks,
    obs: ArrayTree,
    key: PRNGKey | None,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Choose an action for ONE observation from the extracted policy.

    Discrete: the mode (``greedy``) or a sample of the categorical policy.
    Continuous: the mean (``greedy``) or a Gaussian sample, clipped to the
    action bounds and mapped to the environment's units.

    Args:
      params: the networks.
      obs: ``[*obs_shape]`` one observation (vmap for a batch).
      key: typed key (unused when ``greedy``).
      config: the config.
      greedy: static switch.

    Returns:
      ``[]`` int32 action, or ``[d]`` float32 action.
    """
    out = _policy_out(params, obs, config, jnp.ndim(obs))
    if params.discrete:
        if greedy:
            return jnp.argmax(out).astype(jnp.int32)
        return jax.random.categorical(key, out).astype(jnp.int32)
    mean, std = out
    u = mean if greedy else mean + std * jax.random.normal(key, mean.shape)
    return _unscale_action(params, u)


def value_objective(x: Array, config: Config) -> Array:
    """Return the method's batch value loss of residuals ``x = Q - V``, ``[]``.

    The mean of :func:`jaxrl.ops.dual.value_loss` (``"fdvl"``, ``"iql"``), or
    for the Gumbel loss the form chosen by ``gumbel_stabilizer``: the mean of
    :func:`~jaxrl.ops.dual.gumbel_loss` unclipped (``"none"``) or clipped at
    ``max_clip`` (``"clip"``), :func:`~jaxrl.ops.dual.gumbel_rescale_loss`
    (``"rescale"``) or :func:`~jaxrl.ops.dual.gumbel_log_loss` (``"log"``).

    Args:
      x: ``[B]`` residuals.
      config: the config (method, stabiliser, parameters).

    Returns:
      ``[]`` the loss.
    """
    name, param = config.value_loss_name, config.value_param
    if name != "gumbel":
        return jnp.mean(dual.value_loss(x, param, name))
    kind = config.gumbel_stabilizer
    if kind == "rescale":
        return dual.gumbel_rescale_loss(x, param, config.max_clip)
    if kind == "log":
        return dual.gumbel_log_loss(x, param, config.max_clip)
    clip = config.max_clip if kind == "clip" else math.inf
    return jnp.mean(dual.gumbel_loss(x, param, clip))


def _as_batch(batch: Batch | Transition) -> Batch:
    return batch if isinstance(batch, Batch) else Batch(data=batch)


def loss(
    params: Networks,
    target_params: ArrayTree,
    batch: Batch | Transition,
    config: Config,
) -> tuple[Array, Metrics]:
    r"""Return :math:`L_Q + L_V + L_\pi` of one batch and its metrics.

    See the module docstring for the three terms per method. ``V`` is fitted
    to the target critics' minimum at the data actions, the critics to
    ``r + gamma (1 - terminated) V(s')`` with the *online* V (no gradient;
    truncation bootstraps, termination does not), the policy by AWR with the
    advantage ``min_k Qbar_k - V``.

    Args:
      params: the networks (differentiated).
      target_params: the target critics (no gradient).
      batch: a :class:`Batch`, or a ``Transition[B]`` (no expert part).
      config: the config.

    Returns:
      ``(loss, metrics)``.
    """
    batch = _as_batch(batch)
    data = batch.data
    discrete = params.discrete
    recoil = config.method == "recoil"
    if recoil and batch.expert is None:
        raise ConfigError("method='recoil' needs Batch(data=..., expert=...)")
    action = _scale_action(params, data.action)
    log_prob = policy_log_prob(params, data.obs, action, config)
    zero = jnp.zeros((), jnp.float32)
    if config.method == "bc":
        policy_loss = -jnp.mean(log_prob)
        return policy_loss, {
            "loss/total": policy_loss,
            "loss/critic": zero,
            "loss/value": zero,
            "loss/policy": policy_loss,
            "q/mean": zero,
            "v/mean": zero,
            "adv/mean": zero,
            "awr/weight_mean": jnp.ones((), jnp.float32),
            "train/diverged": (~jnp.isfinite(policy_loss)).astype(jnp.float32),
        }
    # VALUE: V(s) against the target critics' minimum at the data actions.
    q_bar = jax.lax.stop_gradient(
        critic_values(target_params, data.obs, action, config, discrete)
    )
    q_min = jnp.min(q_bar, axis=0)  # [B]
    size = q_min.shape[0]
    both = jnp.concatenate([data.obs, data.next_obs])  # one forward pass
    v, v_next = jnp.split(state_values(params.value, both, config), [size])
    value_loss = value_objective(q_min - v, config)
    # CRITIC: regression to r + gamma (1 - terminated) V(s') (ReCOIL: bounded).
    v_next = jax.lax.stop_gradient(v_next)
    if recoil:
        target = jax.vmap(
            functools.partial(
                dual.recoil_td_target,
                gamma=config.gamma,
                reward_gap=config.reward_gap,
                q_gap=config.q_gap,
            )
        )(v_next, data.terminated)
        expert = batch.expert
        both_obs = jnp.concatenate([data.obs, expert.obs])
        both_act = jnp.concatenate([action, _scale_action(params, expert.action)])
        q_both = critic_values(params.critic, both_obs, both_act, config, discrete)
        q, q_expert = jnp.split(q_both, [size], axis=1)  # [K, B] each
        pair_loss = jax.vmap(
            jax.vmap(functools.partial(dual.recoil_critic_loss, q_gap=config.q_gap))
        )
        pairs = pair_loss(q, jnp.broadcast_to(target, q.shape), q_expert)
        critic_loss = jnp.sum(jnp.mean(pairs, axis=-1))
    else:
        q = critic_values(params.critic, data.obs, action, config, discrete)  # [K, B]
        reward = config.reward_scale * data.reward + config.reward_shift
        target = reward + transition_lib.discount(data, config.gamma) * v_next
        td = q - target[None]
        critic_loss = jnp.sum(jnp.mean(huber_loss(td, config.huber_delta), axis=-1))
    # POLICY: advantage-weighted regression on the data actions.
    adv = q_min - jax.lax.stop_gradient(v)
    policy_loss = jnp.mean(
        dual.awr_loss(log_prob, adv, config.awr_beta, config.max_weight)
    )
    weights = dual.awr_weights(adv, config.awr_beta, config.max_weight)
    total = critic_loss + value_loss + policy_loss
    big = jnp.maximum(jnp.max(jnp.abs(v)), jnp.max(jnp.abs(q_bar)))
    diverged = ~jnp.isfinite(total) | ~(big <= config.diverge_threshold)
    return total, {
        "loss/total": total,
        "loss/critic": critic_loss,
        "loss/value": value_loss,
        "loss/policy": policy_loss,
        "q/mean": jnp.mean(q_min),
        "v/mean": jnp.mean(v),
        "adv/mean": jnp.mean(adv),
        "awr/weight_mean": jnp.mean(weights),
        "train/diverged": diverged.astype(jnp.float32),
    }


def _global_norm(tree: ArrayTree) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def update(
    state: State, data: Batch | Transition, config: Config
) -> tuple[State, Metrics]:
    """Do one gradient step on a batch, then move the target critics.

    Each network has its own Adam (the policy's step size decays over the
    run); the targets become ``polyak * critic + (1 - polyak) * target``.

    Args:
      state: the state.
      data: a :class:`Batch` (ReCOIL) or a ``Transition[B]``.
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`loss`'s metrics plus ``"train/grad_norm"``
      and ``"train/actor_lr"``.
    """
    grad_fn = jax.grad(loss, has_aux=True)
    grads, metrics = grad_fn(state.params, state.target_params, data, config)
    opts = _optimizers(config)
    params = state.params
    new, opt_state = {}, {}
    for name, opt in opts.items():
        current = getattr(params, name)
        updates, opt_state[name] = opt.update(
            getattr(grads, name), state.opt_state[name], current
        )
        new[name] = jax.tree.map(lambda p, u: p + u, current, updates)
    params = params.replace(**new)
    polyak = jnp.asarray(config.polyak, jnp.float32)
    target = jax.tree.map(
        lambda t, p: polyak * p + (1.0 - polyak) * t, state.target_params, params.critic
    )
    metrics = {
        **metrics,
        "train/grad_norm": _global_norm([grads.critic, grads.value, grads.policy]),
        "train/actor_lr": learning_rate_at(
            state.step,
            config.actor_lr,
            decay_steps=config.num_iters,
            end_fraction=config.actor_lr_end_fraction,
        ),
    }
    new_state = state.replace(
        params=params, target_params=target, opt_state=opt_state, step=state.step + 1
    )
    return new_state, metrics


def sample_batch(
    data: Transition,
    expert: Transition | None,
    key: PRNGKey,
    config: Config,
) -> Batch:
    """Sample ``batch_size`` transitions (and as many expert ones for ReCOIL).

    Args:
      data: ``Transition[N]``.
      expert: ``Transition[N_E]`` or ``None``.
      key: typed key (split here).
      config: the config.

    Returns:
      The :class:`Batch`.
    """
    k_data, k_expert = jax.random.split(key)
    sample = buffer_lib.sample_dataset(data, k_data, config.batch_size)
    if expert is None:
        return Batch(data=sample)
    return Batch(
        data=sample,
        expert=buffer_lib.sample_dataset(expert, k_expert, config.batch_size),
    )


def _iteration(state: State, _: None, config: Config) -> tuple[State, Metrics]:
    """Scan body: sample a batch from the state's data, take one step."""
    key, k_batch = jax.random.split(state.key)
    batch = sample_batch(state.data, state.expert, k_batch, config)
    return update(state.replace(key=key), batch, config)


def evaluate(
    params: Networks, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    """Run ``num_eval_episodes`` greedy episodes; return their mean statistics.

    Args:
      params: the networks.
      key: typed key.
      config: the config (episodes, step cap, reference returns).
      env: the environment.
      env_params: its parameters.

    Returns:
      ``{"eval/return", "eval/length", "eval/normalized_score"}`` scalars.
    """

    def policy(k: PRNGKey, obs: Array) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key, env, env_params, policy, config.num_eval_episodes, config.eval_max_steps
    )
    ret = jnp.mean(out["return"].astype(jnp.float32))
    low = jnp.asarray(config.random_return, jnp.float32)
    high = jnp.asarray(config.expert_return, jnp.float32)
    return {
        "eval/return": ret,
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
        "eval/normalized_score": 100.0 * (ret - low) / (high - low),
    }


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    body = functools.partial(_iteration, config=config)
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE at the end of the chunk (NaN on the chunk's other steps).
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    names = ("eval/return", "eval/length", "eval/normalized_score")
    if config.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.key)
        state = state.replace(key=key)
        out = evaluate(state.params, k_eval, config, env, env_params)
        for name in names:
            metrics[name] = nan_row.at[-1].set(out[name])
    else:
        for name in names:
            metrics[name] = nan_row
    return state, metrics


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    ``iters_per_chunk`` gradient steps on batches of ``state.data`` (and
    ``state.expert``), then the greedy evaluation; metrics are
    ``[iters_per_chunk]``.

    Args:
      config: the config (validated here).
      env: the environment (evaluation).
      env_params: its parameters.

    Returns:
      ``run``.
    """
    config_lib.validate(config)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, env, env_params)

    return run


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)`` on the default random dataset.

    :func:`init` then ``num_chunks`` runs (equal to calling them in turn);
    metrics are ``[num_chunks * iters_per_chunk]``. Use
    ``jax.jit(jax.vmap(train))(keys)`` for several seeds (each with its own
    random dataset).

    Args:
      config: the config.
      env: the environment.
      env_params: its parameters.

    Returns:
      ``train``.
    """
    run = make_run(config, env, env_params)
    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )


def make_train_from_data(config: Config, env: Any, env_params: Any):
    """Return ``train(key, data, expert=None) -> (state, metrics)`` on given data.

    :func:`init_from_data` then ``num_chunks`` runs. The datasets are
    arguments, so ``jax.vmap(train, in_axes=(0, None, None))`` maps seeds over
    one shared dataset (kept unbatched inside the scan) and a config ``vmap``
    sweeps hyperparameters.

    Args:
      config: the config.
      env: the environment.
      env_params: its parameters.

    Returns:
      ``train``.
    """
    run = make_run(config, env, env_params)

    def train(
        key: PRNGKey, data: Transition, expert: Transition | None = None
    ) -> tuple[State, Metrics]:
        start = functools.partial(
            init_from_data,
            env=env,
            env_params=env_params,
            config=config,
            data=data,
            expert=expert,
        )
        return chunked_train(start, run, config.num_chunks)(key)

    return train

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
exact dual-RL DP of :mod:`jaxrl.agents.dual_tabular` on the data's empirical MDP and
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
cloning of the expert. As in :mod:`jaxrl.agents.dual_tabular`:

* :func:`init_from_data` / :func:`make_train_from_data` (``train(key, data,
  expert=None)``) take the dataset(s); ``jax.vmap(train, in_axes=(0, None,
  None))`` runs several seeds on one dataset without copying it per seed
  during training (the returned states do hold a copy each; drop ``data`` from
  them when not resuming). ``train(key, data, expert, data_size,
  expert_size)`` samples only the first ``data_size`` rows (traced): datasets
  of different sizes zero-padded to one ``N`` share one compilation.
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

Modules: :mod:`~jaxrl.agents.dual_rl.config` (:class:`Config`, :class:`State`, :class:`Batch`),
:mod:`~jaxrl.agents.dual_rl.networks` (the networks and their outputs),
:mod:`~jaxrl.agents.dual_rl.data` (dataset checks, the default data),
:mod:`~jaxrl.agents.dual_rl.losses` (:func:`loss`, :func:`update`) and
:mod:`~jaxrl.agents.dual_rl.train` (initialisation, :func:`act`, evaluation, the loop).

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

import jax  # noqa: F401  (the doctest's namespace)

from jaxrl.agents.dual_rl.config import (
    DIVERGENCES,
    METHODS,
    STABILIZERS,
    Batch,
    Config,
    State,
)
from jaxrl.agents.dual_rl.data import check_data, default_data
from jaxrl.agents.dual_rl.losses import loss, update, value_objective
from jaxrl.agents.dual_rl.networks import (
    GaussianPolicy,
    Networks,
    StateActionCritic,
    critic_values,
    policy_log_prob,
    state_values,
)
from jaxrl.agents.dual_rl.train import (
    act,
    evaluate,
    init,
    init_from_data,
    make_run,
    make_train,
    make_train_from_data,
    sample_batch,
)

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

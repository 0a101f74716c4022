r"""Uniform draws from ONE call of the key's bit generator.

``jax.random.randint`` splits its key and draws two arrays of 32-bit words (three
calls of the PRNG's hash), and ``jax.random.uniform`` plus ``randint`` on a split
key (ε-greedy exploration) make five. Each call is a kernel on an accelerator and,
on XLA's CPU backend, a small loop of about 80 thunks. The functions here draw every
word they need in one call of :func:`jax.random.bits` and map the words to numbers
exactly:

* a uniform integer in ``[0, n)`` from two words ``hi, lo`` (a 64-bit number
  :math:`X = 2^{32} hi + lo`, uniform on :math:`[0, 2^{64})`):

  .. math:: I = \lfloor X n / 2^{64} \rfloor \in \{0, \dots, n - 1\},

  the multiply-high map (Lemire, "Fast random integer generation in an
  interval", ACM TOMACS 2019, without its rejection step). Each integer has
  probability :math:`\lceil\cdot\rceil` or :math:`\lfloor\cdot\rfloor` of
  :math:`2^{64} / n` over :math:`2^{64}`, i.e. :math:`1/n` up to
  :math:`2^{-64}`, for every ``n < 2^{31}``;
* a uniform float in ``[0, 1)`` from one word, its 23 high bits as the mantissa
  (:math:`U = \lfloor w / 2^9 \rfloor / 2^{23}`), the same map
  ``jax.random.uniform`` uses for float32.

The integer arithmetic uses only 32-bit unsigned operations, so it is exact
without ``jax_enable_x64`` and identical on every backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "mul_hi_u32",
    "index_from_words",
    "unit_float_from_word",
    "uniform_index",
]

_LOW16 = 0xFFFF


def mul_hi_u32(a: ArrayLike, b: ArrayLike) -> Array:
    r"""Return the high word of the 64-bit product of two 32-bit words.

    :math:`\lfloor a b / 2^{32} \rfloor` for ``uint32`` ``a`` and ``b``
    (broadcast), computed from 16-bit halves in ``uint32`` arithmetic.

    Args:
      a: ``uint32[...]`` words.
      b: ``uint32[...]`` words (broadcastable against ``a``).

    Returns:
      ``uint32[...]`` the high words.

    Examples:
      >>> import jax.numpy as jnp
      >>> int(mul_hi_u32(jnp.uint32(2**31), jnp.uint32(6)))  # 2^31 * 6 / 2^32
      3
      >>> int(mul_hi_u32(jnp.uint32(2**32 - 1), jnp.uint32(2**32 - 1)))
      4294967294
    """
    a = jnp.asarray(a, jnp.uint32)
    b = jnp.asarray(b, jnp.uint32)
    a_hi, a_lo = a >> 16, a & _LOW16
    b_hi, b_lo = b >> 16, b & _LOW16
    mid_1 = a_hi * b_lo  # < 2^32
    mid_2 = a_lo * b_hi
    carry = ((a_lo * b_lo) >> 16) + (mid_1 & _LOW16) + (mid_2 & _LOW16)  # < 3 * 2^16
    return a_hi * b_hi + (mid_1 >> 16) + (mid_2 >> 16) + (carry >> 16)


def index_from_words(hi: ArrayLike, lo: ArrayLike, n: ArrayLike) -> Array:
    r"""Map two random words to an integer in ``[0, n)``: :math:`\lfloor X n / 2^{64} \rfloor`.

    With :math:`X = 2^{32} hi + lo` and the products :math:`hi \cdot n = 2^{32}
    p_1 + q_1`, :math:`lo \cdot n = 2^{32} p_2 + q_2`, the result is :math:`p_1`
    plus the carry of :math:`q_1 + p_2` out of 32 bits (the remaining
    :math:`q_2 / 2^{32} < 1` cannot reach the next integer).

    Args:
      hi: ``uint32[...]`` high words.
      lo: ``uint32[...]`` low words.
      n: ``[...]`` integer bound(s) with ``1 <= n < 2**31`` (broadcast; may be
        traced). ``n <= 0`` is treated as 1 (every draw is 0).

    Returns:
      ``int32[...]`` indices, uniform on ``[0, n)`` to within ``2**-64`` each
      when ``hi, lo`` are uniform.

    Examples:
      >>> import jax.numpy as jnp
      >>> int(index_from_words(jnp.uint32(2**31), jnp.uint32(0), 10))  # X = 2^63
      5
      >>> int(index_from_words(jnp.uint32(2**32 - 1), jnp.uint32(2**32 - 1), 7))
      6
    """
    n = jnp.maximum(jnp.asarray(n, jnp.int32), 1).astype(jnp.uint32)
    hi = jnp.asarray(hi, jnp.uint32)
    lo = jnp.asarray(lo, jnp.uint32)
    q_1 = hi * n  # low word of hi * n (wraps)
    total = q_1 + mul_hi_u32(lo, n)  # wraps on carry
    carry = (total < q_1).astype(jnp.uint32)
    return (mul_hi_u32(hi, n) + carry).astype(jnp.int32)


def unit_float_from_word(word: ArrayLike) -> Array:
    r"""Map a random word to a float32 in ``[0, 1)``: its 23 high bits as a mantissa.

    :math:`U = 1.m - 1` with mantissa ``m = word >> 9``, i.e.
    :math:`\lfloor w / 2^9 \rfloor / 2^{23}` (exactly representable; the map of
    ``jax.random.uniform`` for float32).

    Args:
      word: ``uint32[...]`` words.

    Returns:
      ``float32[...]`` in ``[0, 1)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(unit_float_from_word(jnp.uint32(2**31)))
      0.5
      >>> float(unit_float_from_word(jnp.uint32(511)))  # below the kept bits
      0.0
    """
    word = jnp.asarray(word, jnp.uint32)
    one_m = jax.lax.bitcast_convert_type(
        (word >> 9) | jnp.uint32(0x3F800000), jnp.float32
    )
    return one_m - jnp.float32(1.0)


def uniform_index(key: PRNGKey, shape: tuple[int, ...], n: ArrayLike) -> Array:
    r"""Draw integers uniform on ``[0, n)`` with one call of the key's bit generator.

    ``jax.random.bits(key, (*shape, 2))`` gives two words per draw, mapped by
    :func:`index_from_words`. Same distribution as ``jax.random.randint(key,
    shape, 0, n)`` (not the same numbers), in one PRNG call instead of three.

    Args:
      key: a typed PRNG key (consumed).
      shape: static output shape.
      n: ``[]`` or ``shape``-broadcastable integer bound(s), ``1 <= n < 2**31``
        (may be traced; ``n <= 0`` draws 0).

    Returns:
      ``int32[shape]`` indices.

    Examples:
      >>> import jax
      >>> idx = uniform_index(jax.random.key(0), (1000,), 7)
      >>> idx.dtype.name, int(idx.min()), int(idx.max())
      ('int32', 0, 6)
    """
    words = jax.random.bits(key, (*shape, 2), jnp.uint32)
    return index_from_words(words[..., 0], words[..., 1], n)

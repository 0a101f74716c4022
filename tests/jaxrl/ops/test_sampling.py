"""Tests for jaxrl.ops.sampling against exact integer references and chi-square checks."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import stats

from jaxrl.ops import sampling

_EDGE_WORDS = [0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]


def _words(seed: int, size: int) -> np.ndarray:
    """Random uint32 words plus every pair of the edge cases."""
    rng = np.random.default_rng(seed)
    edges = np.array(_EDGE_WORDS, np.uint64)
    pairs = np.stack(np.meshgrid(edges, edges), -1).reshape(-1, 2)
    draws = rng.integers(0, 2**32, size=(size, 2), dtype=np.uint64)
    return np.concatenate([pairs, draws]).astype(np.uint32)


def _ref_index(hi: np.ndarray, lo: np.ndarray, n: int) -> np.ndarray:
    """floor((2^32 hi + lo) * n / 2^64) in Python integers (exact)."""
    return np.array(
        [((int(h) << 32 | int(w)) * n) >> 64 for h, w in zip(hi, lo, strict=True)],
        np.int64,
    )


class MulHiTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_python_integers(self):
        w = _words(0, 2000)
        got = np.asarray(self.variant(sampling.mul_hi_u32)(w[:, 0], w[:, 1]))
        want = [(int(a) * int(b)) >> 32 for a, b in w]
        np.testing.assert_array_equal(got.astype(np.int64), want)


class IndexFromWordsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 2, 3, 7, 18, 1000, 10_007, 2**20 + 3, 2**31 - 1)
    def test_matches_exact_reference(self, n):
        w = _words(n, 1000)
        got = np.asarray(self.variant(sampling.index_from_words)(w[:, 0], w[:, 1], n))
        self.assertEqual(got.dtype, np.int32)
        np.testing.assert_array_equal(got, _ref_index(w[:, 0], w[:, 1], n))
        self.assertTrue(((got >= 0) & (got < n)).all())

    def test_traced_bound_per_element(self):
        w = _words(1, 300)
        ns = np.random.default_rng(2).integers(1, 5000, size=len(w)).astype(np.int32)
        got = np.asarray(jax.jit(sampling.index_from_words)(w[:, 0], w[:, 1], ns))
        want = [
            _ref_index(w[i : i + 1, 0], w[i : i + 1, 1], int(n))[0]
            for i, n in enumerate(ns)
        ]
        np.testing.assert_array_equal(got, want)

    def test_nonpositive_bound_draws_zero(self):
        w = _words(3, 10)
        for n in (0, -5):
            got = sampling.index_from_words(w[:, 0], w[:, 1], n)
            np.testing.assert_array_equal(np.asarray(got), 0)

    def test_preimages_have_equal_size_within_one(self):
        # The map floor(X n / 2^64) on X in [0, 2^64) gives each integer k the
        # X in [ceil(k 2^64 / n), ceil((k + 1) 2^64 / n)): at most one apart in
        # size. Check the map's boundaries: the first X of each k maps to k and
        # the X just below maps to k - 1.
        for n in (3, 7, 10_007):
            for k in (1, n // 2, n - 1):
                first = -(-(k << 64) // n)  # ceil(k 2^64 / n)
                below = first - 1
                for x, want in ((first, k), (below, k - 1)):
                    hi, lo = np.uint32(x >> 32), np.uint32(x & 0xFFFFFFFF)
                    self.assertEqual(int(sampling.index_from_words(hi, lo, n)), want)


class UnitFloatTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_mantissa_reference(self):
        w = _words(4, 2000)[:, 0]
        got = np.asarray(self.variant(sampling.unit_float_from_word)(w))
        want = (w.astype(np.uint64) >> 9).astype(np.float64) / 2.0**23
        np.testing.assert_array_equal(got.astype(np.float64), want)
        self.assertEqual(got.dtype, np.float32)
        self.assertTrue(((got >= 0.0) & (got < 1.0)).all())

    def test_same_map_as_jax_uniform(self):
        # jax.random.uniform (float32, [0, 1)) maps the words of
        # jax.random.bits(key, shape) the same way (two keys of one seed: the
        # same words).
        words = jax.random.bits(jax.random.key(5), (1000,), jnp.uint32)
        np.testing.assert_array_equal(
            np.asarray(sampling.unit_float_from_word(words)),
            np.asarray(jax.random.uniform(jax.random.key(5), (1000,), jnp.float32)),
        )


class UniformIndexTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_uses_one_bits_call_per_draw(self):
        got = self.variant(lambda k: sampling.uniform_index(k, (4, 5), 13))(
            jax.random.key(6)
        )
        words = np.asarray(jax.random.bits(jax.random.key(6), (4, 5, 2), jnp.uint32))
        want = _ref_index(words[..., 0].ravel(), words[..., 1].ravel(), 13)
        np.testing.assert_array_equal(np.asarray(got).ravel(), want)
        self.assertEqual(got.shape, (4, 5))

    @parameterized.parameters(2, 7, 50)
    def test_uniform_chi_square(self, n):
        draws = np.asarray(sampling.uniform_index(jax.random.key(n), (200_000,), n))
        counts = np.bincount(draws, minlength=n)
        self.assertEqual(len(counts), n)
        p = stats.chisquare(counts).pvalue
        self.assertGreater(p, 1e-4)

    def test_vmapped_keys_and_bounds_differ(self):
        keys = jax.random.split(jax.random.key(7), 3)
        bounds = jnp.array([1, 5, 1000])
        out = jax.jit(jax.vmap(lambda k, n: sampling.uniform_index(k, (64,), n)))(
            keys, bounds
        )
        out = np.asarray(out)
        np.testing.assert_array_equal(out[0], 0)
        self.assertTrue((out[1] < 5).all() and (out[2] < 1000).all())
        self.assertGreater(len(set(out[2].tolist())), 50)  # not one repeated draw


if __name__ == "__main__":
    absltest.main()

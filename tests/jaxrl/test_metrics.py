"""Tests for jaxrl.metrics against scipy and independent NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jaxrl import metrics


class TestIqm:
    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 20, 33])
    def test_matches_scipy_trim_mean(self, n):
        x = np.random.default_rng(n).normal(size=n)
        np.testing.assert_allclose(metrics.iqm(x), stats.trim_mean(x, 0.25), rtol=1e-12)

    def test_columns_and_nan(self):
        x = np.random.default_rng(0).normal(size=(9, 4))
        np.testing.assert_allclose(
            metrics.iqm(x), stats.trim_mean(x, 0.25, axis=0), rtol=1e-12
        )
        y = x.copy()
        y[0, 1] = np.nan
        np.testing.assert_allclose(
            metrics.iqm(y)[1], stats.trim_mean(x[1:, 1], 0.25), rtol=1e-12
        )
        np.testing.assert_allclose(
            metrics.iqm(x, axis=None), stats.trim_mean(x.ravel(), 0.25), rtol=1e-12
        )


class TestMeanStd:
    def test_nan_aware(self):
        x = np.array([[1.0, np.nan], [3.0, np.nan], [np.inf, np.nan]])
        np.testing.assert_allclose(metrics.mean(x)[0], 2.0)
        assert np.isnan(metrics.mean(x)[1])
        np.testing.assert_allclose(metrics.std(x)[0], np.std([1.0, 3.0], ddof=1))


class TestBootstrapCi:
    def test_matches_scipy_percentile_bootstrap(self):
        x = np.random.default_rng(1).normal(loc=2.0, size=25)
        low, high = metrics.bootstrap_ci(
            x, num_resamples=20000, confidence=0.95, seed=3
        )
        ref = stats.bootstrap(
            (x,),
            np.mean,
            n_resamples=20000,
            confidence_level=0.95,
            method="percentile",
            random_state=np.random.default_rng(4),
        ).confidence_interval
        # Two independent Monte-Carlo estimates of the same quantiles.
        assert abs(low - ref.low) < 0.03 and abs(high - ref.high) < 0.03

    def test_matches_independent_loop(self):
        """The percentile interval equals a plain loop over resamples of the same draws."""
        x = np.random.default_rng(2).exponential(size=(12, 3))
        low, high = metrics.bootstrap_ci(x, num_resamples=500, confidence=0.9, seed=7)
        rng = np.random.default_rng(7)
        idx = rng.integers(0, 12, size=(500, 12))
        est = np.array([[np.mean(x[i, t]) for t in range(3)] for i in idx])
        np.testing.assert_allclose(low, np.quantile(est, 0.05, axis=0), rtol=1e-12)
        np.testing.assert_allclose(high, np.quantile(est, 0.95, axis=0), rtol=1e-12)

    def test_coverage_on_normal_samples(self):
        """Nominal 95% percentile intervals cover the true mean ~93-96% of the time."""
        rng = np.random.default_rng(0)
        trials, n = 400, 40
        covered = 0
        for t in range(trials):
            x = rng.normal(loc=1.0, scale=2.0, size=n)
            low, high = metrics.bootstrap_ci(x, num_resamples=400, seed=t)
            covered += low <= 1.0 <= high
        assert 0.90 <= covered / trials <= 0.98

    def test_iqm_statistic_and_strata(self):
        a = np.random.default_rng(3).normal(size=10)
        b = np.random.default_rng(4).normal(loc=5, size=6)
        low, high = metrics.bootstrap_ci(
            strata=[a, b], num_resamples=300, seed=0, statistic="iqm"
        )
        rng = np.random.default_rng(0)
        ia = rng.integers(0, 10, size=(300, 10))
        ib = rng.integers(0, 6, size=(300, 6))
        est = [
            stats.trim_mean(np.concatenate([a[i], b[j]]), 0.25)
            for i, j in zip(ia, ib, strict=True)
        ]
        np.testing.assert_allclose(
            [low, high], np.quantile(est, [0.025, 0.975]), rtol=1e-12
        )

    def test_degenerate_and_errors(self):
        low, high = metrics.bootstrap_ci(np.array([3.0]))
        assert low == high == 3.0
        with pytest.raises(ValueError, match="confidence"):
            metrics.bootstrap_ci(np.ones(3), confidence=1.0)
        with pytest.raises(ValueError, match="statistic"):
            metrics.bootstrap_ci(np.ones(3), statistic="mode")
        with pytest.raises(ValueError, match="seed"):
            metrics.bootstrap_ci(np.ones(0))


class TestSummaries:
    def test_summarize(self):
        x = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
        s = metrics.summarize(x, seed=0)
        assert s["n"] == 4 and s["mean"] == 2.5
        assert s["iqm"] == stats.trim_mean(x[:4], 0.25)
        assert s["ci_low"] <= 2.5 <= s["ci_high"]
        assert set(s) >= {"mean", "ci_low", "ci_high", "iqm", "n"}
        assert metrics.summarize(np.array([np.nan]))["n"] == 0

    def test_curve_summary_and_final_values(self):
        x = np.arange(12.0).reshape(3, 4)
        c = metrics.curve_summary(x, num_resamples=50)
        np.testing.assert_allclose(c["mean"], x.mean(0))
        assert np.all(c["ci_low"] <= c["mean"]) and np.all(c["mean"] <= c["ci_high"])
        np.testing.assert_allclose(metrics.final_values(x, window=2), x[:, -2:].mean(1))
        y = x.copy()
        y[0, -1] = np.nan
        y[1, :] = np.nan
        got = metrics.final_values(y)
        assert got[0] == x[0, -2] and np.isnan(got[1]) and got[2] == x[2, -1]

    def test_normalized_score(self):
        np.testing.assert_allclose(
            metrics.normalized_score([0.0, 50.0, 100.0], 0.0, 100.0), [0, 0.5, 1]
        )
        np.testing.assert_allclose(metrics.normalized_score(10.0, 20.0, 30.0), -1.0)
        with pytest.raises(ValueError):
            metrics.normalized_score(1.0, 2.0, 2.0)


class TestDivergence:
    """first_divergence on hand-built [seeds, iters] metrics (chunks of 4)."""

    @staticmethod
    def _health(*flags):
        """A health row: NaN except the last row of each 4-iteration chunk."""
        row = np.full(4 * len(flags), np.nan)
        row[3::4] = flags
        return row

    def test_healthy_seeds_with_warmup_and_sparse_nan(self):
        nan = np.nan
        m = {
            # NaN during the warm-up only: not a divergence
            "loss/td": np.array([[nan, nan, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0]] * 2),
            # sparse namespaces: NaN anywhere
            "eval/return": np.array([[nan, nan, nan, 5.0, nan, nan, nan, nan]] * 2),
            "episode/return": np.full((2, 8), nan),
            "health/finite": np.stack([self._health(1, 1)] * 2),
        }
        np.testing.assert_array_equal(metrics.first_divergence(m), [-1, -1])

    def test_first_non_finite_iteration_inside_the_failed_chunk(self):
        nan, inf = np.nan, np.inf
        loss = np.array(
            [
                [nan, 1.0, 1.0, 1.0, 1.0, 1.0, inf, nan],  # turns at 6
                [nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # state only: end, 7
                [nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # healthy
                [nan, nan, inf, nan, nan, nan, nan, nan],  # never finite: end, 3
            ]
        )
        health = np.stack(
            [
                self._health(1, 0),
                self._health(1, 0),
                self._health(1, 1),
                self._health(0, 0),
            ]
        )
        got = metrics.first_divergence({"loss": loss, "health/finite": health})
        np.testing.assert_array_equal(got, [6, 7, -1, 3])
        assert got.dtype == np.int64

    def test_earliest_dense_metric_and_recovering_metrics_do_not_count(self):
        nan = np.nan
        m = {
            "a": np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, nan]]),
            "b": np.array([[1.0, 1.0, 1.0, 1.0, 1.0, nan, nan, nan]]),
            # NaN at 4 but finite again at 6: transient, not where it turned
            "c": np.array([[1.0, 1.0, 1.0, 1.0, nan, 1.0, 1.0, nan]]),
            # had a gap before the failed chunk: a sparse metric, ignored
            "d": np.array([[1.0, nan, 1.0, 1.0, nan, nan, nan, nan]]),
            "health/finite": self._health(1, 0)[None],
        }
        np.testing.assert_array_equal(metrics.first_divergence(m), [5])

    def test_later_failed_chunks_and_divergence_before_the_check(self):
        nan = np.nan
        m = {
            "loss": np.array([[1.0] * 9 + [nan] * 3]),
            "health/finite": self._health(1, 1, 0)[None],
        }
        np.testing.assert_array_equal(metrics.first_divergence(m), [9])

    def test_agent_flag(self):
        """dual_rl's train/diverged (1.0 on a diverged step) counts on its own."""
        nan = np.nan
        m = {
            "train/diverged": np.array(
                [[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [nan, 0.0, 0, 0, 0, 0, 0, 0]]
            ),
            "loss": np.ones((2, 8)),
            "health/finite": np.stack([self._health(1, 1)] * 2),
        }
        np.testing.assert_array_equal(metrics.first_divergence(m), [2, -1])
        # the earlier of the flag and the state check wins
        m["health/finite"][0] = self._health(0, 0)
        m["loss"][0, 1:] = nan
        np.testing.assert_array_equal(metrics.first_divergence(m), [1, -1])

    def test_without_health_column_only_the_agent_flag_counts(self):
        m = {"loss": np.array([[1.0, np.nan]])}
        np.testing.assert_array_equal(metrics.first_divergence(m), [-1])
        assert metrics.first_divergence({}).shape == (0,)
        with pytest.raises(ValueError, match="seeds, iters"):
            metrics.first_divergence({"a": np.zeros(3)})

    def test_mask_after(self):
        v = np.arange(8.0).reshape(2, 4)
        out = metrics.mask_after(v, np.array([2, -1]))
        np.testing.assert_array_equal(out, [[0.0, 1.0, np.nan, np.nan], [4, 5, 6, 7]])
        assert v[0, 3] == 3.0  # a copy

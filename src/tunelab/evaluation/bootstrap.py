"""Bootstrap confidence intervals: percentile intervals per model, paired intervals for differences.

A resample is a row of multinomial counts over the examples; the same rows serve the base and
the tuned model, which is what makes the difference's interval paired.
"""

import numpy as np

from tunelab.evaluation.metrics import Metric


def resample_weights(n_examples: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_examples, np.full(n_examples, 1.0 / n_examples), size=samples).astype(float)


def replicate(metric: Metric, weights: np.ndarray) -> np.ndarray:
    """The metric on each resample (one value per row of `weights`)."""
    totals = weights @ metric.stats
    return np.array([metric.score(total) for total in totals], dtype=float)


def interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def metric_interval(metric: Metric, weights: np.ndarray) -> list[float]:
    return interval(replicate(metric, weights))


def paired_difference(base: Metric, tuned: Metric, weights: np.ndarray) -> dict:
    """tuned − base with a paired 95% interval; significant when the interval excludes zero."""
    deltas = replicate(tuned, weights) - replicate(base, weights)
    low, high = interval(deltas)
    return {
        "delta": tuned.value() - base.value(),
        "ci_low": low,
        "ci_high": high,
        "significant": bool(low > 0 or high < 0),
    }

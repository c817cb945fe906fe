"""Scoring a whole set: per-sample rewards, their mean with a bootstrap interval, and failures by kind.

A failed sample scores 0 and is counted under its kind (timeout, memory, exception, non_number,
crashed, unparsable, formula, ...), so a run always finishes and says how much of its reward is
real.
"""

from collections import Counter
from dataclasses import dataclass, field

from tunelab.errors import DataError
from tunelab.graders.base import Grader, Outcome
from tunelab.graders.templates import as_sample

BOOTSTRAP_SAMPLES = 1000


@dataclass
class GradeReport:
    grader: str
    type: str
    outcomes: list[Outcome]
    sandbox: str | None = None  # the python grader's isolation mechanism, where one ran
    errors: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.errors = dict(Counter(outcome.error for outcome in self.outcomes if outcome.error))

    @property
    def scores(self) -> list[float]:
        return [outcome.score for outcome in self.outcomes]

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def mean(self) -> float:
        return sum(self.scores) / self.n if self.n else 0.0

    def ci95(self, seed: int = 0) -> list[float]:
        """A percentile bootstrap interval of the mean reward, resampling samples."""
        if self.n == 0:
            return [0.0, 0.0]
        import numpy as np

        from tunelab.evaluation.bootstrap import interval, resample_weights

        weights = resample_weights(self.n, BOOTSTRAP_SAMPLES, seed)
        return interval(weights @ np.asarray(self.scores, dtype=float) / self.n)

    def error_examples(self) -> dict[str, str]:
        """The first detail of each kind of failure (what a person needs to fix the grader)."""
        examples: dict[str, str] = {}
        for outcome in self.outcomes:
            if outcome.error and outcome.error not in examples:
                examples[outcome.error] = outcome.detail
        return examples

    def to_dict(self) -> dict:
        return {
            "grader": self.grader,
            "type": self.type,
            "n": self.n,
            "mean_reward": self.mean,
            "reward_ci95": self.ci95(),
            "errors": self.errors,
            "error_examples": self.error_examples(),
            "sandbox": self.sandbox,
            "scores": self.scores,
        }


def score_all(grader: Grader, samples: list, items: list[dict]) -> GradeReport:
    """Every sample graded against its item (samples: strings, or dicts with `output_text`)."""
    if len(samples) != len(items):
        raise DataError(f"{len(samples)} samples for {len(items)} items", "give one sample per item, in order")
    outcomes = grader.grade_batch([as_sample(sample) for sample in samples], list(items))
    return GradeReport(grader.name, grader.type, outcomes, getattr(grader, "sandbox_mechanism", None))

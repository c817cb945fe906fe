"""OpenAI's three fine-tuning methods (`method.type`) as tunelab runs: which recipe trains each, which records it
reads, its hyperparameters with OpenAI's ranges, and how "auto" resolves once the data is known.

The job keeps what the client sent ("auto" included) until its files are validated; then every
"auto" becomes the value used, and the job object shows those values, as OpenAI's does.
"""

import math
from dataclasses import dataclass

from tunelab.server.api_errors import ApiError

SUPERVISED_SCHEMAS = ("chat", "sharegpt", "alpaca", "completion", "text")
AUTO_BATCH = 8  # examples per step: what a CPU trains efficiently; OpenAI's own default scales with the data
AUTO_BETA = 0.1
SAMPLES_PER_PROMPT = 4  # grpo's group size at compute_multiplier 1
MAX_EVAL_SAMPLES = 64
THINKING_TOKENS = {"default": 64, "low": 64, "medium": 128, "high": 256}  # reasoning_effort -> tokens per sample


@dataclass(frozen=True)
class Range:
    """One hyperparameter: its JSON kind, bounds (low exclusive when `open_low`), and its "auto" rule."""

    kind: type
    low: float
    high: float = math.inf
    open_low: bool = False

    def check(self, key: str, value) -> None:
        kinds = int if self.kind is int else (int, float)
        fits = isinstance(value, kinds) and not isinstance(value, bool)
        fits = fits and (value > self.low if self.open_low else value >= self.low) and value <= self.high
        if not fits:
            bound = f"{'>' if self.open_low else '>='} {self.low}" + (
                f" and <= {self.high}" if self.high < math.inf else ""
            )
            raise ApiError(
                400,
                f"hyperparameters.{key} must be 'auto' or a {'whole ' if self.kind is int else ''}number {bound} "
                f"(got {value!r})",
                f"hyperparameters.{key}",
                "invalid_hyperparameter",
            )


COMMON = {
    "n_epochs": Range(int, 1, 50),
    "batch_size": Range(int, 1, 256),
    "learning_rate_multiplier": Range(float, 0, open_low=True),
}


@dataclass(frozen=True)
class JobMethod:
    type: str  # OpenAI's method.type
    recipe: str  # the tunelab method that trains it (on LoRA weights)
    schemas: tuple[str, ...]  # the record schemas its training file may hold
    ranges: dict[str, Range]
    choices: dict[str, tuple[str, ...]]  # string hyperparameters and their allowed values

    def given(self, hyperparameters: dict | None) -> dict:
        """The client's hyperparameters checked against OpenAI's ranges; unknown keys refused, "auto" kept."""
        values = dict(hyperparameters or {})
        known = (*self.ranges, *self.choices)
        for key, value in values.items():
            if key not in known:
                raise ApiError(
                    400,
                    f"hyperparameters.{key} is not a hyperparameter of the {self.type} method; it takes "
                    f"{', '.join(known)}",
                    f"hyperparameters.{key}",
                    "invalid_hyperparameter",
                )
            if key in self.choices and value not in self.choices[key]:
                raise ApiError(
                    400,
                    f"hyperparameters.{key} must be one of {', '.join(self.choices[key])} (got {value!r})",
                    f"hyperparameters.{key}",
                    "invalid_hyperparameter",
                )
            if key in self.ranges and value not in (None, "auto"):
                self.ranges[key].check(key, value)
        return {key: values.get(key, "auto") for key in self.ranges} | {
            key: values.get(key, "default") for key in self.choices
        }

    def resolved(self, given: dict, train_size: int, validation_size: int) -> dict:
        """Every "auto" replaced by the value this job trains with, given the prepared split sizes."""
        batch = given.get("batch_size")
        batch = max(1, min(AUTO_BATCH, train_size)) if batch in (None, "auto") else batch
        auto = {
            "n_epochs": auto_epochs(train_size),
            "batch_size": batch,
            "learning_rate_multiplier": 1.0,
            "beta": AUTO_BETA,
            "compute_multiplier": 1.0,
            "eval_interval": max(1, math.ceil(train_size / batch)),  # once an epoch
            "eval_samples": max(1, min(MAX_EVAL_SAMPLES, validation_size)),
        }
        return {key: auto[key] if value in (None, "auto") else value for key, value in given.items()}


def auto_epochs(train_size: int) -> int:
    """OpenAI's published rule: aim at 3 epochs, but at least 100 and at most 25,000 examples seen, within 1-25."""
    if train_size * 3 < 100:
        return min(25, math.ceil(100 / max(train_size, 1)))
    if train_size * 3 > 25_000:
        return max(1, 25_000 // train_size)
    return 3


SUPERVISED = JobMethod("supervised", "lora", SUPERVISED_SCHEMAS, COMMON, {})
DPO = JobMethod("dpo", "dpo", ("preference",), COMMON | {"beta": Range(float, 0, 2, open_low=True)}, {})
REINFORCEMENT = JobMethod(
    "reinforcement",
    "grpo",
    ("reinforcement",),
    COMMON
    | {
        "compute_multiplier": Range(float, 0.00001, 10, open_low=True),
        "eval_interval": Range(int, 1),
        "eval_samples": Range(int, 1),
    },
    {"reasoning_effort": tuple(THINKING_TOKENS)},
)
JOB_METHODS = {m.type: m for m in (SUPERVISED, DPO, REINFORCEMENT)}


def run_overrides(method_type: str, hyperparameters: dict, grader: dict | None) -> dict:
    """The run-config keys a job of this method and these (resolved) hyperparameters trains with."""
    from tunelab.methods.registry import method_named

    job_method = JOB_METHODS[method_type]
    weights = None if job_method.recipe == "lora" else "lora"
    overrides = {
        "method": job_method.recipe,
        "weights": weights,
        "train.epochs": hyperparameters["n_epochs"],
        "train.batch_size": hyperparameters["batch_size"],
        "train.learning_rate": hyperparameters["learning_rate_multiplier"]
        * method_named(job_method.recipe, weights).learning_rate,  # the rate the multiplier scales
    }
    if method_type == "dpo":
        overrides["preference.beta"] = hyperparameters["beta"]
    if method_type == "reinforcement":
        samples = max(2, min(64, round(SAMPLES_PER_PROMPT * hyperparameters["compute_multiplier"])))
        overrides |= {
            "rl.grader": grader,
            "rl.k": samples,
            "rl.max_new_tokens": THINKING_TOKENS[hyperparameters["reasoning_effort"]],
            "train.eval_steps": hyperparameters["eval_interval"],
        }
    return overrides

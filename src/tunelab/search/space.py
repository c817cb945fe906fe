"""Search spaces: dotted config keys → distributions, from SPACE.yaml or the default for the method.

SPACE.yaml maps each key to one of
    {type: float, low: 1e-5, high: 1e-3, log: true}
    {type: int, low: 2, high: 5}
    {type: categorical, choices: [8, 16, 32, 64]}
(a bare list is shorthand for categorical).
"""

from pathlib import Path

from tunelab.config import RunConfig, apply_override, read_yaml, validate_tree
from tunelab.errors import ConfigError
from tunelab.methods.registry import get_method

KINDS = ("float", "int", "categorical")


def default_space(config: RunConfig, cuda: bool) -> dict:
    """Established practice: learning rate log-uniform within 5× of the method's default, LoRA rank
    {8,16,32,64}, 2–5 epochs, warmup ratio 0–0.1, and batch size where a GPU's memory allows it."""
    method = get_method(config.method or "lora")
    rate = config.train.learning_rate or method.learning_rate
    space = {
        "train.learning_rate": {"type": "float", "low": rate / 5, "high": rate * 5, "log": True},
        "train.epochs": {"type": "int", "low": 2, "high": 5},
        "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.1},
    }
    if "lora" in method.settings:
        space["lora.r"] = {"type": "categorical", "choices": [8, 16, 32, 64]}
    if cuda:
        space["train.batch_size"] = {"type": "categorical", "choices": [8, 16, 32]}
    return space


def read_space(path: Path) -> dict:
    tree = read_yaml(Path(path))
    return {key: check_dimension(key, spec) for key, spec in tree.items()}


def check_dimension(key: str, spec) -> dict:
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise ConfigError(
            f"search space key {key!r}: needs type float, int or categorical",
            "e.g. train.learning_rate: {type: float, low: 1e-5, high: 1e-3, log: true}",
        )
    if spec["type"] == "categorical":
        if not spec.get("choices"):
            raise ConfigError(
                f"search space key {key!r}: categorical needs a non-empty 'choices' list", "add choices: [...]"
            )
    elif "low" not in spec or "high" not in spec or float(spec["low"]) > float(spec["high"]):
        raise ConfigError(f"search space key {key!r}: needs low <= high", "e.g. low: 2, high: 5")
    return spec


def check_space(space: dict, config: RunConfig) -> None:
    """Every key must be a config key: apply a sample value and validate the whole config."""
    tree = config.model_dump(mode="json")
    for key, spec in space.items():
        apply_override(tree, key, spec["choices"][0] if spec["type"] == "categorical" else spec["low"])
    validate_tree(tree, source="search space")


def suggest(trial, space: dict) -> dict:
    """The trial's values for each key of the space."""
    values = {}
    for key, spec in space.items():
        if spec["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, list(spec["choices"]))
        elif spec["type"] == "int":
            values[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            values[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return values


def apply_values(config: RunConfig, values: dict, extra: dict | None = None) -> RunConfig:
    tree = config.model_dump(mode="json")
    for key, value in {**values, **(extra or {})}.items():
        apply_override(tree, key, value)
    return validate_tree(tree, source="trial")

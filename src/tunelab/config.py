"""RunConfig: the one typed object that flows from the CLI to the recipe.

Precedence is defaults < YAML file < command-line flags (`--set key.path=value` included).
Validation errors name the key's dotted path and the allowed values.
"""

import reprlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tunelab.data.config import DataConfig
from tunelab.errors import ConfigError
from tunelab.evaluation.config import EvalConfig
from tunelab.methods.config import (
    AdapterSettings,
    DistillSettings,
    LoraSettings,
    PreferenceSettings,
    PromptSettings,
    RLSettings,
)
from tunelab.models.config import ModelConfig
from tunelab.tracking.config import TrackingConfig
from tunelab.training.config import TrainConfig

Task = Literal["causal-lm", "classification", "seq2seq"]


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Task | None = Field(None, description="causal-lm, classification or seq2seq; default follows the data.")
    method: str | None = Field(
        None,
        description="Fine-tuning method (`tunelab methods` lists them); default lora for causal LMs, full for small "
        "encoders.",
    )
    weights: str | None = Field(
        None,
        description="Preference and reinforcement methods (dpo, orpo, simpo, grpo): the method whose weights train; "
        "default lora, or full, qlora, ...",
    )
    backend: Literal["local", "openai"] = Field(
        "local", description="local: train here; openai: OpenAI's fine-tuning API."
    )
    out: str | None = Field(None, description="Run folder; default runs/<timestamp>-<method>.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    adapter: AdapterSettings = Field(default_factory=AdapterSettings)
    distill: DistillSettings = Field(default_factory=DistillSettings)
    preference: PreferenceSettings = Field(default_factory=PreferenceSettings)
    rl: RLSettings = Field(default_factory=RLSettings)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("model", mode="before")
    @classmethod
    def _model_may_be_a_name(cls, value):
        return {"name": value} if isinstance(value, str) else value

    @field_validator("method")
    @classmethod
    def _method_is_in_the_table(cls, value):
        from tunelab.methods.registry import METHODS

        if value is not None and value not in METHODS:
            raise ValueError(f"unknown method {value!r}; use one of " + ", ".join(repr(name) for name in METHODS))
        return value

    @field_validator("weights")
    @classmethod
    def _weights_are_a_supervised_method(cls, value):
        from tunelab.methods.registry import weights_methods

        if value is not None and value not in weights_methods():
            raise ValueError(f"unknown weights {value!r}; use one of " + ", ".join(map(repr, weights_methods())))
        return value


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        else:
            problems.append(f"'{key}': {item['msg']} (got {reprlib.repr(item.get('input'))})")
    return "; ".join(problems)


def parse_value(text: str):
    """A --set value as YAML would read it: numbers, booleans, lists and null become typed."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(tree: dict, dotted_key: str, value) -> None:
    """Set tree[a][b][c] = value for 'a.b.c', creating sections on the way."""
    *sections, leaf = dotted_key.split(".")
    node = tree
    for section in sections:
        child = node.get(section)
        if isinstance(child, str) and section == "model":
            child = {"name": child}
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"'{section}' must be a section of keys, not {reprlib.repr(child)}",
                f"write it as '{section}:' followed by indented keys (see `tunelab init`)",
            )
        node[section] = child
        node = child
    node[leaf] = value


class NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases: a config needs none, and aliases allow 'billion laughs' bombs."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a tunelab config", event.start_mark
            )
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(
            f"config file not found: {path}", "pass an existing YAML file, or run `tunelab init` to write one"
        )
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=NoAliasLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(
            f"{path}{where}: not valid YAML" + (f" ({problem})" if problem else ""),
            "fix the syntax (unclosed bracket or quote?)",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to be a tunelab config", "see `tunelab init` for the layout"
        ) from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections", "see `tunelab init` for the layout")
    return tree


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults < YAML < overrides ({'train.epochs': 2, ...}); raises ConfigError naming the key."""
    tree = read_yaml(Path(path)) if path else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            apply_override(tree, key, value)
    return validate_tree(tree, source=str(path) if path else "options")


def validate_tree(tree: dict, source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: {_describe(exc)}", "fix the value or remove the key; `tunelab init` lists every key"
        ) from None


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")


def commented_yaml(model: type[BaseModel] = RunConfig, indent: int = 0) -> str:
    """A YAML file with every key, its default and its description: what `tunelab init` writes."""
    lines = []
    pad = " " * indent
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.append(commented_yaml(annotation, indent + 2))
            continue
        default = field.get_default(call_default_factory=True)
        value = yaml.safe_dump(
            default if not isinstance(default, tuple) else list(default), default_flow_style=True
        ).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{pad}{name}: {value}  # {field.description or ''}")
    return "\n".join(lines)

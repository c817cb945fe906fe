"""What tests that drive the training loop directly share: a config with the method's default rate filled in
(as `finetune.resolve` does for a run), the tokenizer, the encoded examples, the loop settings and the
method's objective, built the way the workflow builds them."""

from dataclasses import dataclass
from pathlib import Path

import torch

from tunelab.config import RunConfig
from tunelab.methods.base import BuildContext, Method, ObjectiveContext
from tunelab.methods.registry import build_model, get_method
from tunelab.runs import MetricsLog
from tunelab.training.encode import encode_split, training_tokenizer
from tunelab.training.loop import LoopResult, LoopSettings, train_loop
from tunelab.training.objectives import Objective


def with_method_rate(config: RunConfig) -> RunConfig:
    """The config with train.learning_rate resolved to the method's default where none is set."""
    rate = config.train.learning_rate or get_method(config.method).learning_rate
    return config.model_copy(update={"train": config.train.model_copy(update={"learning_rate": rate})})


@dataclass
class Setup:
    config: RunConfig  # learning rate resolved
    method: Method
    tokenizer: object
    examples: list
    settings: LoopSettings
    objective: Objective
    labels: list[str] | None = None

    def model(self, seed: int = 0):
        """A freshly built model with the method applied (seeded, so two calls give the same weights)."""
        torch.manual_seed(seed)
        context = BuildContext(self.config, self.config.task, self.config.model.name, "cpu")
        return build_model(self.method, context, self.labels)


def setup_for(config: RunConfig, records: list[dict], labels: list[str] | None = None, device: str = "cpu") -> Setup:
    config = with_method_rate(config)
    method = get_method(config.method)
    tokenizer = training_tokenizer(config.model.name)
    examples = encode_split(
        records, tokenizer, config.task, max_length=config.model.max_length, loss_on=config.train.loss_on, labels=labels
    )
    settings = LoopSettings.from_config(config, len(examples), device)
    packing = config.train.packing and not method.virtual_tokens
    objective = method.objective(
        ObjectiveContext(config, config.task, device, labels, records, tokenizer.pad_token_id or 0, packing=packing)
    )
    return Setup(config, method, tokenizer, examples, settings, objective, labels)


def run_loop(setup: Setup, model, run_dir: Path, validation=None, **loop_kwargs) -> LoopResult:
    """train_loop on the setup's examples (validation: the first 8 unless given), metrics in run_dir/m.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return train_loop(
        model,
        setup.examples,
        setup.examples[:8] if validation is None else validation,
        setup.settings,
        setup.objective,
        run_dir=run_dir,
        log=MetricsLog(run_dir / "m.jsonl"),
        **loop_kwargs,
    )


def losses_of(run_dir: Path, key: str = "loss") -> list[float]:
    return [r[key] for r in MetricsLog(run_dir / "m.jsonl").read() if r.get(key) is not None]

"""Load what a user points at (run folder, model folder, bundled name) ready for inference.

A run folder holds either `adapter/` (PEFT or tunelab bottleneck adapter over the base named in
its config) or `model/` (a full fine-tune); its config.yaml names the task and base model.
"""

from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import ModelError


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    task: str
    name: str
    base_name: str
    method: object = None  # the Method that trained the weights; None for a plain model (whole weights)

    @property
    def encoder_decoder(self) -> bool:
        return self.task == "seq2seq"


def weights_dir(run_dir: Path, folder: str) -> Path:
    if (run_dir / folder).is_dir():
        return run_dir / folder
    raise ModelError(
        f"{run_dir} has no trained weights (no {folder}/ folder)",
        "point at a finished run folder, or train first",
    )


def load_target(
    target: str, device: str = "cpu", task: str | None = None, labels: list[str] | None = None
) -> LoadedModel:
    """A run folder, a model folder, or a model name, loaded for inference (a base classifier gets
    the run's label names on its fresh head, so its predictions are comparable)."""
    path = Path(target)
    if (path / "config.yaml").exists():
        return load_run(path, device)
    from tunelab.models.loading import (
        architecture_kind,
        load_model,
        load_tokenizer,
        read_model_config,
        resolve_model_path,
    )

    resolved = resolve_model_path(target)
    kind = architecture_kind(read_model_config(resolved))
    task = task or {"seq2seq": "seq2seq", "encoder": "classification"}.get(kind, "causal-lm")
    model = load_model(target, task, device=device, labels=labels).to(device).eval()
    return LoadedModel(model, load_tokenizer(target), task, target, target)


def load_run(run_dir: Path, device: str = "cpu") -> LoadedModel:
    from tunelab.methods.registry import load_trained, method_for
    from tunelab.models.loading import load_tokenizer
    from tunelab.runs import read_config

    config = read_config(run_dir)
    method = method_for(config)
    folder = weights_dir(run_dir, method.weights.folder)
    model = load_trained(folder, method, config.task or "causal-lm", config.model.name, device).eval()
    return LoadedModel(
        model, load_tokenizer(str(folder)), config.task or "causal-lm", str(run_dir), config.model.name, method
    )

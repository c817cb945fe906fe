"""The three ways trained weights are kept: a whole model folder, a PEFT adapter, tunelab's bottleneck adapter."""

from pathlib import Path

from tunelab.methods.base import WeightsFormat


def _save_pretrained(model, folder: Path) -> None:
    model.save_pretrained(folder)


def _load_model_folder(folder: Path, task: str, base_name: str, device: str):
    from tunelab.models.loading import load_model

    return load_model(str(folder), task, labels=saved_labels(folder), device=device).to(device)


def _load_peft(folder: Path, task: str, base_name: str, device: str):
    from peft import PeftModel

    from tunelab.models.loading import load_model

    base = load_model(base_name, task, labels=saved_labels(folder), device=device)
    return PeftModel.from_pretrained(base, str(folder)).to(device)


def _save_bottleneck(model, folder: Path) -> None:
    from tunelab.methods import bottleneck  # torch is imported only where weights are written or read

    bottleneck.save_adapters(model, folder)


def _load_bottleneck(folder: Path, task: str, base_name: str, device: str):
    from tunelab.methods import bottleneck
    from tunelab.models.loading import load_model

    base = load_model(base_name, task, labels=saved_labels(folder), device=device)
    return bottleneck.load_adapters(base, folder).to(device)


LABELS_FILE = "labels.json"


def saved_labels(folder: Path) -> list[str] | None:
    import json

    path = Path(folder) / LABELS_FILE
    return json.loads(path.read_text()) if path.exists() else None


MODEL_FOLDER = WeightsFormat(
    "model", "transformers", _save_pretrained, _load_model_folder, lambda f: (f / "config.json").exists()
)
PEFT_ADAPTER = WeightsFormat(
    "adapter", "peft", _save_pretrained, _load_peft, lambda f: (f / "adapter_config.json").exists()
)
BOTTLENECK_ADAPTER = WeightsFormat(
    "adapter", "tunelab", _save_bottleneck, _load_bottleneck, lambda f: (f / "bottleneck_adapter.json").exists()
)

"""Class-weighted cross-entropy against label imbalance: auto = inverse train frequency."""

from tunelab.errors import ConfigError
from tunelab.progress import say


def class_weight_tensor(setting, train_records: list[dict], labels: list[str] | None, device: str):
    """The weight per label id, or None where there are no labels or weighting is off (setting 'none')."""
    import torch

    from tunelab.data.prepare import class_weights

    if not labels or setting == "none":
        return None
    weights = class_weights(train_records) if setting == "auto" else setting
    unknown = set(weights) - set(labels)
    if unknown:
        raise ConfigError(
            f"train.class_weights names labels not in the data: {sorted(unknown)[:5]}", f"labels are {labels[:10]}"
        )
    say("class weights: " + ", ".join(f"{k}={weights.get(k, 1.0):.2f}" for k in labels))
    return torch.tensor([float(weights.get(label, 1.0)) for label in labels], device=device)

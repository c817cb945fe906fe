"""Evaluation of preference pairs: does a model put more probability on the chosen reply than the rejected one?

Each model gives every held-out pair two summed log-probabilities (chosen, rejected), scored
with training's own encoding and masks. `preference_accuracy` is the log-likelihood preference
(chosen more likely than rejected); with a base model, the tuned model's implicit reward
(log-probability gained over the base on chosen minus on rejected, DPO's reward up to beta) is
reported with its interval as well.
"""

import numpy as np

from tunelab.evaluation import bootstrap
from tunelab.evaluation.metrics import Metric, mean_metric
from tunelab.progress import track


def pair_logps(loaded, records: list[dict], batch_size: int = 8, description: str | None = None) -> np.ndarray:
    """(n, 2) summed log-probabilities of each pair's chosen and rejected reply under the model."""
    import torch

    from tunelab.training.batches import ensure_chat_template
    from tunelab.training.preference import collate_pairs, encode_pair, sequence_logps

    ensure_chat_template(loaded.tokenizer)
    pairs = [encode_pair(r, loaded.tokenizer, 1024) for r in records]
    model, pad = loaded.model.eval(), loaded.tokenizer.pad_token_id or 0
    starts = range(0, len(pairs), batch_size)
    found = []
    for start in track(starts, description) if description else starts:
        batch = {k: v.to(model.device) for k, v in collate_pairs(pairs[start : start + batch_size], pad).items()}
        with torch.no_grad():
            summed, _ = sequence_logps(model, batch)
        half = summed.shape[0] // 2
        found += list(zip(summed[:half].tolist(), summed[half:].tolist()))
    return np.asarray(found, dtype=float).reshape(-1, 2)


def preference_metrics(logps: np.ndarray) -> list[Metric]:
    chosen, rejected = logps[:, 0], logps[:, 1]
    return [mean_metric("preference_accuracy", chosen > rejected), mean_metric("logp_margin", chosen - rejected)]


def implicit_reward(tuned: np.ndarray, base: np.ndarray, weights: np.ndarray) -> dict:
    """The tuned model's implicit reward against the base as reference: accuracy and margin with 95% intervals."""
    margin = (tuned[:, 0] - base[:, 0]) - (tuned[:, 1] - base[:, 1])
    metrics = [mean_metric("implicit_reward_accuracy", margin > 0), mean_metric("implicit_reward_margin", margin)]
    return {m.name: m.value() for m in metrics} | {
        "intervals": {m.name: bootstrap.metric_interval(m, weights) for m in metrics}
    }

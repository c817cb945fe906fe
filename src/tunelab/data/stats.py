"""Dataset statistics and the plain-words guidance a person reads before training.

Thresholds come from experience, not theory: under 500 examples a fine-tune mostly memorises;
under 100 it is rarely worth the compute, so `prepare` refuses unless forced. Preference training
(DPO and kin) also learns whatever separates chosen from rejected replies besides quality, most
often length, so a strong length skew between the two sides is worth a warning.
"""

from collections import Counter

import numpy as np

SMALL_DATA = 500
TOO_SMALL_DATA = 100
IMBALANCE_RATIO = 3.0
TRUNCATION_SHARE = 0.05
LENGTH_BIAS = (0.4, 0.6)  # share of pairs whose chosen reply is the longer: outside this, length is a signal


def token_stats(tokens: np.ndarray, tokenizer_name: str) -> dict:
    """min, p5, p50, p95, max and total tokens per example."""
    if not len(tokens):
        return {"tokenizer": tokenizer_name, "min": 0, "p5": 0, "p50": 0, "p95": 0, "max": 0, "total": 0}
    p5, p50, p95 = (int(v) for v in np.percentile(tokens, [5, 50, 95], method="nearest"))
    return {
        "tokenizer": tokenizer_name,
        "min": int(tokens.min()),
        "p5": p5,
        "p50": p50,
        "p95": p95,
        "max": int(tokens.max()),
        "total": int(tokens.sum()),
    }


def preference_stats(lengths: np.ndarray) -> dict:
    """Pairs, token lengths of prompts, chosen and rejected replies (rows of lengths), and the share of pairs
    whose chosen reply is the longer one."""
    sides = {f"{name}_tokens": _spread(lengths[:, i]) for i, name in enumerate(("prompt", "chosen", "rejected"))}
    longer = float((lengths[:, 1] > lengths[:, 2]).mean()) if len(lengths) else 0.0
    return {"pairs": len(lengths), **sides, "chosen_longer_fraction": round(longer, 4)}


def _spread(values: np.ndarray) -> dict:
    if not len(values):
        return {"mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    p50, p95 = (int(v) for v in np.percentile(values, [50, 95], method="nearest"))
    return {"mean": round(float(values.mean()), 1), "p50": p50, "p95": p95, "max": int(values.max())}


def class_weights(train_records) -> dict[str, float]:
    """Inverse class frequency, normalised to mean 1: what a weighted loss uses against imbalance."""
    counts = (
        Counter(str(r["label"]) for r in train_records) if not isinstance(train_records, Counter) else train_records
    )
    if not counts:
        return {}
    inverse = {label: 1.0 / n for label, n in counts.items()}
    mean = sum(inverse.values()) / len(inverse)
    return {label: round(inverse[label] / mean, 6) for label in sorted(inverse)}


def guidance(
    kept: int,
    train_labels: Counter | None,
    over_limit: int,
    max_tokens: int | None,
    measured: int = 0,
    chosen_longer: float | None = None,
) -> list[str]:
    """Warnings in plain words: too little data, imbalanced classes, much truncation, length-biased pairs.

    `measured` is how many records had their length checked (kept ones plus those rejected for length);
    `chosen_longer` is the share of preference pairs whose chosen reply is the longer."""
    notes = []
    if kept < TOO_SMALL_DATA:
        notes.append(f"only {kept} usable examples: fewer than {TOO_SMALL_DATA} rarely teaches a model anything")
    elif kept < SMALL_DATA:
        notes.append(
            f"only {kept} usable examples: fewer than {SMALL_DATA}, expect overfitting (use few epochs, watch validation loss)"
        )
    if train_labels and len(train_labels) > 1:
        largest, smallest = max(train_labels.values()), min(train_labels.values())
        if largest / smallest >= IMBALANCE_RATIO:
            weights = class_weights(train_labels)
            shown = ", ".join(f"{k}={v:.2f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])[:5])
            notes.append(
                f"classes are imbalanced: the largest has {largest / smallest:.1f}x the examples of the smallest; "
                f"training will weight classes ({shown}{', ...' if len(weights) > 5 else ''})"
            )
    measured = max(measured, kept, over_limit, 1)
    if max_tokens and over_limit / measured > TRUNCATION_SHARE:
        notes.append(
            f"{over_limit} examples ({over_limit / measured:.0%}) are over {max_tokens} tokens: "
            "raise max_tokens or expect truncation to cut answers"
        )
    return notes + _length_bias(chosen_longer)


def _length_bias(chosen_longer: float | None) -> list[str]:
    low, high = LENGTH_BIAS
    if chosen_longer is None or low <= chosen_longer <= high:
        return []
    side = "longer" if chosen_longer > high else "shorter"
    return [
        f"the chosen reply is the longer one in {chosen_longer:.0%} of pairs: preference training (DPO) learns to "
        f"prefer {side} replies rather than better ones; balance reply lengths, or watch the tuned model's lengths"
    ]

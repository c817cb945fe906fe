"""Learning rate as a pure function of the step: nothing to save, so resume is exact."""

import math


def learning_rate_at(step: int, *, peak: float, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Linear warmup to `peak`, then cosine or linear decay to zero, or constant."""
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "linear":
        return peak * max(0.0, 1 - progress)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

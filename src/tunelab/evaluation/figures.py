"""The report's plots, as base64 PNG <img> tags so report.html needs nothing but itself."""

import base64
import io

from tunelab.evaluation.metrics import UNBOUNDED


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def img_tag(figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def loss_curves(log: list[dict]) -> str | None:
    """Training loss per step, and validation loss at the eval steps."""
    train = [(r["step"], r["loss"]) for r in log if r.get("loss") is not None and "step" in r]
    valid = [(r["step"], r["eval_loss"]) for r in log if r.get("eval_loss") is not None and "step" in r]
    if not train and not valid:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 3.4))
    if train:
        axis.plot(*zip(*train), label="train loss", color="#1f77b4")
    if valid:
        axis.plot(*zip(*valid), "o-", label="validation loss", color="#d62728")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title("Loss")
    return img_tag(figure, "loss curves")


def learning_rate(log: list[dict]) -> str | None:
    points = [(r["step"], r["learning_rate"]) for r in log if r.get("learning_rate") is not None and "step" in r]
    if not points:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 2.6))
    axis.plot(*zip(*points), color="#2ca02c")
    axis.set_xlabel("step")
    axis.set_ylabel("learning rate")
    axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axis.grid(alpha=0.3)
    axis.set_title("Learning rate")
    return img_tag(figure, "learning rate")


def metric_bars(evaluation: dict) -> str | None:
    """Base and tuned side by side for each 0-1 metric, with 95% interval whiskers."""
    tuned = evaluation.get("tuned") or {}
    names = [m for m in tuned if m not in UNBOUNDED]
    if not names:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2), 3.2))
    models = [m for m in ("base", "tuned") if evaluation.get(m)]
    width = 0.8 / len(models)
    for offset, model in enumerate(models):
        values = [evaluation[model][m] for m in names]
        spans = [evaluation["intervals"][model][m] for m in names]
        errors = [[v - low for v, (low, _) in zip(values, spans)], [high - v for v, (_, high) in zip(values, spans)]]
        positions = [i + offset * width for i in range(len(names))]
        axis.bar(
            positions,
            values,
            width,
            yerr=errors,
            capsize=3,
            label=model,
            color="#9e9e9e" if model == "base" else "#1f77b4",
        )
    axis.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(names))], names, rotation=30, ha="right")
    axis.set_ylim(0, 1.05)
    axis.legend()
    axis.set_title("Metrics with 95% bootstrap intervals")
    return img_tag(figure, "metrics base vs tuned")


def confusion_heatmap(matrix: list[list[int]], labels: list[str], title: str) -> str:
    plt = _pyplot()
    size = min(12.0, 2.5 + 0.25 * len(labels))
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    if len(labels) <= 30:
        axis.set_xticks(range(len(labels)), labels, rotation=90)
        axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    return img_tag(figure, title)

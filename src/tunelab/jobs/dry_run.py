"""`tunelab train --dry-run`: show the examples as the model will see them, then stop.

Trained (unmasked) tokens are highlighted, so a masking bug is visible before any compute is spent.
"""

from rich.text import Text

from tunelab.cost.estimate import estimate, settings_from_config
from tunelab.progress import console
from tunelab.training.batches import IGNORE


def render_example(tokenizer, example) -> Text:
    text = Text()
    for token, label in zip(example.input_ids, example.labels):
        piece = tokenizer.decode([token])
        text.append(piece, style="bold green" if label != IGNORE else "dim")
    return text


def sequences(example) -> list:
    """What the model reads for one example: both sides of a preference pair, else the example itself."""
    return [example.chosen, example.rejected] if hasattr(example, "chosen") else [example]


def trained_count(example) -> int:
    """Trained tokens (a reinforcement prompt has none yet: its completions are sampled during training)."""
    return sum(
        sum(1 for label in side.labels if label != IGNORE) for side in sequences(example) if hasattr(side, "labels")
    )


def show(config, run_dir, tokenizer, train_examples, settings, shown: int = 2) -> dict:
    from tunelab.methods.registry import method_for

    method = method_for(config)
    total_tokens = sum(len(side.input_ids) for e in train_examples for side in sequences(e))
    trained = sum(map(trained_count, train_examples)) if config.task != "classification" else len(train_examples)
    if config.task != "classification":
        for index, example in enumerate(train_examples[:shown]):
            console.print(f"[bold]example {index + 1}[/] (green = trained tokens):")
            for side in sequences(example):
                console.print(
                    render_example(tokenizer, side) if hasattr(side, "labels") else tokenizer.decode(side.input_ids)
                )
    if method.recipe and method.saves_whole_model and method.recipe.extra_forward and not method.recipe.reference_copy:
        console.print(
            f"{method.name} on full weights: the reference is scored once before training and kept in "
            "the run folder, so no second model is held while training"
        )
    console.print(
        f"{len(train_examples)} train examples, {total_tokens:,} tokens, {trained:,} trained; "
        f"{settings.total_steps} optimizer steps of {settings.batch_size} examples"
    )
    planned = estimate(**settings_from_config(config))
    hours = planned.get("hours") or {}
    console.print(
        f"estimate on {planned.get('gpu') or 'this device'}: {planned['per_device_memory_gb']} GB per device, "
        f"{hours.get('low', 0) * 3600:.0f}-{hours.get('high', 0) * 3600:.0f} s"
    )
    return {
        "estimate": planned,
        "run_dir": str(run_dir),
        "status": "dry-run",
        "train_examples": len(train_examples),
        "train_tokens": total_tokens,
        "trained_tokens": trained,
        "total_steps": settings.total_steps,
        "task": config.task,
        "method": config.method,
        "model": config.model.name,
    }

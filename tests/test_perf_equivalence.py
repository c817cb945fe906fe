"""tunelab's speed-ups change nothing beyond numerical noise.

50 optimizer steps of tunelab's loop (packed padding-free rows, LM head only at trained positions,
fused AdamW) against a plain loop (right-padded batches, full logits, for-loop AdamW) from the same
weights, on the same generated headline-style chat data (varied lengths, so packing and padding really
differ) in the same order, with the same schedule, weight decay and clipping: the loss at step 50 stays
within 1%, and so does (within 5%) the distance the loss moved, so a real difference could not hide
behind a loss that barely moves.
"""

import random

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_llama
from training_helpers import setup_for

from tunelab.config import load_config
from tunelab.runs import MetricsLog
from tunelab.training.batches import IGNORE, collate_padded
from tunelab.training.loop import step_examples, train_loop
from tunelab.training.schedule import learning_rate_at

pytestmark = pytest.mark.slow
STEPS = 50
WORDS = (
    "shares prices bank rates minister talks government police rain storm team coach match city council "
    "workers strike oil exports market record profit report court judge vote election border trade deal "
    "water school hospital doctors farmers harvest train airport flight museum river bridge"
).split()


def headline_records(n: int = 400, seed: int = 0) -> list[dict]:
    """Generated summarise-to-a-headline chats of varied lengths: a 6-60 word story, a 2-10 word headline
    made of the story's own words (learnable, so the loss moves)."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        story = [rng.choice(WORDS) for _ in range(rng.randint(6, 60))]
        headline = sorted(rng.sample(range(len(story)), rng.randint(2, min(10, len(story)))))
        records.append(
            {
                "messages": [
                    {"role": "user", "content": " ".join(story) + " .\n\nTL;DR:"},
                    {"role": "assistant", "content": " ".join(story[i] for i in headline)},
                ]
            }
        )
    return records


def plain_loop(model, examples, s, pad_id: int) -> list[float]:
    """The textbook loop: padded batch, full logits, mean cross-entropy, for-loop AdamW."""
    torch.manual_seed(s.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": s.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=s.learning_rate,
        foreach=False,
        fused=False,
    )
    model.train()
    losses = []
    for step in range(s.total_steps):
        batch = collate_padded(step_examples(examples, step, s.batch_size, s.seed), pad_id, "causal-lm")
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(
                step, peak=s.learning_rate, total_steps=s.total_steps, warmup_steps=s.warmup_steps, schedule=s.scheduler
            )
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["targets"].flatten(), ignore_index=IGNORE)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("method,learning_rate", [("full", 2e-3), ("lora", 5e-3)])
def test_optimised_loop_matches_plain_loop(tmp_path, method, learning_rate):
    config = load_config(
        None,
        {
            "task": "causal-lm",
            "method": method,
            "model": {"name": str(tiny_llama()), "max_length": 256, "dtype": "float32"},
            "lora": {"dropout": 0.0},
            "train": {"max_steps": STEPS, "batch_size": 8, "learning_rate": learning_rate, "seed": 3},
        },
    )
    setup = setup_for(config, headline_records())
    settings, objective, pad_id = setup.settings, setup.objective, setup.tokenizer.pad_token_id or 0
    assert settings.total_steps == STEPS and settings.learning_rate == learning_rate
    first = objective.batches(step_examples(setup.examples, 0, 8, settings.seed), 8, settings.token_budget)
    assert all("position_ids" in b and "attention_mask" not in b for b in first)  # the optimised loop packs
    lengths = {len(e.input_ids) for e in setup.examples}
    assert max(lengths) > 2 * min(lengths)  # varied lengths: padding would cost, packing saves it

    log = MetricsLog(tmp_path / "metrics.jsonl")
    train_loop(setup.model(), setup.examples, [], settings, objective, run_dir=tmp_path, log=log)
    optimised = [record["loss"] for record in log.read()]
    plain = plain_loop(setup.model(), setup.examples, settings, pad_id)

    assert abs(optimised[0] - plain[0]) / plain[0] < 1e-4  # same weights, same first batch
    assert abs(optimised[-1] - plain[-1]) / plain[-1] < 0.01, (optimised[-1], plain[-1])
    learned, learned_plain = optimised[0] - optimised[-1], plain[0] - plain[-1]
    assert learned_plain > 0.01 * plain[0], "the loss must move for the comparison to mean anything"
    assert abs(learned - learned_plain) / learned_plain < 0.05, (
        learned,
        learned_plain,
    )  # the same progress, not just the same level

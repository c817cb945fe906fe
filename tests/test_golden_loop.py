"""Golden losses: 4 seeded optimizer steps of `train_loop` on the tiny Llama give these exact per-step losses.

Any change to data order, batching, packing, the loss, gradient accumulation, the schedule, the
optimizer, clipping or seeding moves them. If a change is meant to alter training, recompute the
values (run this file with GOLDEN_PRINT=1 and -s) and say why in the commit.
"""

import os

import pytest
from tiny_models import tiny_llama
from training_helpers import losses_of, run_loop, setup_for

from tunelab.config import load_config
from tunelab.training.loop import step_examples

TOPICS = ["billing", "shipping", "returns", "login", "refunds", "delivery", "account", "warranty"]
RECORDS = [
    {
        "messages": [
            {"role": "user", "content": f"Ticket {i} about {TOPICS[i % 8]}: " + "please help me " * (1 + i % 5)},
            {"role": "assistant", "content": f"Reply {i}: your {TOPICS[(3 * i) % 8]} case " + "is handled " * (i % 4)},
        ]
    }
    for i in range(16)
]
GOLDEN = {  # computed on CPU in fp32 with torch 2.13, transformers 5.24, peft 0.21
    "full": [10.83907470703125, 10.605095880681818, 10.443560066869704, 10.344451419890873],
    "lora": [10.83907470703125, 10.595201526988637, 10.432569600768009, 10.405069986979166],
}


def four_steps(method: str, tmp_path) -> list[float]:
    config = load_config(
        None,
        {
            "model.name": str(tiny_llama()),
            "model.max_length": 128,
            "task": "causal-lm",
            "method": method,
            "train.max_steps": 4,
            "train.batch_size": 4,
            "train.tokens_per_batch": 64,  # packed rows of at most 128 tokens: several passes per step
            "train.learning_rate": 1e-3 if method == "full" else 1e-2,
            "train.warmup_steps": 1,
            "train.seed": 11,
        },
    )
    setup = setup_for(config, RECORDS)
    assert setup.settings.total_steps == 4 and setup.settings.token_budget == 128
    first_step = step_examples(setup.examples, 0, 4, setup.settings.seed)
    assert len(setup.objective.batches(first_step, 4, 128)) > 1  # gradient accumulation over packed rows
    run_loop(setup, setup.model(), tmp_path, validation=[])
    return losses_of(tmp_path)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_four_seeded_steps_give_the_golden_losses(method, tmp_path):
    losses = four_steps(method, tmp_path)
    if os.environ.get("GOLDEN_PRINT"):
        print(f"GOLDEN {method}: {losses!r}")
    assert len(losses) == 4
    assert losses == pytest.approx(GOLDEN[method], rel=1e-5)

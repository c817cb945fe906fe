"""The training core: loss masks, packing without cross-contamination, exact accumulation, schedules."""

import math

import pytest
import torch
from tiny_models import tiny_llama

from tunelab.training.batches import (
    IGNORE,
    collate_packed,
    collate_padded,
    encode_record,
    ensure_chat_template,
)
from tunelab.training.losses import LMLoss
from tunelab.training.schedule import learning_rate_at

CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And three plus three?"},
        {"role": "assistant", "content": "Six."},
    ]
}


@pytest.fixture(scope="module")
def llama():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_llama()
    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_chat_template(tokenizer)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), tokenizer


def decoded_trained(tokenizer, example) -> str:
    return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label != IGNORE])


def test_only_assistant_turns_carry_loss(llama):
    _, tokenizer = llama
    example = encode_record(CHAT, tokenizer, "causal-lm", max_length=512)
    trained = decoded_trained(tokenizer, example)
    assert "Four." in trained and "Six." in trained
    assert "two plus two" not in trained and "Be brief" not in trained
    assert "<|im_end|>" in trained  # the model learns to stop


def test_loss_on_all_and_zero_weight(llama):
    _, tokenizer = llama
    everything = encode_record(CHAT, tokenizer, "causal-lm", max_length=512, loss_on="all")
    assert all(label != IGNORE for label in everything.labels)
    weighted = {"messages": [dict(m, weight=0) if m["content"] == "Four." else m for m in CHAT["messages"]]}
    trained = decoded_trained(tokenizer, encode_record(weighted, tokenizer, "causal-lm", max_length=512))
    assert "Four." not in trained and "Six." in trained


def examples(tokenizer, n=6):
    records = [
        {
            "messages": [
                {"role": "user", "content": f"question {i} " + "word " * (i * 3)},
                {"role": "assistant", "content": f"answer {i} " + "more " * i},
            ]
        }
        for i in range(n)
    ]
    return [encode_record(r, tokenizer, "causal-lm", max_length=512) for r in records]


def test_packing_keeps_examples_apart(llama):
    """A packed row gives the same summed loss as each example alone: no attention across examples."""
    model, tokenizer = llama
    batch, lm_loss = examples(tokenizer), LMLoss()
    with torch.no_grad():
        packed = lm_loss(model, collate_packed(batch))
        alone = sum(lm_loss(model, collate_packed([e])) for e in batch)
        padded = lm_loss(model, collate_padded(batch, tokenizer.pad_token_id, "causal-lm"))
    assert packed.item() == pytest.approx(alone.item(), rel=1e-5)
    assert padded.item() == pytest.approx(alone.item(), rel=1e-5)


def test_accumulation_is_exact(llama):
    """8 examples in one pass or in passes of 2 (or packed) give the same mean loss and gradients, through the
    loop's own batching (`batches_for`) and accumulation (`forward_backward`)."""
    from dataclasses import replace

    from tunelab.config import load_config
    from tunelab.training.loop import LoopSettings, batches_for, forward_backward
    from tunelab.training.objectives import supervised
    from tunelab.training.precision import loss_scaler

    model, tokenizer = llama
    batch = examples(tokenizer, 8)
    config = load_config(None, {"model.name": str(tiny_llama()), "train.learning_rate": 1e-3, "train.batch_size": 8})
    settings = LoopSettings.from_config(config, len(batch))
    assert settings.micro_batch_size == 8 and settings.precision == "fp32"

    def mean_loss_and_grad(s, packing):
        objective = supervised("causal-lm", packing=packing, pad_id=0)
        passes = batches_for(batch, s, objective, "cpu")
        count = sum(objective.targets(p) for p in passes)
        model.zero_grad()
        summed = forward_backward(
            model, passes, s, objective, scale=1.0, step_targets=count, scaler=loss_scaler(s.precision, s.device)
        )
        return len(passes), summed / count, model.model.embed_tokens.weight.grad.clone()

    n_one, one, grad_one = mean_loss_and_grad(settings, packing=False)
    n_four, four, grad_four = mean_loss_and_grad(replace(settings, micro_batch_size=2), packing=False)
    n_packed, packed, grad_packed = mean_loss_and_grad(replace(settings, token_budget=64), packing=True)
    assert (n_one, n_four) == (1, 4) and n_packed > 1  # the three really are different splits
    assert four == pytest.approx(one, rel=1e-5) and packed == pytest.approx(one, rel=1e-5)
    assert torch.allclose(grad_one, grad_four, atol=1e-6) and torch.allclose(grad_one, grad_packed, atol=1e-6)
    model.zero_grad()


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_schedules_warm_up_then_follow_their_shape(schedule):
    rates = [learning_rate_at(s, peak=1e-3, total_steps=100, warmup_steps=10, schedule=schedule) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a <= b + 1e-12 for a, b in zip(rates[:10], rates[1:10]))
    if schedule == "constant":
        assert rates[-1] == pytest.approx(1e-3)
    else:
        assert rates[-1] < 1e-4 and all(a >= b - 1e-12 for a, b in zip(rates[10:], rates[11:]))
    assert not any(math.isnan(r) for r in rates)

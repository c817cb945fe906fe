"""Forgetting check: perplexity on general English that ships with tunelab, and answers to general
instructions, base vs tuned. A large rise in general-text perplexity is the usual sign of
catastrophic forgetting."""

import json
import math
from pathlib import Path

from tunelab.evaluation.metrics import token_f1

HERE = Path(__file__).parent
ADVICE = (
    "lower the learning rate, train fewer epochs, use LoRA instead of full fine-tuning, "
    "or mix general replay data into the training set"
)


def read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def general_perplexity(loaded, texts: list[str], batch_size: int = 8) -> float:
    from tunelab.evaluation.predict import language_model_stats

    nll, counts, _ = language_model_stats(
        loaded.model, loaded.tokenizer, [{"text": t} for t in texts], "causal-lm", batch_size=batch_size, max_length=256
    )
    return math.exp(sum(nll) / max(sum(counts), 1))


def instruction_answers(loaded, instructions: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    from tunelab.evaluation.predict import generate_outputs

    records = [{"messages": [{"role": "user", "content": text}]} for text in instructions]
    return generate_outputs(loaded, records, max_new_tokens=max_new_tokens, batch_size=batch_size, description=None)


def forgetting_probe(
    tuned, base, *, threshold: float, max_new_tokens: int, batch_size: int, instructions: int = 10
) -> dict:
    """Perplexity rise on general text and how much general answers moved; `verdict` says it in words."""
    texts = [row["text"] for row in read_jsonl("general_text.jsonl")]
    asks = [row["instruction"] for row in read_jsonl("general_instructions.jsonl")][:instructions]
    result = {
        "general_text_paragraphs": len(texts),
        "threshold": threshold,
        "tuned_perplexity": general_perplexity(tuned, texts, batch_size),
    }
    tuned_answers = instruction_answers(tuned, asks, max_new_tokens, batch_size)
    if base is None:
        result.update(
            answers=[{"instruction": a, "tuned": t} for a, t in zip(asks, tuned_answers)],
            flagged=False,
            verdict=f"general-text perplexity {result['tuned_perplexity']:.1f}; no base model to compare",
        )
        return result
    base_answers = instruction_answers(base, asks, max_new_tokens, batch_size)
    result["base_perplexity"] = general_perplexity(base, texts, batch_size)
    rise = result["tuned_perplexity"] / result["base_perplexity"] - 1
    similarity = [token_f1(t, b) for t, b in zip(tuned_answers, base_answers)]
    result.update(
        perplexity_rise=rise,
        flagged=rise > threshold,
        answer_similarity_to_base=sum(similarity) / len(similarity) if similarity else 1.0,
        answers=[{"instruction": a, "base": b, "tuned": t} for a, b, t in zip(asks, base_answers, tuned_answers)],
    )
    if result["flagged"]:
        result["verdict"] = (
            f"likely catastrophic forgetting: general-text perplexity rose {rise:.0%} "
            f"({result['base_perplexity']:.1f} → {result['tuned_perplexity']:.1f}), over the "
            f"{threshold:.0%} threshold; {ADVICE}"
        )
        result["advice"] = ADVICE
    else:
        result["verdict"] = (
            f"no sign of forgetting: general-text perplexity changed {rise:+.0%} "
            f"({result['base_perplexity']:.1f} → {result['tuned_perplexity']:.1f}), within the "
            f"{threshold:.0%} threshold"
        )
    return result

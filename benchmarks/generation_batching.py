#!/usr/bin/env python3
"""Batched generation against one prompt at a time, on the bundled SmolLM2, on this machine's CPU.

    python benchmarks/generation_batching.py [--examples 16] [--batch-size 16] [--max-new-tokens 32] [--threads N]

Prompts are real headline-generation inputs (../shared/data/t0/gigaword_TLDR.jsonl when present,
else built-in sentences) rendered with the model's chat template. Both runs are greedy with the
same settings; the script prints one JSON line with wall and process-CPU seconds (CPU seconds
are the fair figure on a machine shared with other jobs), new tokens per second, the speed-ups
and the share of examples whose batched and one-at-a-time outputs agree.
"""

import argparse
import json
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "t0" / "gigaword_TLDR.jsonl"
FALLBACK = [
    "the city council approved a new budget for schools on tuesday after a long debate .",
    "heavy rain flooded roads across the region , forcing hundreds of families to leave their homes .",
]


def prompts(count: int) -> list[str]:
    if DATA.exists():
        rows = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines()[:count]]
    else:
        rows = [FALLBACK[i % len(FALLBACK)] for i in range(count)]
    return [row.replace("\n\nTL;DR:\n", "").strip() + "\n\nWrite a headline." for row in rows]


def timed(model, tokenizer, texts, batch_size, max_new_tokens):
    from tunelab.inference.generate import generate

    start, cpu_start = time.perf_counter(), time.process_time()
    outputs = generate(model, tokenizer, texts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    new_tokens = sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)
    return outputs, seconds, cpu_seconds, new_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    import torch

    from tunelab.inference.generate import chat_prompt
    from tunelab.models.loading import load_model, load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer("smollm2")
    model = load_model("smollm2", "causal-lm", dtype="float32").eval()
    texts = [chat_prompt(tokenizer, [{"role": "user", "content": p}]) for p in prompts(args.examples)]
    timed(model, tokenizer, texts[:2], 2, 4)  # warm-up
    batched, batched_s, batched_cpu, batched_tokens = timed(
        model, tokenizer, texts, args.batch_size, args.max_new_tokens
    )
    single, single_s, single_cpu, single_tokens = timed(model, tokenizer, texts, 1, args.max_new_tokens)
    print(
        json.dumps(
            {
                "model": "smollm2-135m-instruct",
                "examples": len(texts),
                "batch_size": args.batch_size,
                "max_new_tokens": args.max_new_tokens,
                "threads": torch.get_num_threads(),
                "batched_seconds": round(batched_s, 2),
                "one_at_a_time_seconds": round(single_s, 2),
                "batched_tokens_per_second": round(batched_tokens / batched_s, 1),
                "one_at_a_time_tokens_per_second": round(single_tokens / single_s, 1),
                "batched_cpu_seconds": round(batched_cpu, 2),
                "one_at_a_time_cpu_seconds": round(single_cpu, 2),
                "speedup": round(single_s / batched_s, 2),
                "cpu_speedup": round(single_cpu / batched_cpu, 2),
                "same_output_share": sum(a == b for a, b in zip(batched, single)) / len(texts),
            }
        )
    )


if __name__ == "__main__":
    main()

"""The demo's ticket triage as reinforcement fine-tuning: grpo + LoRA from the untouched bundled SmolLM2.

    .venv/bin/python benchmarks/grpo_ticket.py --steps 20 --out /tmp/grpo-bench [--json]

The demo's generated tickets become OpenAI reinforcement records (the system and user turns as
the prompt; category, priority and product as fields). The grader is a `multi` over
`string_check`s of the three fields (mentioned anywhere, and exact in the JSON answer) plus a sandboxed
`python` grader for JSON validity: the untouched model never answers in JSON, so the mentions give
its sampled groups reward variance to learn from.
Reports held-out mean reward base vs tuned with 95% intervals (tunelab's own evaluation), the
reward curve from metrics.jsonl, steps and time.
"""

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

TUNELAB = [sys.executable, "-m", "tunelab.cli.main"]
VALID_JSON = """
import json


def grade(sample, item):
    try:
        return 1.0 if isinstance(json.loads(sample["output_text"]), dict) else 0.0
    except ValueError:
        return 0.0
"""


def field_mentioned(name: str) -> dict:
    """Partial credit the untouched model can earn: the field's value appears in the answer (case-insensitive)."""
    return {
        "type": "string_check",
        "name": name,
        "input": "{{sample.output_text}}",
        "reference": f"{{{{item.{name}}}}}",
        "operation": "ilike",
    }


def field_exact(name: str) -> dict:
    return {
        "type": "string_check",
        "name": f"{name}_exact",
        "input": f"{{{{sample.output_json.{name}}}}}",
        "reference": f"{{{{item.{name}}}}}",
        "operation": "eq",
    }


FIELDS = ("category", "priority", "product")
GRADER = {
    "type": "multi",
    "name": "ticket",
    "graders": {
        **{name: field_mentioned(name) for name in FIELDS},
        **{f"{name}_exact": field_exact(name) for name in FIELDS},
        "valid_json": {"type": "python", "name": "valid_json", "source": VALID_JSON},
    },
    # mentions give the untouched model a signal; exact JSON fields and validity reward the format
    "calculate_output": "0.1 * (category + priority + product) + 0.15 * (category_exact + priority_exact + "
    "product_exact) + 0.25 * valid_json",
}


def reinforcement_records(size: int, seed: int) -> list[dict]:
    from tunelab.data.demo import ticket

    rng = random.Random(seed)
    records = []
    for _ in range(size):
        messages = ticket(rng)["messages"]
        answer = json.loads(messages[-1]["content"])
        records.append({"messages": messages[:-1], **answer})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tunelab-grpo-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "tickets_rl.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in reinforcement_records(args.size, 42)))
    grader = args.out / "grader.json"
    grader.write_text(json.dumps(GRADER, indent=2))
    run = args.out / "run"
    began = time.time()
    command = [
        *TUNELAB,
        "train",
        "--data",
        str(data),
        "--method",
        "grpo",
        "--grader",
        str(grader),
        "--max-steps",
        str(args.steps),
        "--out",
        str(run),
        "--set",
        f"rl.k={args.k}",
        "--set",
        "rl.max_new_tokens=40",
        "--set",
        "eval.max_new_tokens=40",
        "--set",
        "eval.probes=false",
        "--set",
        "train.eval_steps=1000",
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"grpo run failed:\n{result.stderr[-2000:]}")
    evaluation = json.loads((run / "eval.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    report = {
        "steps": len([r for r in rows if "mean_reward" in r]),
        "wall_seconds": round(time.time() - began, 1),
        "held_out_prompts": evaluation["n_examples"],
        "base_mean_reward": evaluation["base"]["mean_reward"],
        "base_interval": evaluation["intervals"]["base"]["mean_reward"],
        "tuned_mean_reward": evaluation["tuned"]["mean_reward"],
        "tuned_interval": evaluation["intervals"]["tuned"]["mean_reward"],
        "difference": evaluation["difference"]["mean_reward"],
        "reward_curve": [round(r["mean_reward"], 3) for r in rows if "mean_reward" in r],
        "flat_groups": [round(r["flat_groups"], 2) for r in rows if "flat_groups" in r],
    }
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

"""DPO on HH-RLHF harmless pairs with the bundled SmolLM2 and LoRA, against supervised tuning on the same tokens.

    .venv/bin/python benchmarks/preference_quality.py --steps 30 --out /tmp/pref-bench [--json]

Prepares ../shared/data/hh-rlhf/harmless_base_pairs.jsonl, trains `dpo` for --steps optimizer
steps of 8 pairs, and evaluates on the held-out test split: the base model's log-likelihood
preference accuracy and the tuned model's implicit-reward accuracy against the base, each with
its 95% bootstrap interval. Then, in the same run, supervised LoRA on the chosen conversations
of the same pairs for the same steps, for time, tokens/s and training memory side by side.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless_base_pairs.jsonl"
TUNELAB = [sys.executable, "-m", "tunelab.cli.main"]


def tunelab(*args: str) -> dict:
    result = subprocess.run([*TUNELAB, *args, "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"tunelab {' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def chosen_conversations(prepared: Path, out: Path) -> Path:
    """The train split's prompt + chosen reply as chat records: supervised tuning on the pairs' good half."""
    with open(out, "w") as handle:
        for line in (prepared / "train.jsonl").read_text().splitlines():
            pair = json.loads(line)
            handle.write(json.dumps({"messages": pair["prompt"] + [pair["chosen"]]}) + "\n")
    return out


def train(data: Path, method: str, steps: int, out: Path, extra: list[str]) -> dict:
    began = time.time()
    summary = tunelab(
        "train",
        "--data",
        str(data),
        "--method",
        method,
        "--max-steps",
        str(steps),
        "--out",
        str(out),
        "--set",
        "eval.probes=false",
        *extra,
    )
    evaluation = json.loads((out / "eval.json").read_text())
    actual = evaluation.get("cost", {}).get("actual", {})
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r][1:]
    return {
        "method": method,
        "steps": summary["steps"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": round(time.time() - began, 1),
        "tokens_per_second": sum(speeds) / max(len(speeds), 1),
        "training_memory_gb": actual.get("peak_memory_gb"),
        "evaluation": evaluation,
    }


def preference_figures(evaluation: dict) -> dict:
    base, tuned = evaluation["base"], evaluation["tuned"]
    implicit = evaluation.get("preference") or {}
    return {
        "n_pairs": evaluation["n_examples"],
        "base_preference_accuracy": base["preference_accuracy"],
        "base_interval": evaluation["intervals"]["base"]["preference_accuracy"],
        "tuned_preference_accuracy": tuned["preference_accuracy"],
        "tuned_interval": evaluation["intervals"]["tuned"]["preference_accuracy"],
        "implicit_reward_accuracy": implicit.get("implicit_reward_accuracy"),
        "implicit_reward_interval": (implicit.get("intervals") or {}).get("implicit_reward_accuracy"),
        "implicit_reward_margin": implicit.get("implicit_reward_margin"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tunelab-preference-bench"))
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not HH.exists():
        sys.exit(f"{HH} is absent: this benchmark needs ../shared/data")
    args.out.mkdir(parents=True, exist_ok=True)
    prepared = args.out / "hh"
    if not (prepared / "manifest.json").exists():
        tunelab("data", "prepare", str(HH), "--out", str(prepared))
    extra = ["--set", f"model.max_length={args.max_length}"]
    dpo = train(prepared, "dpo", args.steps, args.out / "dpo", extra)
    sft = train(
        chosen_conversations(prepared, args.out / "chosen.jsonl"),
        "lora",
        args.steps,
        args.out / "sft",
        extra + ["--set", "eval.enabled=false"],
    )
    report = {
        "dpo": {**{k: v for k, v in dpo.items() if k != "evaluation"}, **preference_figures(dpo["evaluation"])},
        "sft_same_pairs": {k: v for k, v in sft.items() if k != "evaluation"},
    }
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

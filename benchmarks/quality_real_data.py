"""Quality bars of the methods issue on real third-party data, through the `tunelab` CLI.

    .venv/bin/python benchmarks/quality_real_data.py banking77 --method full --epochs 4 --lr 1e-4
    .venv/bin/python benchmarks/quality_real_data.py banking77 --method lora --epochs 4 --lr 1e-3
    .venv/bin/python benchmarks/quality_real_data.py gigaword --epochs 3

banking77: the bundled MiniLM trained on BANKING77's train.csv (tunelab's own 80/10/10 split of it,
so early stopping and validation never see the official test set), then scored on the official
test.csv (3,080 queries) with `tunelab eval`. The bar: accuracy >= 0.90 (full) / 0.85 (lora)
within 20 minutes of training on the 2-core CPU.

gigaword: the bundled SmolLM2 with LoRA on T0's gigaword headline prompts; held-out ROUGE-L of the
tuned model against the untouched base model on the same test split (base vs tuned is what
`tunelab train` reports after training). The 200 rows are split 60/10/30 so that 60 held-out
examples, not 20, decide the comparison.

Prints one JSON object with the commands, the figures and the wall times.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TUNELAB = str(Path(sys.executable).with_name("tunelab"))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tunelab(*args: str) -> tuple[dict, float, list[str]]:
    """(last JSON line, wall seconds, the command) of one `tunelab ... --json` call."""
    command = [TUNELAB, *args, "--json"]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - began, command


def banking77(args, run: Path) -> dict:
    trained, train_wall, train_command = tunelab(
        "train",
        "--data",
        str(DATA / "banking77" / "train.csv"),
        "--task",
        "classification",
        "--method",
        args.method,
        "--epochs",
        str(args.epochs),
        "--out",
        str(run),
        "--set",
        f"train.learning_rate={args.lr}",
        "--set",
        f"train.batch_size={args.batch_size}",
        "--set",
        "eval.probes=false",
    )
    scored, eval_wall, eval_command = tunelab(
        "eval", str(run), "--data", str(DATA / "banking77" / "test.csv"), "--no-baseline", "--no-probes"
    )
    tuned = scored["tuned"]
    return {
        "method": args.method,
        "parameters": trained["parameters"],
        "steps": trained["steps"],
        "train_seconds": trained["train_seconds"],
        "train_command_wall_s": round(train_wall, 1),
        "official_test": {
            "examples": scored.get("n_examples"),
            "accuracy": tuned["accuracy"],
            "macro_f1": tuned["macro_f1"],
            "intervals": scored.get("intervals", {}).get("tuned"),
        },
        "bar": 0.90 if args.method == "full" else 0.85,
        "eval_wall_s": round(eval_wall, 1),
        "commands": [" ".join(train_command), " ".join(eval_command)],
    }


def gigaword(args, run: Path) -> dict:
    trained, train_wall, command = tunelab(
        "train",
        "--data",
        str(DATA / "t0" / "gigaword_TLDR.jsonl"),
        "--method",
        "lora",
        "--epochs",
        str(args.epochs),
        "--out",
        str(run),
        "--set",
        f"train.learning_rate={args.lr}",
        "--set",
        "data.split=[0.6,0.1,0.3]",
        "--set",
        "eval.probes=false",
    )
    evaluation = json.loads((run / "eval.json").read_text())
    return {
        "method": "lora",
        "steps": trained["steps"],
        "train_seconds": trained["train_seconds"],
        "train_command_wall_s": round(train_wall, 1),
        "test_examples": len(evaluation.get("predictions", [])),
        "base": trained["metrics"]["base"],
        "tuned": trained["metrics"]["tuned"],
        "paired_differences": evaluation.get("difference"),
        "command": " ".join(command),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["banking77", "gigaword"])
    parser.add_argument("--method", default="full", help="banking77 only: full or lora")
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        result = banking77(args, run) if args.dataset == "banking77" else gigaword(args, run)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

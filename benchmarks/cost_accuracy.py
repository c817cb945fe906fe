"""Cost-planner accuracy on this machine: the memory estimate against the training memory a real
`tunelab train` run measured, and the calibrated time estimate against the run's training time.

    .venv/bin/python benchmarks/cost_accuracy.py PREPARED_DIR [--methods lora full] [--steps 20] [--repeats 2]

Memory: the run's eval.json carries `cost.actual.peak_memory_gb` (on CPU: the weights plus the exact
peak RSS rise during the training loop, read from the kernel's VmHWM after resetting it at the
start; see tunelab/training/memory.py) beside the planner's `per_device_memory_gb` for the same run.
Time: `tunelab cost estimate --calibrate` times two forward+backward+AdamW steps of the real model
shape; its FLOP/s applied to the tokens the run really processed, against the run's `train_seconds`.
Prints one JSON object.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TUNELAB = str(Path(sys.executable).with_name("tunelab"))


def run_once(data: str, method: str, steps: int) -> dict:
    """Train for `steps` with evaluation off; the run's summary and the cost block of its eval.json."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        done = subprocess.run(
            [
                TUNELAB,
                "train",
                "--data",
                data,
                "--method",
                method,
                "--max-steps",
                str(steps),
                "--out",
                str(run),
                "--set",
                "eval.enabled=false",
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        return {"summary": summary, "cost": json.loads((run / "eval.json").read_text())["cost"]}


def predicted_seconds(data: str, method: str, tokens_seen: int) -> tuple[float, dict]:
    """Seconds the calibrated estimate gives for `tokens_seen` tokens, and the calibration itself."""
    from tunelab.cost.estimate import estimate

    planned = estimate(None, method, data=data, epochs=1, gpu="cpu", calibrate=True)
    flops_per_token = planned["flops"] / planned["train_tokens"]
    calibration = planned["calibration"]
    return tokens_seen * flops_per_token / calibration["flops_per_second"], calibration


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--methods", nargs="+", default=["lora", "full"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for method in args.methods:
        for repeat in range(args.repeats):
            measured = run_once(args.data, method, args.steps)
            cost, summary = measured["cost"], measured["summary"]
            seconds, calibration = predicted_seconds(args.data, method, cost["actual"]["train_tokens"])
            estimate_gb, actual_gb = cost["estimate"]["per_device_memory_gb"], cost["actual"]["peak_memory_gb"]
            rows.append(
                {
                    "method": method,
                    "repeat": repeat + 1,
                    "steps": summary["steps"],
                    "memory_estimate_gb": estimate_gb,
                    "memory_measured_gb": actual_gb,
                    "memory_ratio": round(estimate_gb / actual_gb, 3),
                    "measured_as": cost["actual"]["memory_measured_as"],
                    "calibrated_gflops_per_second": round(calibration["flops_per_second"] / 1e9, 2),
                    "tokens": cost["actual"]["train_tokens"],
                    "predicted_seconds": round(seconds, 1),
                    "measured_seconds": summary["train_seconds"],
                    "time_ratio": round(seconds / summary["train_seconds"], 3),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"steps": args.steps, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()

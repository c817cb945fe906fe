"""Cost-planner accuracy on this machine: memory estimate vs peak RSS of a real `tunelab train`
run, and calibrated time estimate vs the run's measured training time.

    .venv/bin/python benchmarks/cost_accuracy.py PREPARED_DIR [--methods lora full] [--steps 3]

Peak RSS increase = max RSS of the training process minus max RSS of a process that only imports
torch, transformers and peft and loads the same model. transformers memory-maps the safetensors
weights, so loading alone leaves them non-resident (+27 MB measured); the training process
touches every weight, so the increase contains the weights and is compared with the estimate's
total per-device memory. Prints one JSON object.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "sys.stderr.write(r.stderr[-2000:]); print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else '{}'); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
BASELINE = ("import torch, transformers, peft; from tunelab.models.loading import load_model; "
            "m = load_model('smollm2-135m-instruct', 'causal-lm', device='cpu'); print('{}')")


def peak_rss(command: list[str]) -> tuple[dict, int]:
    """(last JSON line of stdout, peak RSS in bytes) of one child process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-2]), int(lines[-1])


def train_command(data: str, method: str, steps: int, out: Path) -> list[str]:
    return [str(VENV_BIN / "tunelab"), "train", "--data", data, "--method", method, "--max-steps", str(steps), "--out", str(out),
            "--set", "eval.enabled=false", "--json"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--methods", nargs="+", default=["lora", "full"])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    from tunelab.cost.estimate import estimate

    _, baseline = peak_rss([sys.executable, "-c", BASELINE])
    results = {"baseline_rss_gb": round(baseline / 1e9, 3), "runs": []}
    for method in args.methods:
        planned = estimate(None, method, data=args.data, epochs=1, gpu="cpu", calibrate=True)
        with tempfile.TemporaryDirectory() as folder:
            summary, peak = peak_rss(train_command(args.data, method, args.steps, Path(folder) / "run"))
        above_weights = planned["per_device_memory_gb"] - planned["memory_breakdown_gb"]["weights"]
        measured = (peak - baseline) / 1e9
        steps = summary.get("steps") or args.steps
        seconds = summary.get("train_seconds")
        tokens = summary.get("trained_tokens")
        # time predicted for the tokens this short run really processed, at the calibrated FLOP/s
        predicted = None
        if seconds:
            rate = planned["train_tokens"] / ((planned["hours"]["low"] + planned["hours"]["high"]) / 2 * 3600)
            predicted = (steps * planned["micro_batch"] * planned["seq_len"]) / rate
        results["runs"].append({
            "method": method, "estimate_above_weights_gb": round(above_weights, 3), "measured_rss_increase_gb": round(measured, 3),
            "memory_ratio": round(planned["per_device_memory_gb"] / measured, 3) if measured > 0 else None,
            "estimate_total_gb": planned["per_device_memory_gb"], "peak_rss_gb": round(peak / 1e9, 3),
            "calibrated_flops_per_second": round(planned["calibration"]["flops_per_second"] / 1e9, 2),
            "predicted_seconds": round(predicted, 1) if predicted else None, "measured_seconds": seconds,
            "time_ratio": round(predicted / seconds, 3) if predicted and seconds else None, "trained_tokens": tokens, "steps": steps})
    print(json.dumps(results))


if __name__ == "__main__":
    main()

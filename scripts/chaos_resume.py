#!/usr/bin/env python3
"""Chaos test of crash safety: kill a real `tunelab train` with SIGKILL at random steps, resume, compare.

One uninterrupted run (A) and one run (B) that is killed `--kills` times at random optimizer steps
and resumed with `tunelab train --resume B` after each kill. Both use the same seed, a tiny
random-init Llama, LoRA, `--save-steps 3`; the per-step losses, the final validation loss and the
trained adapter weights of B must match A's (within --tolerance; on CPU in float32 they are equal).

    .venv/bin/python scripts/chaos_resume.py --kills 3 [--seed 7] [--work DIR] [--json]

Exit 0 when every kill was survived and the deviation is within tolerance, 1 otherwise.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNELAB = Path(sys.executable).with_name("tunelab")
STEP_LINE = re.compile(rb"step (\d+)/\d+ loss")


def write_data(path: Path, count: int = 120) -> Path:
    rng = random.Random(3)
    with open(path, "w") as handle:
        for i in range(count):
            user = f"question {i} " + " ".join(rng.choice("abcdefgh") * 3 for _ in range(8))
            handle.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": user},
                            {"role": "assistant", "content": f"answer {i % 5} " + "y" * (i % 7)},
                        ]
                    }
                )
                + "\n"
            )
    return path


def train_args(data: Path, model: Path, out: Path, max_steps: int, save_steps: int) -> list[str]:
    return [
        "train",
        "--data",
        str(data),
        "--model",
        str(model),
        "--method",
        "lora",
        "--max-steps",
        str(max_steps),
        "--save-steps",
        str(save_steps),
        "--seed",
        "1",
        "--out",
        str(out),
        "--set",
        "train.batch_size=4",
        "--set",
        "eval.enabled=false",
        "--set",
        "train.save_total_limit=2",
    ]


def environment() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TUNELAB_QUIET": "0"}


def run_until(args: list[str], kill_at: int | None, log: Path, timeout: float = 600) -> str:
    """Run `tunelab ARGS`; SIGKILL it once its own output reports step `kill_at`. 'killed', or its exit code."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(TUNELAB), *args], stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=environment()
        )
    began, seen = time.time(), 0
    while time.time() - began < timeout:
        if process.poll() is not None:
            return str(process.returncode)
        steps = [int(m) for m in STEP_LINE.findall(log.read_bytes())]
        seen = max(steps, default=0)
        if kill_at is not None and seen >= kill_at:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return "timeout"


def losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in records if isinstance(r.get("loss"), (int, float))}


def final_eval_loss(run: Path):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next((r.get("eval_loss") for r in reversed(records) if "eval_loss" in r), None)


def adapter_deviation(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = (
        load_file(str(a / "adapter" / "adapter_model.safetensors")),
        load_file(str(b / "adapter" / "adapter_model.safetensors")),
    )
    if wa.keys() != wb.keys():
        return float("inf")
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def kill_steps(kills: int, max_steps: int, rng: random.Random) -> list[int]:
    """Distinct random steps in 2..max_steps-1, increasing, so every kill lands mid-run."""
    return sorted(rng.sample(range(2, max_steps), kills))


def chaos(work: Path, kills: int, seed: int, max_steps: int = 30, save_steps: int = 3) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import tiny_llama

    model, data = tiny_llama(), write_data(work / "chat.jsonl")
    reference, chaotic = work / "A", work / "B"
    code = run_until(train_args(data, model, reference, max_steps, save_steps), None, work / "A.log")
    if code != "0":
        raise SystemExit(f"uninterrupted run failed (exit {code}); see {work / 'A.log'}")
    targets = kill_steps(kills, max_steps, random.Random(seed))
    outcomes = []
    for number, target in enumerate(targets + [None]):
        args = (
            train_args(data, model, chaotic, max_steps, save_steps)
            if number == 0
            else ["train", "--resume", str(chaotic)]
        )
        outcomes.append(run_until(args, target, work / f"B{number}.log"))
    a, b = losses(reference), losses(chaotic)
    steps = sorted(set(a) & set(b))
    loss_deviation = max((abs(a[s] - b[s]) for s in steps), default=float("inf"))
    eval_a, eval_b = final_eval_loss(reference), final_eval_loss(chaotic)
    survived = sum(o == "killed" for o in outcomes[:-1]) if outcomes[-1] == "0" else 0
    return {
        "kills_planned": kills,
        "kill_steps": targets,
        "outcomes": outcomes,
        "kills_survived": survived,
        "steps_compared": len(steps),
        "steps_expected": max_steps,
        "max_loss_deviation": loss_deviation,
        "final_eval_loss": [eval_a, eval_b],
        "eval_loss_deviation": abs(eval_a - eval_b) if eval_a is not None and eval_b is not None else float("inf"),
        "adapter_max_abs_deviation": adapter_deviation(reference, chaotic) if outcomes[-1] == "0" else float("inf"),
    }


def passed(result: dict, tolerance: float) -> bool:
    return (
        result["kills_survived"] == result["kills_planned"]
        and result["steps_compared"] == result["steps_expected"]
        and max(result["max_loss_deviation"], result["eval_loss_deviation"]) <= tolerance
        and result["adapter_max_abs_deviation"] <= tolerance
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="Seed of the kill steps (default: random).")
    parser.add_argument("--max-steps", type=int, default=30)
    parser.add_argument("--save-steps", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--work", type=Path, default=None, help="Working folder (default: a new temporary one).")
    parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    work = options.work or Path(tempfile.mkdtemp(prefix="chaos-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.time()
    result = chaos(work, options.kills, seed, options.max_steps, options.save_steps)
    result.update(
        seed=seed, work=str(work), seconds=round(time.time() - began, 1), passed=passed(result, options.tolerance)
    )
    if options.json:
        print(json.dumps(result))
    else:
        print(
            f"kills survived: {result['kills_survived']}/{options.kills} at steps {result['kill_steps']} "
            f"(seed {seed}); steps compared {result['steps_compared']}/{options.max_steps}; "
            f"max loss deviation {result['max_loss_deviation']:.3g}; final eval_loss deviation "
            f"{result['eval_loss_deviation']:.3g}; adapter max |dw| {result['adapter_max_abs_deviation']:.3g}; "
            f"{'PASS' if result['passed'] else 'FAIL'} in {result['seconds']}s"
        )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

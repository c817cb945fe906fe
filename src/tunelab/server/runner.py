"""One job's training, run as a child process of the service: `python -m tunelab.server.runner JOB_DIR PARENT_PID`.

A crash here never takes the service down, and the child dies with its parent (PR_SET_PDEATHSIG),
so a killed service leaves a run folder that the next start resumes from its last checkpoint.
Reads JOB_DIR/spec.json; writes JOB_DIR/result.json on success or JOB_DIR/error.json on failure.
"""

import os
import shutil
import signal
import sys
import traceback
from pathlib import Path

from tunelab.errors import TunelabError
from tunelab.runs import read_json, write_json

ACCURACY_EXAMPLES = 32


def die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def mean_token_accuracy(model, tokenizer, records: list[dict], task: str, max_length: int) -> float | None:
    """Share of trained (assistant) tokens whose next-token prediction is right, as OpenAI reports it."""
    import torch

    from tunelab.training.batches import IGNORE, collate_padded, encode_record

    if not records or task != "causal-lm":
        return None
    correct = total = 0
    examples = [encode_record(r, tokenizer, task, max_length=max_length) for r in records[:ACCURACY_EXAMPLES]]
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(examples), 8):
            batch = collate_padded(examples[start : start + 8], tokenizer.pad_token_id or 0, task)
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits
            targets = batch["targets"].to(device)
            keep = targets != IGNORE
            correct += int((logits.argmax(-1)[keep] == targets[keep]).sum())
            total += int(keep.sum())
    return round(correct / total, 6) if total else None


def accuracies(run_dir: Path) -> dict:
    from tunelab.data.prepare import load_prepared
    from tunelab.inference.engine import load_run, run_config

    loaded = load_run(run_dir)
    config = run_config(run_dir)
    data = load_prepared(Path(config["data"]["path"][0]))
    max_length = config["model"]["max_length"]
    return {
        "train": mean_token_accuracy(loaded.model, loaded.tokenizer, data.train, loaded.task, max_length),
        "validation": mean_token_accuracy(loaded.model, loaded.tokenizer, data.validation, loaded.task, max_length),
    }


def run(job_dir: Path) -> dict:
    from tunelab.config import load_config
    from tunelab.jobs import finetune

    spec = read_json(job_dir / "spec.json")
    run_dir = Path(spec["overrides"]["out"])
    resume = run_dir if spec.get("resume") and (run_dir / "config.yaml").exists() else None
    if resume is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    summary = finetune.run(load_config(None, spec["overrides"]), resume=resume)
    return {"summary": summary, "accuracy": accuracies(run_dir)}


def main() -> None:
    job_dir, parent_pid = Path(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent_pid)
    (job_dir / "runner.pid").write_text(str(os.getpid()))
    (job_dir / "error.json").unlink(missing_ok=True)
    try:
        write_json(job_dir / "result.json", run(job_dir))
    except TunelabError as exc:
        write_json(job_dir / "error.json", {"code": "training_failed", "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # an unexpected failure still ends the job with a reason, not a silent crash
        traceback.print_exc()
        write_json(job_dir / "error.json", {"code": "server_error", "message": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)


if __name__ == "__main__":
    main()

"""One job's training, run as a child process of the service: `python -m tunelab.server.runner JOB_DIR PARENT_PID`.

A crash here never takes the service down, and the child dies with its parent (PR_SET_PDEATHSIG),
so a killed service leaves a run folder that the next start resumes from its last checkpoint.
Reads JOB_DIR/spec.json; writes JOB_DIR/result.json on success or JOB_DIR/error.json on failure.
After training, the checkpoints at the ends of the last epochs become adapter folders under
JOB_DIR/checkpoints, so each serves chat as its own `ft:...:ckpt-step-N` model.
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
EPOCH_CHECKPOINTS = 2  # besides the final model, as OpenAI keeps the last three epochs' models


def die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def mean_token_accuracy(loaded, records: list[dict], max_length: int) -> float | None:
    """Share of trained (assistant) tokens whose next-token prediction is right, as OpenAI reports it."""
    from tunelab.evaluation.predict import language_model_stats

    if not records or loaded.task != "causal-lm" or "messages" not in records[0] and "prompt" not in records[0]:
        return None
    if "chosen" in records[0]:  # preference pairs: the accuracy of imitating the chosen reply
        records = [{"messages": [*r["prompt"], r["chosen"]]} for r in records]
    _, counts, correct = language_model_stats(
        loaded.model, loaded.tokenizer, records[:ACCURACY_EXAMPLES], loaded.task, max_length=max_length
    )
    return round(sum(correct) / sum(counts), 6) if sum(counts) else None


def accuracies(run_dir: Path) -> dict:
    from tunelab.data.prepare import load_prepared
    from tunelab.inference.engine import load_run
    from tunelab.runs import read_config

    loaded = load_run(run_dir)
    config = read_config(run_dir)
    data = load_prepared(Path(config.data.path[0]))
    return {
        "train": mean_token_accuracy(loaded, data.train, config.model.max_length),
        "validation": mean_token_accuracy(loaded, data.validation, config.model.max_length),
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
    checkpoints = export_epoch_checkpoints(run_dir, job_dir / "checkpoints", spec["steps_per_epoch"], summary["steps"])
    return {"summary": summary, "accuracy": accuracies(run_dir), "checkpoints": checkpoints}


def export_epoch_checkpoints(run_dir: Path, out: Path, steps_per_epoch: int, final_step: int) -> list[dict]:
    """Adapter folders of the last epochs' end checkpoints before the final step: {"step", "adapter_dir"} each."""
    from safetensors.torch import load_file

    from tunelab.inference.engine import load_run

    saved = sorted(int(folder.name.split("-")[-1]) for folder in (run_dir / "checkpoints").glob("step-*"))
    steps = [step for step in saved if step % steps_per_epoch == 0 and step < final_step][-EPOCH_CHECKPOINTS:]
    if not steps or not (run_dir / "adapter").is_dir():
        return []
    model = load_run(run_dir).model
    exported = []
    for step in steps:
        weights = load_file(str(run_dir / "checkpoints" / f"step-{step:07d}" / "trainable.safetensors"))
        model.load_state_dict(weights, strict=False)
        model.save_pretrained(str(out / f"step-{step}"))
        exported.append({"step": step, "adapter_dir": str(out / f"step-{step}")})
    return exported


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

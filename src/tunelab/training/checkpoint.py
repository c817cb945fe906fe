"""Crash-safe checkpoints: written to a temporary folder, checksummed, renamed into place, and
`latest` updated last. A checkpoint whose checksums do not match is skipped for the previous one.

A checkpoint holds only what training changes (trainable weights, optimizer, RNG states, the
step and the loop's bookkeeping, metrics so far in metrics.jsonl). There is no scheduler state to
save: data order and learning rate are pure functions of the step (loop.step_examples,
schedule.learning_rate_at), so a resumed run sees the same batches at the same rates.

A failing write (disk full, folder gone) stops with a TrainingError naming the checkpoint; the
partial folder is removed and `latest` still names the previous, intact checkpoint.
"""

import json
import os
import random
import shutil
from pathlib import Path

import torch

from tunelab.errors import TrainingError
from tunelab.progress import say
from tunelab.runs import atomic_write_text, sha256_file

CHECKSUMS = "checksums.json"


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


BEST_WEIGHTS = "best.safetensors"


def save_checkpoint(
    run_dir: Path, step: int, model, optimizer, loop_state: dict, keep: int, best_weights: dict | None = None
) -> Path:
    """`best_weights` (early stopping's best trainable weights) travel with the checkpoint, so a resumed run
    still restores them when no later evaluation beats them."""
    root = run_dir / "checkpoints"
    final = root / f"step-{step:07d}"
    partial = root / f".step-{step:07d}.partial"
    try:
        _write(partial, final, step, model, optimizer, loop_state, best_weights)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        previous = (root / "latest").read_text().strip() if (root / "latest").is_file() else None
        kept = f"the last good checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise TrainingError(
            f"cannot write checkpoint {final.name} in {root}: {exc.strerror or exc}; {kept}",
            "free disk space or fix the folder's permissions, then `tunelab train --resume RUN_DIR`",
        ) from None
    _prune(root, keep)
    return final


def _write(partial: Path, final: Path, step: int, model, optimizer, loop_state: dict, best_weights) -> None:
    """Files into `partial`, checksums last, then one rename; `latest` is updated after it."""
    from safetensors.torch import save_file

    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(trainable_state(model), str(partial / "trainable.safetensors"))
    if best_weights is not None:
        save_file(best_weights, str(partial / BEST_WEIGHTS))
    torch.save({"optimizer": optimizer.state_dict(), "rng": rng_state()}, partial / "optimizer.pt")
    (partial / "state.json").write_text(json.dumps({"step": step, **loop_state}))
    sums = {p.name: sha256_file(p) for p in sorted(partial.iterdir())}
    (partial / CHECKSUMS).write_text(json.dumps(sums))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    atomic_write_text(final.parent / "latest", final.name)


def _prune(root: Path, keep: int) -> None:
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def is_intact(folder: Path) -> bool:
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
        return bool(sums) and all(sha256_file(folder / name) == digest for name, digest in sums.items())
    except (OSError, ValueError):
        return False


def latest_intact(run_dir: Path) -> Path | None:
    """The newest checkpoint whose files match their checksums; warns about any skipped."""
    root = run_dir / "checkpoints"
    for folder in sorted(root.glob("step-*"), reverse=True):
        if is_intact(folder):
            return folder
        say(f"[yellow]warning:[/] checkpoint {folder.name} is incomplete or corrupted; using the previous one")
    return None


def load_checkpoint(folder: Path, model, optimizer) -> dict:
    """Restore weights, optimizer and RNG; returns the loop state (step included).

    optimizer.pt is read with weights_only=True, so even a tampered checkpoint cannot run code."""
    import pickle

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = next(model.parameters()).device
    try:
        weights = load_file(str(folder / "trainable.safetensors"), device=str(device))
        model.load_state_dict(weights, strict=False)
        saved = torch.load(folder / "optimizer.pt", weights_only=True, map_location=device)
        optimizer.load_state_dict(saved["optimizer"])
        set_rng_state(saved["rng"])
        return json.loads((folder / "state.json").read_text())
    except (OSError, pickle.UnpicklingError, SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise TrainingError(
            f"cannot read checkpoint {folder.name} in {folder.parent}: {str(exc).splitlines()[0][:200]}",
            "delete that folder to resume from an earlier checkpoint, or start the run afresh",
        ) from None


def saved_best_weights(folder: Path) -> dict | None:
    """The early-stopping best weights a checkpoint carries, if any (on the CPU, like trainable_state)."""
    from safetensors.torch import load_file

    path = folder / BEST_WEIGHTS
    return load_file(str(path)) if path.exists() else None

"""Crash safety: checksummed checkpoints, fallback past a corrupted one, clear stops on unwritable folders and full disks."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_llama

from tunelab.errors import TrainingError, TunelabError
from tunelab.training import checkpoint

TUNELAB = Path(sys.executable).with_name("tunelab")
ROOT = Path(__file__).resolve().parents[1]


def tiny_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_checkpoint_round_trip_and_latest_updated_last(tmp_path):
    model, optimizer = tiny_state()
    for step in (3, 6, 9):
        checkpoint.save_checkpoint(tmp_path, step, model, optimizer, {"trained_tokens": step}, keep=2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-0000006", "step-0000009"]
    assert (root / "latest").read_text() == "step-0000009"
    assert checkpoint.latest_intact(tmp_path) == root / "step-0000009"
    state = checkpoint.load_checkpoint(root / "step-0000009", *tiny_state())
    assert state == {"step": 9, "trained_tokens": 9}


@pytest.mark.parametrize("damage", ["truncate", "delete", "no_checksums", "garbage_checksums"])
def test_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path, monkeypatch, damage):
    model, optimizer = tiny_state()
    for step in (3, 6):
        checkpoint.save_checkpoint(tmp_path, step, model, optimizer, {}, keep=3)
    newest = tmp_path / "checkpoints" / "step-0000006"
    target = {
        "truncate": "trainable.safetensors",
        "delete": "optimizer.pt",
        "no_checksums": checkpoint.CHECKSUMS,
        "garbage_checksums": checkpoint.CHECKSUMS,
    }[damage]
    if damage == "truncate":
        os.truncate(newest / target, (newest / target).stat().st_size // 2)
    elif damage == "garbage_checksums":
        (newest / target).write_bytes(b"\x00{not json")
    else:
        (newest / target).unlink()
    said = []
    monkeypatch.setattr(checkpoint, "say", said.append)
    assert checkpoint.latest_intact(tmp_path).name == "step-0000003"
    assert "step-0000006" in said[0] and "previous" in said[0]


def test_disk_full_at_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    model, optimizer = tiny_state()
    checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, {}, keep=2)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(TrainingError) as caught:
        checkpoint.save_checkpoint(tmp_path, 6, model, optimizer, {}, keep=2)
    message = str(caught.value)
    assert "cannot write checkpoint step-0000006" in message and "No space left on device" in message
    assert "step-0000003 is intact" in message and "--resume" in message
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-0000003"]  # no partial folder left behind
    assert (root / "latest").read_text() == "step-0000003" and checkpoint.is_intact(root / "step-0000003")


def test_failing_first_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    model, optimizer = tiny_state()
    monkeypatch.setattr(
        torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system"))
    )
    with pytest.raises(TunelabError, match="Read-only file system; no earlier checkpoint exists"):
        checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, {}, keep=2)


def chat_file(path: Path, count: int = 110) -> Path:
    with open(path, "w") as handle:
        for i in range(count):
            handle.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": f"question {i} about item {i % 9}"},
                            {"role": "assistant", "content": f"answer {i % 5}"},
                        ]
                    }
                )
                + "\n"
            )
    return path


def run_config(data: Path, out: Path, **extra):
    from tunelab.config import load_config

    return load_config(
        None,
        {
            "data.path": [str(data)],
            "model.name": str(tiny_llama()),
            "method": "lora",
            "out": str(out),
            "train.max_steps": 6,
            "train.save_steps": 2,
            "train.batch_size": 4,
            "train.seed": 1,
            "eval.enabled": False,
            "tracking.enabled": False,
            "train.save_total_limit": 3,
            **extra,
        },
    )


def step_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_resume_past_a_corrupted_checkpoint_gives_the_same_losses(tmp_path, monkeypatch):
    """The newest checkpoint is truncated: resume warns, restarts from the previous one, and the losses still match."""
    from tunelab.jobs import finetune

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = chat_file(tmp_path / "chat.jsonl")
    finetune.run(run_config(data, tmp_path / "A"))
    data = tmp_path / "A" / "data"  # prepared once
    finetune.run(run_config(data, tmp_path / "B", **{"train.max_steps": 4}))  # "killed" after step 4
    config = (tmp_path / "B" / "config.yaml").read_text().replace("max_steps: 4", "max_steps: 6")
    (tmp_path / "B" / "config.yaml").write_text(config)
    (tmp_path / "B" / "summary.json").unlink()
    newest = tmp_path / "B" / "checkpoints" / "step-0000004"
    os.truncate(newest / "trainable.safetensors", 100)
    said = []
    monkeypatch.setattr(checkpoint, "say", said.append)
    finetune.run(run_config(data, tmp_path / "B"), resume=tmp_path / "B")
    assert any("step-0000004 is incomplete or corrupted" in line for line in said)
    a, b = step_losses(tmp_path / "A"), step_losses(tmp_path / "B")
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-5


def tunelab(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(TUNELAB), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_unwritable_run_folder_stops_before_training(tmp_path):
    """Root ignores permission bits, so the run folder is put under a regular file: no one can create it."""
    (tmp_path / "file.txt").write_text("not a folder")
    data = chat_file(tmp_path / "chat.jsonl")
    result = tunelab(
        "train", "--data", data, "--model", tiny_llama(), "--max-steps", "1", "--out", tmp_path / "file.txt" / "run"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output
    assert "cannot write the run folder" in output and "Not a directory" in output
    assert "step 1/" not in output and "Tokenising" not in output  # stopped before any data or model work


@pytest.mark.slow
def test_chaos_resume_three_kills():
    """scripts/chaos_resume.py: three SIGKILLs at random steps, three resumes, the same losses and adapter."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chaos_resume.py"), "--kills", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["kills_survived"] == 3 and figures["max_loss_deviation"] <= 1e-5

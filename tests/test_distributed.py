"""Data parallelism through Accelerate on CPU (gloo): 2 processes, and 2 "machines" on 127.0.0.1,
follow the loss curve of 1 process with the same global batch."""

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import tiny_llama

pytestmark = pytest.mark.slow
TUNELAB = str(Path(sys.executable).with_name("tunelab"))


@pytest.fixture(scope="module")
def common(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    rng = random.Random(1)
    with open(folder / "chat.jsonl", "w") as handle:
        for i in range(160):
            handle.write(
                json.dumps(
                    {
                        "messages": [
                            {
                                "role": "user",
                                "content": f"item {i} " + " ".join(rng.choice("abcdefgh") * 3 for _ in range(8)),
                            },
                            {"role": "assistant", "content": f"answer {i % 7} " + "x" * (i % 11)},
                        ]
                    }
                )
                + "\n"
            )
    # dropout off: each rank draws its own masks, so only a deterministic model can match exactly
    return [
        "train",
        "--data",
        str(folder / "chat.jsonl"),
        "--model",
        str(tiny_llama()),
        "--max-steps",
        "4",
        "--set",
        "lora.dropout=0",
        "--set",
        "eval.enabled=false",
        "--set",
        "tracking.enabled=false",
    ], folder


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def run(args, env_extra=None, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen(
        [TUNELAB, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def finished(process) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-2000:]
    return output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(common):
    args, folder = common
    finished(run(args + ["--out", str(folder / "one")]))
    finished(run(args + ["--out", str(folder / "two"), "--num-processes", "2"]))
    one, two = losses(folder / "one"), losses(folder / "two")
    assert len(one) == len(two) == 4
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-4
    assert not (folder / "two" / "metrics.jsonl").read_text().count('"step": 1,') > 1  # only rank 0 logs


def test_two_machines_on_loopback_match_one(common):
    args, folder = common
    if not (folder / "one").exists():
        finished(run(args + ["--out", str(folder / "one")]))
    port = str(free_port())
    launches = [
        run(
            args
            + [
                "--out",
                str(folder / "nodes"),
                "--num-processes",
                "2",
                "--num-machines",
                "2",
                "--machine-rank",
                str(rank),
                "--main-process-ip",
                "127.0.0.1",
                "--main-process-port",
                port,
            ]
        )
        for rank in (0, 1)
    ]
    for process in launches:
        finished(process)
    assert max(abs(a - b) for a, b in zip(losses(folder / "one"), losses(folder / "nodes"))) < 1e-4

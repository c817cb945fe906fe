"""Peak memory of `prepare` against input size: it must stay flat (streaming), under 2 GB at 1M rows.

Writes chat JSONL files of growing size (1M rows is about 300 MB), prepares each in a fresh
child process and reports the child's peak RSS, rows per second and MB per second. Run from the
project root:

    .venv/bin/python benchmarks/prepare_memory.py [--rows 100000,1000000] [--model whitespace] [--json]
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
from pathlib import Path
from tunelab.data.config import DataConfig
from tunelab.data.prepare import prepare_dataset
from tunelab.progress import set_quiet
set_quiet(True)
manifest = prepare_dataset([Path(sys.argv[1])], Path(sys.argv[2]), DataConfig(tokenizer=sys.argv[3]))
print(manifest["counts"])
"""


def write_rows(path: Path, rows: int, seed: int = 0) -> float:
    """A chat file of `rows` distinct conversations (~300 bytes each); returns its size in MB."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(30_000)]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(rows):
            user = " ".join(rng.choices(vocab, k=rng.randint(12, 24)))
            answer = " ".join(rng.choices(vocab, k=rng.randint(16, 32)))
            handle.write(
                json.dumps(
                    {"messages": [{"role": "user", "content": f"{i} {user}"}, {"role": "assistant", "content": answer}]}
                )
                + "\n"
            )
    return path.stat().st_size / 1e6


def measure(rows: int, model: str, work: Path) -> dict:
    source = work / f"chat-{rows}.jsonl"
    megabytes = write_rows(source, rows)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(work / f"out-{rows}"), model], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux; max over children so far
    source.unlink()
    return {
        "rows": rows,
        "input_mb": round(megabytes, 1),
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(megabytes / seconds, 2),
        "peak_rss_mb": round(peak / 1024),
        "grew": peak > before,
        "counts": done.stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts, ascending")
    parser.add_argument("--model", default="whitespace", help="tokenizer for token counts ('whitespace' is fastest)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as tmp:
        results = [measure(int(rows), args.model, Path(tmp)) for rows in args.rows.split(",")]
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

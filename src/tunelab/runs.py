"""A run folder: resolved config, per-step metrics, evaluation, model card, weights.

Files are written atomically (temporary file, then rename) so that a killed process never
leaves a half-written file that a later reader would trust.
"""

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tunelab.errors import TunelabError

MIN_FREE_BYTES = 500_000_000  # refuse to start a run that could not even write its first checkpoint


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hash_file_into(digest, path: Path) -> None:
    """Stream a file's bytes into a hashlib digest (constant memory for multi-GB weights)."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    hash_file_into(digest, path)
    return digest.hexdigest()


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def new_run_dir(out: str | None, method: str, root: Path) -> Path:
    """The run folder to write: `out` if given, else root/<UTC timestamp>-<method>."""
    if out:
        path = Path(out)
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{method}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise TunelabError(
            f"cannot write the run folder {path}: {exc.strerror}", "choose a writable --out folder"
        ) from None
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise TunelabError(
            f"only {free / 1e6:.0f} MB free on the disk of {path}; a run needs at least "
            f"{MIN_FREE_BYTES / 1e6:.0f} MB for data, checkpoints and weights",
            "free space or choose another --out",
        )
    return path


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step, appended and flushed at once."""

    def __init__(self, path: Path):
        self.path = path
        self.listeners = []  # e.g. a tracker's log_step, called with each record after it is written

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        for listener in self.listeners:
            listener(record)

    def truncate_after(self, step: int) -> None:
        """On resume, drop records logged after the checkpoint we restart from."""
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def read_config(run_dir: Path):
    """The resolved RunConfig a run saved (every value it used); the one way to read a run's config.yaml."""
    from tunelab.config import load_config
    from tunelab.errors import ConfigError

    if not (Path(run_dir) / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run folder (no config.yaml)", "pass the --out folder of a run")
    return load_config(Path(run_dir) / "config.yaml")


def fingerprint(config) -> str:
    """The identity of a run request (the config as asked for, before defaults follow the data)."""
    import hashlib

    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def unfinished_run_of(config) -> Path | None:
    """`--resume auto`: the newest unfinished run folder started with the same config, if any."""
    from tunelab import paths

    root = Path(config.out).parent if config.out else paths.runs_root()
    wanted = fingerprint(config)
    candidates = [
        request.parent
        for request in root.glob("*/request.json")
        if read_json(request).get("fingerprint") == wanted and not (request.parent / "summary.json").exists()
    ]
    return max(candidates, key=lambda folder: folder.stat().st_mtime, default=None)

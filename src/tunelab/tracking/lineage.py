"""Lineage of a run: what data, which base weights, which code and libraries, on what hardware.

Written to run_dir/lineage.json and logged as MLflow tags. Hashing a model's weights reads every
byte once; the result is cached in the tunelab home, keyed by each file's path, size and mtime.
"""

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from tunelab import __version__, paths
from tunelab.runs import atomic_write_text, hash_file_into, write_json

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "mlflow", "optuna")


def weight_files(folder: Path) -> list[Path]:
    """Weights files of a model folder; safetensors alone when present (the .bin beside them is a copy)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return safetensors or files


def _hash_cache() -> Path:
    return paths.home() / "weights-hashes.json"


def _read_cache() -> dict:
    try:
        return json.loads(_hash_cache().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def weights_hash(folder: Path) -> str | None:
    """sha256 over the folder's weight files (names and bytes); None when it has none."""
    files = weight_files(Path(folder))
    if not files:
        return None
    key = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files])
    cache = _read_cache()
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        hash_file_into(digest, path)
    value = digest.hexdigest()
    cache[key] = value
    atomic_write_text(_hash_cache(), json.dumps(cache))
    return value


def base_model_hash(name: str) -> str | None:
    """The base model's weights hash, or None for a hub id that is not a local folder."""
    try:
        from tunelab.models.loading import resolve_model_path

        folder = Path(resolve_model_path(name))
    except Exception:  # an unresolvable model is the trainer's problem to report, not lineage's
        return None
    return weights_hash(folder) if folder.is_dir() else None


def git_commit(folder: Path | None = None) -> str | None:
    """HEAD of the git working folder the user runs in (with '+dirty' when it has changes), or None."""
    cwd = str(folder or Path.cwd())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def library_versions() -> dict:
    versions = {"tunelab": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware() -> dict:
    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "machine": platform.machine()}
    try:
        import torch

        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
            info["cuda_device_count"] = torch.cuda.device_count()
            info["cuda_version"] = torch.version.cuda
    except Exception:
        pass
    return info


def collect(config, manifest: dict) -> dict:
    """Everything needed to say where a run came from."""
    return {
        "dataset_version": manifest.get("version"),
        "dataset_examples": manifest.get("splits"),
        "base_model": config.model.name,
        "base_model_weights_sha256": base_model_hash(config.model.name),
        "method": config.method,
        "seed": config.train.seed,
        "tunelab_version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "hardware": hardware(),
        "trust_remote_code": config.model.trust_remote_code,
        "allow_pickle": config.model.allow_pickle,
    }


def write_lineage(run_dir: Path, lineage: dict) -> None:
    write_json(Path(run_dir) / "lineage.json", lineage)


def lineage_tags(lineage: dict) -> dict[str, str]:
    """Flat MLflow tags (tunelab.*) for the lineage; values as strings."""
    tags = {}
    for key, value in lineage.items():
        if isinstance(value, dict):
            for sub, item in value.items():
                tags[f"tunelab.{key}.{sub}"] = str(item)
        elif value is not None:
            tags[f"tunelab.{key}"] = str(value)
    return tags

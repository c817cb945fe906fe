"""Prices and GPU specifications: one data file in the package, overridable by a user file.

The package file `prices.yaml` holds every figure with its source and date. A user file
(--prices FILE, else $TUNELAB_HOME/prices.yaml when present) is merged over it key by key.
"""

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from tunelab import paths
from tunelab.errors import ConfigError

PRICES_FILE = Path(__file__).with_name("prices.yaml")


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float
    peak_tflops: float
    bf16: bool
    bandwidth_gbs: float
    price_low: float
    price_high: float
    mfu_low: float
    mfu_high: float
    source: str
    as_of: str

    @property
    def is_cpu(self) -> bool:
        return self.name == "CPU"


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def load_prices(user_file: str | Path | None = None) -> dict:
    """The package data merged with the user's file (explicit path, else $TUNELAB_HOME/prices.yaml)."""
    data = _read(PRICES_FILE)
    path = Path(user_file) if user_file else paths.home() / "prices.yaml"
    if user_file and not path.is_file():
        raise ConfigError(f"prices file not found: {path}", f"pass an existing YAML file laid out like {PRICES_FILE}")
    return _merge(data, _read(path)) if path.is_file() else data


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime: float) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML", "fix the syntax of the prices file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping", f"lay it out like {PRICES_FILE}")
    return data


def _read(path: Path) -> dict:
    return _read_cached(str(path), path.stat().st_mtime)


def gpu_names(prices: dict) -> list[str]:
    return list(prices["gpus"])


def find_gpu(name: str | None, prices: dict) -> Gpu:
    """A GPU by catalogue name or alias (case-insensitive); ConfigError listing the valid names."""
    wanted = (name or "cpu").lower()
    for gpu_name, entry in prices["gpus"].items():
        if wanted == gpu_name.lower() or wanted in [str(a).lower() for a in entry.get("aliases", [])]:
            return _gpu(gpu_name, entry)
    raise ConfigError(f"unknown GPU '{name}'", "use one of: " + ", ".join(gpu_names(prices)) + " (case-insensitive)")


def _gpu(name: str, entry: dict) -> Gpu:
    memory_gb, peak = entry.get("memory_gb"), entry.get("peak_tflops")
    if name == "CPU":
        memory_gb = memory_gb or _host_memory_gb()
        peak = peak or (os.cpu_count() or 1) * entry.get("peak_gflops_per_core", 64) / 1000
    return Gpu(
        name,
        float(memory_gb),
        float(peak),
        bool(entry.get("bf16")),
        float(entry.get("bandwidth_gbs", 100)),
        float(entry["price_per_hour"]["low"]),
        float(entry["price_per_hour"]["high"]),
        float(entry["mfu"]["low"]),
        float(entry["mfu"]["high"]),
        entry.get("source", ""),
        str(entry.get("as_of", "")),
    )


def all_gpus(prices: dict) -> list[Gpu]:
    return [_gpu(name, entry) for name, entry in prices["gpus"].items()]


def _host_memory_gb() -> float:
    try:
        import psutil

        return psutil.virtual_memory().total / 1e9
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def openai_models(prices: dict) -> dict[str, dict]:
    return prices["openai"]["models"]


def openai_model(name: str | None, prices: dict) -> dict | None:
    """The price entry of an OpenAI model name (accepts dated snapshots, e.g. gpt-4o-mini-2024-07-18)."""
    if not name:
        return None
    key = name.lower().removeprefix("openai/")
    models = openai_models(prices)
    for candidate in sorted(models, key=len, reverse=True):
        if key == candidate or key.startswith(candidate + "-20"):
            return {"name": candidate, **models[candidate]}
    return None


def hosting(prices: dict, key: str) -> float:
    return float(prices["hosting"][key]["value"])

"""Prices and GPU specifications: one data file in the package, overridable by a user file.

The package file `prices.yaml` holds every figure with its source and date. A user file
(--prices FILE, else $TUNELAB_HOME/prices.yaml when present) is merged over it key by key.
"""

import os
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

from tunelab import paths
from tunelab.errors import ConfigError

PRICES_FILE = Path(__file__).with_name("prices.yaml")
SNAPSHOT_SUFFIX = r"(-\d{4}(-\d{2}-\d{2})?)?"  # gpt-4o-mini-2024-07-18, gpt-3.5-turbo-0125


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
    """The price entry of an OpenAI model name; dated snapshots (gpt-4o-mini-2024-07-18) and `ft:` ids count."""
    models = openai_models(prices)
    base = openai_base(name, models)
    return {"name": base, **models[base]} if base else None


def openai_base(name: str | None, known) -> str | None:
    """The model of `known` that a name belongs to: a dated snapshot or an `ft:BASE:...` id resolves to its base."""
    key = (name or "").lower().removeprefix("openai/").removeprefix("ft:").split(":")[0]
    return next((model for model in known if re.fullmatch(re.escape(model) + SNAPSHOT_SUFFIX, key)), None)


def hosting(prices: dict, key: str) -> float:
    return float(prices["hosting"][key]["value"])


@dataclass(frozen=True)
class WindDown:
    """OpenAI's dated wind-down of self-serve fine-tuning, as the price file records it with its source."""

    notice: date
    closed_for_never_fine_tuned: date
    closed_for_inactive: date  # organisations without inference on a fine-tuned model in the past 60 days
    closed_to_new_jobs: date  # every organisation, from this day on
    source: str
    as_of: str

    def closed(self, day: date) -> bool:
        return day >= self.closed_to_new_jobs

    def summary(self, day: date) -> str:
        """One sentence with every date and the source, worded for `day` (before or after the close)."""
        dates = (
            f"organisations that never fine-tuned lost job creation on {self.closed_for_never_fine_tuned}, "
            f"those without inference on a fine-tuned model in the past 60 days on {self.closed_for_inactive}"
        )
        final = (
            f"job creation closed for every organisation on {self.closed_to_new_jobs}"
            if self.closed(day)
            else f"no organisation can create new jobs from {self.closed_to_new_jobs}"
        )
        return (
            f"OpenAI is winding down self-serve fine-tuning (notice of {self.notice}): {dates}; {final}. "
            f"Fine-tuned models serve only until their base snapshot shuts down. Source: {self.source}"
        )

    def as_dict(self) -> dict:
        return {
            "notice": str(self.notice),
            "closed_for_never_fine_tuned": str(self.closed_for_never_fine_tuned),
            "closed_for_inactive": str(self.closed_for_inactive),
            "closed_to_new_jobs": str(self.closed_to_new_jobs),
            "source": self.source,
            "as_of": self.as_of,
        }


def wind_down(prices: dict) -> WindDown:
    entry = prices["openai"]["fine_tuning_wind_down"]
    dates = ("notice", "closed_for_never_fine_tuned", "closed_for_inactive", "closed_to_new_jobs")
    return WindDown(
        *(as_date(entry[key], f"openai.fine_tuning_wind_down.{key}") for key in dates),
        entry["source"],
        str(entry["as_of"]),
    )


def base_shutdown(name: str | None, prices: dict) -> dict | None:
    """The announced shutdown of an OpenAI base model, with its source; None when none is recorded."""
    for entry in prices["openai"].get("base_shutdowns", []):
        model = openai_base(name, entry["models"])
        if model:
            shutdown = as_date(entry["shutdown"], "openai.base_shutdowns.shutdown")
            return {"model": model, "shutdown": str(shutdown), "source": entry["source"], "as_of": str(entry["as_of"])}
    return None


def as_date(value, key: str) -> date:
    """A YAML date (unquoted ISO dates load as dates; a user's file may quote them)."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"prices: {key} is not a date ({value!r})", "write it as YYYY-MM-DD") from None

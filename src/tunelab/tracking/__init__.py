"""Experiment tracking behind a small protocol; metrics.jsonl in the run folder is always written.

`open_tracker` returns the enabled sinks (MLflow, TensorBoard event files) behind one tracker,
else a tracker that does nothing. Tracking never breaks training: a store that fails is reported once and skipped.
"""

from pathlib import Path
from typing import Protocol


class Tracker(Protocol):
    def log_params(self, params: dict) -> None: ...
    def log_step(self, record: dict) -> None: ...
    def log_result(self, summary: dict, evaluation: dict, run_dir: Path) -> None: ...
    def close(self, status: str) -> None: ...


class NoTracker:
    def log_params(self, params: dict) -> None:
        pass

    def log_step(self, record: dict) -> None:
        pass

    def log_result(self, summary: dict, evaluation: dict, run_dir: Path) -> None:
        pass

    def close(self, status: str) -> None:
        pass


class Trackers:
    """Several sinks behind one tracker (MLflow and TensorBoard)."""

    def __init__(self, sinks: list):
        self.sinks = sinks

    def log_params(self, params: dict) -> None:
        for sink in self.sinks:
            sink.log_params(params)

    def log_step(self, record: dict) -> None:
        for sink in self.sinks:
            sink.log_step(record)

    def log_result(self, summary: dict, evaluation: dict, run_dir: Path) -> None:
        for sink in self.sinks:
            sink.log_result(summary, evaluation, run_dir)

    def close(self, status: str) -> None:
        for sink in self.sinks:
            sink.close(status)


def open_tracker(config, run_dir: Path, manifest: dict) -> Tracker:
    sinks = []
    if config.tracking.enabled:
        from tunelab.tracking.mlflow_tracker import MLflowTracker

        sinks.append(MLflowTracker.start(config, run_dir, manifest))
    if config.tracking.tensorboard:
        from tunelab.tracking.tensorboard import TensorBoardTracker

        sinks.append(TensorBoardTracker(run_dir / "tensorboard"))
    return Trackers(sinks) if sinks else NoTracker()


def config_params(config) -> dict:
    """Every resolved config value as a flat {dotted.key: value} mapping, as trackers log parameters."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            flat[prefix] = value

    walk("", config.model_dump(mode="json"))
    return flat

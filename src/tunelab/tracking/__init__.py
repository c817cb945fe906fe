"""Experiment tracking behind a small protocol; metrics.jsonl in the run folder is always written.

`open_tracker` returns the MLflow tracker when tracking is enabled, else a tracker that does
nothing. Tracking never breaks training: a store that fails is reported once and skipped.
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


def open_tracker(config, run_dir: Path, manifest: dict) -> Tracker:
    if not config.tracking.enabled:
        return NoTracker()
    from tunelab.tracking.mlflow_tracker import MLflowTracker

    return MLflowTracker.start(config, run_dir, manifest)

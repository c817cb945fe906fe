"""Where tunelab keeps things. One environment variable, TUNELAB_HOME, makes tests hermetic."""

import os
from pathlib import Path


def home() -> Path:
    """The tunelab home: caches, the tracking store and the service's state."""
    path = Path(os.environ.get("TUNELAB_HOME") or Path.home() / ".tunelab")
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_cache() -> Path:
    """Converted models (e.g. GGUF de-quantised to safetensors) so later loads take seconds."""
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """MLflow store: MLFLOW_TRACKING_URI if set, else a SQLite file in the tunelab home."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def runs_root() -> Path:
    """Default parent of run folders: ./runs under the current directory."""
    return Path.cwd() / "runs"

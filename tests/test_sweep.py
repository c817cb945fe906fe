"""Sweeps on the tiny model: pruning stops a trial early; two worker processes share one study with no
trial lost or run twice; every trial is a tracked MLflow run tagged with the study."""

import json
from pathlib import Path

import pytest
from test_tracking import write_chat
from tiny_models import tiny_llama

pytestmark = pytest.mark.slow  # several short trainings each

# a learning rate that learns and one that cannot: a slow trial's eval loss sits above the median at once
SPACE = {"train.learning_rate": {"type": "categorical", "choices": [0.05, 1e-7]}}


def sweep_config(tmp: Path, uri: str):
    from tunelab.config import load_config

    return load_config(
        None,
        {
            "data.path": [str(write_chat(tmp / "chat.jsonl"))],
            "model.name": str(tiny_llama()),
            "method": "lora",
            "train.max_steps": 3,
            "train.eval_steps": 1,
            "eval.enabled": False,
            "tracking.uri": uri,
        },
    )


def study_runs(uri: str, study: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tunelab")
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.study = '{study}'")


def test_sweep_prunes_and_writes_its_summary(tmp_path):
    from tunelab.search.sweep import run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(sweep_config(tmp_path, uri), SPACE, trials=4, out=str(tmp_path / "study"), study_name="prune")
    states = [t["state"] for t in result["trials"]]
    assert len(states) == 4 and "PRUNED" in states and "COMPLETE" in states
    pruned = [t for t in result["trials"] if t["state"] == "PRUNED"]
    assert all(t["last_step"] < 3 for t in pruned)  # stopped before the last step
    assert result["best"]["params"]["train.learning_rate"] == 0.05
    best = Path(result["best_config"]).read_text()
    assert "learning_rate: 0.05" in best
    assert "optimisation history" in Path(result["report"]).read_text()
    assert json.loads((tmp_path / "study" / "sweep.json").read_text())["n_trials"] == 4
    runs = study_runs(uri, "prune")
    assert sorted(r.data.tags["trial"] for r in runs) == ["0", "1", "2", "3"]
    assert {r.info.status for r in runs if r.data.tags["trial"] in {str(t["number"]) for t in pruned}} == {"KILLED"}


def test_two_worker_processes_share_one_study(tmp_path):
    from tunelab.search.sweep import run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = run_sweep(
        sweep_config(tmp_path, uri),
        SPACE,
        trials=4,
        storage=storage,
        jobs=2,
        out=str(tmp_path / "study"),
        study_name="shared",
    )
    assert [t["number"] for t in result["trials"]] == [0, 1, 2, 3]
    assert {t["state"] for t in result["trials"]} <= {"COMPLETE", "PRUNED"}
    folders = [t["run_dir"] for t in result["trials"]]
    assert len(set(folders)) == 4 and all((Path(f) / "metrics.jsonl").exists() for f in folders)
    runs = study_runs(uri, "shared")
    assert sorted(r.data.tags["trial"] for r in runs) == ["0", "1", "2", "3"]  # one tracked run per trial, none twice
    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    counted = [t for t in study.trials if not t.user_attrs.get("surplus")]  # a surplus trial trains nothing
    assert sorted(t.number for t in counted) == [0, 1, 2, 3]

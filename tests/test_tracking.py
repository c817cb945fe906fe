"""Tracking against a real MLflow SQLite store in a temp folder (no mocks): params, step metrics, final
metrics, artifacts, registry, lineage tags, `tunelab runs`, and an unreachable store that training survives."""

import json
import random
from pathlib import Path

import pytest
from tiny_models import tiny_llama
from typer.testing import CliRunner

TOPICS = ["weather", "sports", "cooking", "music", "travel", "history", "math", "science", "movies", "books"]


def write_chat(path: Path, n: int = 120, seed: int = 0) -> Path:
    """n varied chat records, enough for the data pipeline's minimum."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            messages = [
                {"role": "user", "content": f"Question {i}: one fact about {topic}, case {rng.randint(0, 10**6)}?"},
                {"role": "assistant", "content": f"Fact {i} on {topic}: detail {rng.randint(0, 10**6)} holds."},
            ]
            handle.write(json.dumps({"messages": messages}) + "\n")
    return path


def tiny_config(tmp: Path, uri: str, **extra):
    from tunelab.config import load_config

    overrides = {
        "data.path": [str(write_chat(tmp / "chat.jsonl"))],
        "model.name": str(tiny_llama()),
        "method": "lora",
        "out": str(tmp / "run"),
        "train.max_steps": 3,
        "train.eval_steps": 1,
        "eval.probes": False,
        "eval.max_examples": 2,
        "eval.max_new_tokens": 4,
        "eval.bootstrap_samples": 100,
        "tracking.uri": uri,
        **extra,
    }
    return load_config(None, overrides)


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """One short LoRA run on the tiny model, logged to a SQLite store and registered as 'tiny-adapter'."""
    from tunelab.jobs.finetune import run

    tmp = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    summary = run(tiny_config(tmp, uri, **{"tracking.register_as": "tiny-adapter", "tracking.tags": {"team": "nlp"}}))
    runs = client_for(uri).search_runs([client_for(uri).get_experiment_by_name("tunelab").experiment_id])
    assert len(runs) == 1
    return uri, summary, runs[0]


def test_params_are_every_resolved_config_value(tracked_run):
    from tunelab.config import load_config
    from tunelab.tracking import config_params

    _, summary, run = tracked_run
    expected = config_params(load_config(Path(summary["run_dir"]) / "config.yaml"))
    assert set(expected) <= set(run.data.params)
    assert run.data.params["train.max_steps"] == "3" and run.data.params["method"] == "lora"
    assert int(run.data.params["trainable_parameters"]) == summary["parameters"]["trainable"]


def test_every_step_and_final_metrics_are_logged(tracked_run):
    uri, summary, run = tracked_run
    client = client_for(uri)
    for name in ("train_loss", "learning_rate", "grad_norm", "tokens_per_second", "eval_loss"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2, 3], name
    logged = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train_loss")}
    assert history == pytest.approx({r["step"]: r["loss"] for r in logged})
    evaluation = json.loads((Path(summary["run_dir"]) / "eval.json").read_text())
    for name, value in evaluation["tuned"].items():
        assert run.data.metrics[f"tuned.{name}"] == pytest.approx(value)
        low, high = evaluation["intervals"]["tuned"][name]
        assert run.data.metrics[f"tuned.{name}.ci_low"] == pytest.approx(low)
    assert f"base.{evaluation['primary_metric']}" in run.data.metrics
    assert run.info.status == "FINISHED"


def test_artifacts_lineage_and_registry(tracked_run):
    uri, summary, run = tracked_run
    client = client_for(uri)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "README.md", "eval.json", "report.html", "lineage.json", "adapter", "data"} <= artifacts
    assert "data/manifest.json" in {a.path for a in client.list_artifacts(run.info.run_id, "data")}
    tags = run.data.tags
    assert tags["tunelab.dataset_version"] == summary["dataset_version"]
    assert len(tags["tunelab.base_model_weights_sha256"]) == 64
    assert tags["tunelab.seed"] == "42" and tags["tunelab.libraries.torch"] and tags["team"] == "nlp"
    lineage = json.loads((Path(summary["run_dir"]) / "lineage.json").read_text())
    assert lineage["base_model_weights_sha256"] == tags["tunelab.base_model_weights_sha256"]
    versions = client.search_model_versions("name='tiny-adapter'")
    assert [v.run_id for v in versions] == [run.info.run_id]
    assert versions[0].source.endswith("/adapter")


def test_runs_cli_list_show_compare_delete(tracked_run, run_cli):
    from tunelab.cli.main import app

    uri, summary, run = tracked_run
    cli = CliRunner()

    def call(*args):
        result = cli.invoke(app, [*args, "--store", uri, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    listed = call("runs", "list")
    assert [r["run_id"] for r in listed["runs"]] == [run.info.run_id]
    assert listed["runs"][0]["dataset_version"] == summary["dataset_version"]
    assert call("runs", "list", "--tag", "team=nlp")["count"] == 1
    assert call("runs", "list", "--tag", "team=cv")["count"] == 0
    assert call("runs", "list", "--dataset-version", summary["dataset_version"][:8])["count"] == 1
    assert call("runs", "list", "--metric", "train_loss>0")["count"] == 1
    assert call("runs", "list", "--metric", "train_loss<0")["count"] == 0
    shown = call("runs", "show", run.info.run_id[:8])
    assert shown["params"]["method"] == "lora" and "adapter" in shown["artifacts"]
    assert call("runs", "show", summary["run_dir"])["run_id"] == run.info.run_id
    code, output = run_cli("runs", "compare", run.info.run_id, "--store", uri)  # through main(), as a user runs it
    assert code == 2 and "compare needs at least two runs" in output and "Traceback" not in output


def test_compare_and_delete_on_a_second_store(tmp_path):
    """Two tracker-only runs (no training) compared, then one deleted."""
    from tunelab.cli.main import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = [log_fake_run(tmp_path / f"r{i}", uri, rate) for i, rate in enumerate((1e-4, 3e-4))]
    cli = CliRunner()
    compared = json.loads(cli.invoke(app, ["runs", "compare", *ids, "--store", uri, "--json"]).stdout)
    assert set(compared["params_differing"]) == {"train.learning_rate"}
    assert compared["metrics"]["train_loss"][ids[0]] is not None
    deleted = cli.invoke(app, ["runs", "delete", ids[0], "--store", uri, "--json"])
    assert json.loads(deleted.stdout)["deleted"] == ids[0]
    remaining = json.loads(cli.invoke(app, ["runs", "list", "--store", uri, "--json"]).stdout)
    assert [r["run_id"] for r in remaining["runs"]] == [ids[1]]


def log_fake_run(run_dir: Path, uri: str, rate: float) -> str:
    """A tracker fed by hand: 25 steps (more than one buffered batch), then closed."""
    from tunelab.config import load_config
    from tunelab.tracking import config_params
    from tunelab.tracking.mlflow_tracker import MLflowTracker

    run_dir.mkdir(parents=True)
    config = load_config(None, {"model.name": str(tiny_llama()), "tracking.uri": uri, "train.learning_rate": rate})
    tracker = MLflowTracker.start(config, run_dir, {"version": "abc123"})
    tracker.log_params(config_params(config))
    for step in range(1, 26):
        tracker.log_step(
            {
                "step": step,
                "epoch": step / 25,
                "loss": 2.0 / step,
                "learning_rate": rate,
                "grad_norm": 1.0,
                "tokens_per_second": 100.0,
                "eval_loss": 1.0 if step % 10 == 0 else None,
            }
        )
    tracker.close("FINISHED")
    assert len(client_for(uri).get_metric_history(tracker.run_id, "train_loss")) == 25
    return tracker.run_id


def test_unreachable_store_is_said_once_and_training_goes_on(tmp_path, monkeypatch):
    from tunelab.jobs.finetune import run
    from tunelab.tracking import mlflow_tracker

    said = []
    monkeypatch.setattr(mlflow_tracker, "say", said.append)
    summary = run(tiny_config(tmp_path, "http://127.0.0.1:9", **{"eval.enabled": False, "train.max_steps": 2}))
    assert summary["status"] == "succeeded"
    assert len([m for m in said if "tracking unavailable" in m]) == 1
    assert len((Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()) == 2
    assert (Path(summary["run_dir"]) / "lineage.json").exists()


def test_default_store_is_sqlite_in_tunelab_home(tunelab_home, tmp_path, monkeypatch):
    from tunelab import paths

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert paths.tracking_uri() == f"sqlite:///{tunelab_home / 'mlflow.db'}"
    run_id = log_fake_run(tmp_path / "r", paths.tracking_uri(), 1e-4)
    assert (tunelab_home / "mlflow.db").exists()
    assert (
        client_for(paths.tracking_uri())
        .get_run(run_id)
        .info.artifact_uri.startswith((tunelab_home / "mlartifacts").as_uri())
    )


def test_tensorboard_sink_writes_event_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tunelab.tracking.tensorboard import TensorBoardTracker

    tracker = TensorBoardTracker(tmp_path / "tb")
    tracker.log_params({"train.epochs": 3})
    for step in (1, 2):
        tracker.log_step({"step": step, "loss": 1.0 / step, "learning_rate": 1e-4, "eval_loss": None})
    tracker.log_result({"steps": 2}, {"tuned": {"accuracy": 0.9}, "base": {"accuracy": 0.5}}, tmp_path)
    tracker.close("FINISHED")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == [1.0, 0.5]
    assert events.Scalars("eval_tuned/accuracy")[0].value == pytest.approx(0.9)

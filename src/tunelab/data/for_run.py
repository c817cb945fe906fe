"""The data a fine-tuning run trains on: a prepared folder read as is, or raw files (or the built-in demo
data) prepared into the run folder; the labels of a classification run; general replay records."""

import random
from pathlib import Path

from tunelab.data.prepare import PreparedData, is_prepared, load_prepared, prepare_dataset
from tunelab.data.stats import TOO_SMALL_DATA
from tunelab.errors import ConfigError, DataError
from tunelab.progress import say


def data_for_run(config, run_dir: Path) -> PreparedData:
    """`config.data.path` as the run's prepared splits, written to run_dir/data unless already prepared."""
    inputs = [Path(p) for p in config.data.path]
    if len(inputs) == 1 and is_prepared(inputs[0]):
        return read_prepared(inputs[0])
    if not inputs:
        from tunelab.data.demo import write_demo_data

        demo_file = run_dir / "data" / "raw" / "tickets.jsonl"
        inputs = [write_demo_data(demo_file, config.data.demo_size, config.data.seed)]
    for path in inputs:
        if not path.exists():
            raise DataError(f"data file not found: {path}", "check the path given to --data")
    # Training on small data is the user's explicit choice: warn instead of refusing as `data prepare` does.
    # Token statistics use the model that will train, when one is named.
    data_config = config.data.model_copy(
        update={"force": True, "tokenizer": config.data.tokenizer or config.model.name}
    )
    prepare_dataset(inputs, run_dir / "data", data_config)
    data = read_prepared(run_dir / "data")
    usable = data.manifest.get("counts", {}).get("kept", 0)
    if usable < TOO_SMALL_DATA and not config.data.force:
        say(f"[yellow]warning:[/] only {usable} usable examples: expect overfitting and little real learning")
    return data


def read_prepared(folder: Path) -> PreparedData:
    data = load_prepared(folder)
    if not data.train:
        raise DataError(f"the train split in {folder} is empty", "give more examples or change data.split")
    return data


def class_labels(data: PreparedData) -> list[str] | None:
    """Every label of a classification dataset, sorted (the head's label ids), else None."""
    if data.task != "classification":
        return None
    return sorted({r["label"] for split in (data.train, data.validation, data.test) for r in split})


def replay_records(config, n_train: int, run_dir: Path) -> list[dict]:
    """General records mixed into training (replay_fraction of the result) against catastrophic forgetting."""
    fraction = config.train.replay_fraction
    if not fraction:
        return []
    if config.task != "causal-lm" or not config.train.replay_data:
        raise ConfigError(
            "train.replay_fraction needs train.replay_data (general text or chat examples) and task causal-lm",
            "set train.replay_data to a file or prepared folder, or replay_fraction to 0",
        )
    replay_config = config.model_copy(
        update={"data": config.data.model_copy(update={"path": [config.train.replay_data]})}
    )
    replay = data_for_run(replay_config, run_dir / "replay")
    wanted = round(fraction / (1 - fraction) * n_train)
    chosen = random.Random(config.train.seed).choices(replay.train + replay.validation + replay.test, k=wanted)
    say(f"replay: mixing {wanted} general examples into {n_train} train examples ({fraction:.0%})")
    return chosen

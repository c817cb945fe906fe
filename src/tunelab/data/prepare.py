"""`prepare`: raw files in, split and versioned dataset folder out. The one entry point for all callers.

Pass 1 (collect.py) streams every record through checks, cleaning, length filters and exact
dedup into a spool; then near duplicates are clustered over the MinHash signatures, clusters (for
preference pairs: every pair with a similar prompt) are split as units, and pass 2 streams the
spool into train/validation/test files. The manifest is written last, atomically, so a folder
with a manifest is always complete.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tunelab
from tunelab.data import dedup
from tunelab.data.augment import variants
from tunelab.data.collect import Collected, Collector, canonical, spool_files, task_of
from tunelab.data.config import DataConfig
from tunelab.data.split import SPLITS, assign_splits
from tunelab.data.stats import TOO_SMALL_DATA, class_weights, guidance, preference_stats, token_stats
from tunelab.data.tokens import load_counter
from tunelab.errors import DataError
from tunelab.runs import read_json, sha256_file, write_json

__all__ = ["PreparedData", "prepare_dataset", "load_prepared", "is_prepared", "class_weights"]
OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl", "rejects.jsonl")


@dataclass
class PreparedData:
    """A prepared folder, loaded: the three splits as normalised records, and the manifest."""

    train: list[dict]
    validation: list[dict]
    test: list[dict]
    manifest: dict
    task: str
    folder: Path | None = None


def is_prepared(path: Path) -> bool:
    """A folder written by `prepare` (it has a manifest.json)."""
    return Path(path).is_dir() and (Path(path) / "manifest.json").is_file()


def load_prepared(folder: Path) -> PreparedData:
    folder = Path(folder)
    if not is_prepared(folder):
        raise DataError(
            f"{folder} is not a prepared dataset (no manifest.json)", "run `tunelab data prepare FILES --out DIR` first"
        )
    manifest = read_json(folder / "manifest.json")
    splits = {name: _read_jsonl(folder / f"{name}.jsonl") for name in SPLITS}
    return PreparedData(**splits, manifest=manifest, task=manifest["task"], folder=folder)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def prepare_dataset(inputs: list[Path], out_dir: Path, config: DataConfig, tokenizer=None) -> dict:
    """Run the whole pipeline on `inputs`, write `out_dir`, return the manifest."""
    inputs, out_dir = [Path(p) for p in inputs], Path(out_dir)
    if not inputs:
        raise DataError("no input files given", "pass one or more data files")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    counter = load_counter(config.tokenizer, tokenizer)
    spool = out_dir / ".spool.jsonl"
    try:
        with open(out_dir / "rejects.jsonl", "w", encoding="utf-8") as rejects:
            collector = Collector(config, counter, spool, rejects)
            for path in inputs:
                collector.add_file(path)
            collected = collector.finish()
            kept, groups, pairs = _near_duplicates(collected, collector, config)
        _check_enough(collected, kept, config, inputs)
        task, schema = task_of(collected.files)
        split_of = _split(collected, kept, groups, config)
        sizes, augmented = _write_splits(out_dir, spool, kept, split_of, config)
    finally:
        for path in spool_files(spool):
            path.unlink(missing_ok=True)
    manifest = _manifest(
        out_dir, collected, kept, split_of, pairs, sizes, augmented, config, counter.name, task, schema
    )
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _near_duplicates(collected: Collected, collector: Collector, config: DataConfig):
    """(kept mask, split group per spooled record, verified similar pairs); near copies go to rejects."""
    if not config.dedup:
        everyone = np.arange(collected.spooled)
        return np.ones(len(everyone), dtype=bool), everyone, np.empty((0, 2), dtype=np.int64)
    inputs, answers = collected.signatures(), collected.answer_signatures()
    if answers is None:
        representative, pairs = dedup.near_duplicate_clusters(inputs, config.near_dup_threshold)
        groups = representative
    else:
        representative, groups, pairs = dedup.answered_near_duplicates(inputs, answers, config.near_dup_threshold)
    kept = representative == np.arange(len(representative))
    for index in np.flatnonzero(~kept).tolist():
        source, line = collected.files[collected.place_file[index]].path, collected.place_line[index]
        collector.reject(
            source,
            line,
            "duplicate_near",
            f"near duplicate (Jaccard >= {config.near_dup_threshold}) of an earlier record",
            duplicate_of=collector.place(int(representative[index])),
        )
    return kept, groups, pairs


def _check_enough(collected: Collected, kept: np.ndarray, config: DataConfig, inputs: list[Path]) -> None:
    usable = int(kept.sum())
    if usable == 0:
        names = ", ".join(p.name for p in inputs)
        reasons = "; ".join(collected.tally.lines()[:3]) or "the file holds no records"
        raise DataError(
            f"no usable record in {names}: {reasons}",
            "fix the records (see rejects.jsonl in the output folder) or pass --format/--map",
        )
    for report in collected.files:
        if report.usable == 0 and len(collected.files) > 1:
            raise DataError(
                f"no usable record in {report.path} ({report.records} records, all rejected)",
                "fix or drop that file (its reasons are in rejects.jsonl), or pass --format/--map",
            )
    if usable < TOO_SMALL_DATA and not config.force:
        raise DataError(
            f"only {usable} usable examples (of {collected.input}): fewer than {TOO_SMALL_DATA} rarely teaches a model anything",
            "add data, or pass --force to prepare it anyway",
        )


def _split(collected: Collected, kept: np.ndarray, groups: np.ndarray, config: DataConfig) -> np.ndarray:
    """Split index per spooled record (-1 for near duplicates dropped); a group goes to one split whole."""
    labels = collected.labels if len(collected.labels) == len(kept) else None
    kept_index = np.flatnonzero(kept)
    kept_labels = [labels[i] for i in kept_index.tolist()] if labels else None
    split_of = np.full(len(kept), -1, dtype=np.int8)
    split_of[kept_index] = assign_splits(groups[kept_index], kept_labels, tuple(config.split), config.seed)
    return split_of


def _write_splits(out_dir: Path, spool: Path, kept: np.ndarray, split_of: np.ndarray, config: DataConfig):
    """Stream the spool into the split files; train examples get their augmented variants after them."""
    sizes, augmented = [0, 0, 0], 0
    handles = [open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") for name in SPLITS]
    try:
        with open(spool, encoding="utf-8") as source:
            for index, line in enumerate(source):
                split = int(split_of[index])
                if split < 0:
                    continue
                handles[split].write(line)
                sizes[split] += 1
                if split == 0 and config.augment:
                    extra = variants(json.loads(line), config.augment, f"{config.seed}:{index}")
                    handles[0].writelines(canonical(v).decode("utf-8") + "\n" for v in extra)
                    augmented += len(extra)
    finally:
        for handle in handles:
            handle.close()
    return sizes, augmented


def _label_distribution(collected: Collected, split_of: np.ndarray) -> dict:
    if len(collected.labels) != len(split_of):
        return {}
    return {
        name: dict(sorted(Counter(label for label, s in zip(collected.labels, split_of.tolist()) if s == i).items()))
        for i, name in enumerate(SPLITS)
    }


def _manifest(
    out_dir, collected: Collected, kept, split_of, pairs, sizes, augmented, config, tokenizer_name, task, schema
) -> dict:
    tokens = np.asarray(collected.tokens, dtype=np.int64)[kept]
    preference = _pair_stats(collected, kept)
    labels = _label_distribution(collected, split_of)
    train_labels = Counter(labels.get("train", {}))
    hashes = {name: sha256_file(out_dir / name) for name in OUTPUT_FILES}
    counts = {
        "input": collected.input,
        "kept": int(kept.sum()),
        "rejected": collected.rejected,
        "duplicates_exact": collected.duplicates_exact,
        "duplicates_near": int((~kept).sum()),
    }
    return {
        "tunelab_version": tunelab.__version__,
        "version": dataset_version(hashes),
        "task": task,
        "schema": schema,
        "counts": counts,
        "splits": dict(zip(SPLITS, sizes)),
        "augmented": {"train_variants": augmented, "per_example": config.augment},
        "reject_reasons": dict(sorted(collected.tally.counts.items())),
        "reject_examples": collected.tally.first,
        "label_distribution": labels,
        "class_weights": class_weights(train_labels) if train_labels else {},
        "token_stats": token_stats(tokens, tokenizer_name),
        **({"preference": preference} if preference else {}),
        "length": {"over_max_tokens": collected.over_limit, "truncated": collected.truncated},
        "cleaning": dict(sorted(collected.cleaning.items())),
        "leakage": {"cross_split_near_duplicates": cross_split_pairs(pairs, kept, split_of)},
        "files": [{"path": f.path, "schema": f.schema} for f in collected.files],
        "warnings": collected.warnings
        + guidance(
            int(kept.sum()),
            train_labels,
            collected.over_limit,
            config.max_tokens,
            measured=int(kept.sum()) + collected.over_limit - collected.truncated,
            chosen_longer=preference["chosen_longer_fraction"] if preference else None,
        ),
        "sha256": hashes,
        "options": config.model_dump(mode="json"),
    }


def _pair_stats(collected: Collected, kept: np.ndarray) -> dict | None:
    """Preference statistics of the kept pairs, or None when the records are not pairs."""
    lengths = collected.pair_lengths()
    return preference_stats(lengths[kept]) if lengths is not None else None


def cross_split_pairs(pairs: np.ndarray, kept: np.ndarray, split_of: np.ndarray) -> int:
    """Near-duplicate pairs whose two records sit in different splits (leakage); 0 by construction."""
    if not len(pairs):
        return 0
    both_kept = kept[pairs[:, 0]] & kept[pairs[:, 1]]
    return int((both_kept & (split_of[pairs[:, 0]] != split_of[pairs[:, 1]])).sum())


def dataset_version(hashes: dict[str, str]) -> str:
    """The content hash of the three split files: the dataset's version."""
    joined = "".join(f"{name}:{hashes[f'{name}.jsonl']}\n" for name in SPLITS)
    return hashlib.sha256(joined.encode()).hexdigest()

"""Seeded train/validation/test assignment: stratified by label, whole groups to one split.

A group is a near-duplicate cluster: its members always land in the same split, so no test
example has a near copy in train. Within each label (stratum) the groups are shuffled with the
seed and cut at the cumulative split fractions, so every label keeps its share in each split.
"""

import numpy as np

SPLITS = ("train", "validation", "test")


def assign_splits(
    groups: np.ndarray, labels: list[str] | None, fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Split index (0 train, 1 validation, 2 test) per record."""
    groups = np.asarray(groups)
    result = np.zeros(len(groups), dtype=np.int8)
    strata = _strata(groups, labels)
    rng = np.random.default_rng(seed)
    for key in sorted(strata):
        _assign_stratum(groups, strata[key], fractions, rng, result)
    return result


def _strata(groups: np.ndarray, labels: list[str] | None) -> dict[str, np.ndarray]:
    """Record indices per stratum; a group joins the stratum of its first member's label."""
    if labels is None:
        return {"": np.arange(len(groups))}
    first_label = {}
    for index, group in enumerate(groups.tolist()):
        first_label.setdefault(group, labels[index])
    keys = np.array([first_label[g] for g in groups.tolist()], dtype=object)
    return {key: np.flatnonzero(keys == key) for key in set(first_label.values())}


def _assign_stratum(groups: np.ndarray, members: np.ndarray, fractions, rng, result: np.ndarray) -> None:
    unit_ids, inverse, sizes = np.unique(groups[members], return_inverse=True, return_counts=True)
    order = rng.permutation(len(unit_ids))
    before = np.concatenate(([0], np.cumsum(sizes[order])[:-1]))  # records placed before each unit
    bounds = np.cumsum(fractions)[:-1] * len(members)
    unit_split = np.empty(len(unit_ids), dtype=np.int8)
    unit_split[order] = np.searchsorted(bounds, before, side="right")
    result[members] = unit_split[inverse]

"""MinHash signatures estimate Jaccard similarity; LSH finds near copies and nothing else."""

import random

import numpy as np

from tunelab.data import dedup
from tunelab.data.split import assign_splits


def shingle_set(text: str) -> set:
    words = text.lower().split()
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def test_estimate_tracks_true_jaccard():
    rng = random.Random(0)
    vocab = [f"v{i}" for i in range(5000)]
    base = [rng.choice(vocab) for _ in range(200)]
    for changes in (0, 2, 6, 20):
        other = list(base)
        for position in rng.sample(range(200), changes):
            other[position] = "zz" + str(position)
        a, b = " ".join(base), " ".join(other)
        sigs = dedup.signatures([a, b])
        estimate = (sigs[0] == sigs[1]).mean()
        truth = len(shingle_set(a) & shingle_set(b)) / len(shingle_set(a) | shingle_set(b))
        assert abs(estimate - truth) < 0.15, (changes, estimate, truth)


def test_signatures_do_not_depend_on_batching_or_case():
    texts = [f"Doc {i} has words " + " ".join(str(j * i) for j in range(30)) for i in range(50)]
    together = dedup.signatures(texts)
    apart = np.concatenate([dedup.signatures(texts[:17]), dedup.signatures(texts[17:])])
    assert (together == apart).all()
    assert (dedup.signatures([texts[3].upper()]) == together[3]).all()


def test_clusters_pick_the_earliest_and_short_texts_match_exactly():
    texts = [
        "one two",
        "one two",
        "one three",
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi",
    ]
    representative, pairs = dedup.near_duplicate_clusters(dedup.signatures(texts), 0.8)
    assert representative.tolist() == [0, 0, 2, 3]
    assert pairs.tolist() == [[0, 1]]


def test_stratified_group_split_keeps_groups_together_and_proportions():
    groups = np.array([i // 2 for i in range(1000)])  # pairs of records form a group
    labels = ["a" if i % 4 < 2 else "b" for i in range(1000)]
    split = assign_splits(groups, labels, (0.8, 0.1, 0.1), seed=1)
    assert all(split[i] == split[i + 1] for i in range(0, 1000, 2))
    assert abs((split == 0).mean() - 0.8) < 0.02 and abs((split == 2).mean() - 0.1) < 0.02
    assert (split == assign_splits(groups, labels, (0.8, 0.1, 0.1), seed=1)).all()

"""Near-duplicate detection: MinHash over word 5-gram shingles, LSH banding, union-find clusters.

Everything per shingle runs in numpy over whole batches of documents rather than per document
in Python (which is where the usual MinHash libraries spend their time):
  1. word hashes from one polynomial prefix sum over the batch's bytes,
  2. 5-gram shingle hashes by combining shifted word-hash arrays, mixed down to 32 bits,
  3. 128 multiply-shift hash functions ((a*x + b) mod 2^64) >> 32 applied to a block of shingles
     at once, with per-document minima from `np.minimum.reduceat`,
  4. LSH: 32 bands of 4 rows; records sharing a band bucket become candidate pairs, verified by
     the fraction of equal signature values (the estimated Jaccard similarity), then clustered.
"""

from dataclasses import dataclass, field

import numpy as np

NUM_PERM = 128
BANDS, ROWS = 32, 4
SHINGLE = 5
BLOCK = 8192  # shingles per hashing block: keeps the 128 x BLOCK work array in cache
_P = np.uint64(0x100000001B3)  # odd multiplier: invertible modulo 2^64
_P_INV = np.uint64(pow(0x100000001B3, -1, 2**64))
_COMBINE = np.uint64(0x9E3779B97F4A7C15)
_SEPARATORS = np.zeros(256, dtype=bool)
_SEPARATORS[[c for c in range(128) if not chr(c).isalnum()]] = True


def _perm_params(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
    return a[:, None], b[:, None]


_A, _B = _perm_params()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads polynomial hashes over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_POWERS: list[np.ndarray] = []


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P^j and P^-j mod 2^64 for j < n, computed once and grown by doubling."""
    if not _POWERS or len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]) if _POWERS else 1 << 20)
        with np.errstate(over="ignore"):
            forward = np.cumprod(np.full(size, _P, dtype=np.uint64))
            inverse = np.cumprod(np.full(size, _P_INV, dtype=np.uint64))
        _POWERS[:] = [np.concatenate(([np.uint64(1)], forward[:-1])), np.concatenate(([np.uint64(1)], inverse[:-1]))]
    return _POWERS[0][:n], _POWERS[1][:n]


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(hash per word, document index per word) for a batch, lower-cased, split at non-alphanumerics."""
    encoded = [text.lower().encode("utf-8", "replace") for text in texts]
    lengths = np.fromiter((len(e) + 1 for e in encoded), dtype=np.int64, count=len(encoded))
    data = np.frombuffer(b" ".join(encoded) + b" ", dtype=np.uint8)
    word = ~_SEPARATORS[data]
    edges = np.diff(np.concatenate(([False], word, [False])).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    forward, inverse = _powers(len(data))
    with np.errstate(over="ignore"):
        prefix = np.concatenate(([np.uint64(0)], np.cumsum((data.astype(np.uint64) + np.uint64(1)) * forward)))
        hashes = (prefix[ends] - prefix[starts]) * inverse[starts]
    doc_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return _mix(hashes), np.searchsorted(doc_starts, starts, side="right") - 1


def shingle_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(32-bit hash per word 5-gram, document index per shingle); a shorter text is one shingle."""
    words, docs = word_hashes(texts)
    with np.errstate(over="ignore"):
        combined = words[: len(words) - SHINGLE + 1].copy() if len(words) >= SHINGLE else np.empty(0, np.uint64)
        for offset in range(1, SHINGLE):
            combined = combined * _COMBINE + words[offset : len(words) - SHINGLE + 1 + offset]
    valid = docs[: len(combined)] == docs[SHINGLE - 1 :] if len(combined) else np.zeros(0, bool)
    shingles, shingle_docs = combined[valid], docs[: len(combined)][valid]
    short = _short_doc_shingles(words, docs, len(texts))
    if short[0].size:
        order = np.argsort(np.concatenate((shingle_docs, short[1])), kind="stable")
        shingles, shingle_docs = (
            np.concatenate((shingles, short[0]))[order],
            np.concatenate((shingle_docs, short[1]))[order],
        )
    return _mix(shingles) >> np.uint64(32), shingle_docs


def _short_doc_shingles(words: np.ndarray, docs: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(docs, minlength=n_docs)
    short_docs = np.flatnonzero((counts > 0) & (counts < SHINGLE))
    firsts = np.searchsorted(docs, short_docs)
    values = []
    with np.errstate(over="ignore"):
        for first, count in zip(firsts, counts[short_docs]):
            value = np.uint64(0)
            for h in words[first : first + count]:
                value = value * _COMBINE + h
            values.append(value)
    return np.array(values, dtype=np.uint64), short_docs


def signatures(texts: list[str]) -> np.ndarray:
    """MinHash signatures, shape (len(texts), 128), uint32; an empty text gets all-max values."""
    shingles, docs = shingle_hashes(texts)
    result = np.full((len(texts), NUM_PERM), np.iinfo(np.uint32).max, dtype=np.uint64)
    work = np.empty((NUM_PERM, BLOCK), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(shingles), BLOCK):
            block, block_docs = shingles[start : start + BLOCK], docs[start : start + BLOCK]
            out = work[:, : len(block)]
            np.multiply(_A, block[None, :], out=out)
            np.add(out, _B, out=out)
            np.right_shift(out, np.uint64(32), out=out)
            cuts = np.flatnonzero(np.concatenate(([True], block_docs[1:] != block_docs[:-1])))
            owners = block_docs[cuts]
            result[owners] = np.minimum(result[owners], np.minimum.reduceat(out, cuts, axis=1).T)
    return result.astype(np.uint32)


def candidate_pairs(sigs: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Index pairs (i < j) that share at least one LSH band bucket; shape (n, 2)."""
    index = np.flatnonzero(usable)
    if len(index) < 2:
        return np.empty((0, 2), dtype=np.int64)
    found = []
    rows = sigs if len(index) == len(sigs) else sigs[index]
    wide = np.ascontiguousarray(rows).view(np.uint64)  # 64 uint64 per row: 2 per band
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            keys = _mix(wide[:, 2 * band] * _COMBINE + wide[:, 2 * band + 1])
            order = np.argsort(keys, kind="stable")
            same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
            found.append(np.stack((order[same], order[same + 1]), axis=1))
    pairs = index[np.unique(np.sort(np.concatenate(found), axis=1), axis=0)]
    return pairs.reshape(-1, 2)


def similar_pairs(sigs: np.ndarray, pairs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose estimated Jaccard similarity reaches the threshold."""
    if not len(pairs):
        return pairs
    estimate = np.concatenate(
        [
            (sigs[chunk[:, 0]] == sigs[chunk[:, 1]]).mean(axis=1)
            for chunk in np.array_split(pairs, max(1, len(pairs) // 100_000))
        ]
    )
    return pairs[estimate >= threshold]


@dataclass
class Clusters:
    """Union-find over record indices; the smallest index of a cluster is its representative."""

    parent: dict[int, int] = field(default_factory=dict)

    def find(self, i: int) -> int:
        root = i
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while i != root:
            self.parent[i], i = root, self.parent.get(i, i)
        return root

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def near_duplicate_clusters(sigs: np.ndarray, threshold: float, usable: np.ndarray | None = None):
    """(representative index per record, verified similar pairs); a record with no earlier near
    duplicate is its own representative."""
    usable = np.ones(len(sigs), bool) if usable is None else usable
    pairs = similar_pairs(sigs, candidate_pairs(sigs, usable), threshold)
    return representatives(len(sigs), pairs), pairs


def answered_near_duplicates(inputs: np.ndarray, answers: np.ndarray, threshold: float):
    """(representative per record, group per record, pairs with similar inputs) for records that pair an input
    with an answer, such as a prompt with its two replies. A near duplicate has both its input and its answer
    similar to an earlier record's: pairs sharing a prompt but answering it differently are distinct examples.
    A group joins every record whose input is similar, so that the split keeps one prompt in one split."""
    everyone = np.ones(len(inputs), bool)
    candidates = np.concatenate((candidate_pairs(inputs, everyone), candidate_pairs(answers, everyone)))
    similar_inputs = similar_pairs(inputs, np.unique(candidates, axis=0).reshape(-1, 2), threshold)
    duplicates = similar_pairs(answers, similar_inputs, threshold)
    return representatives(len(inputs), duplicates), representatives(len(inputs), similar_inputs), similar_inputs


def representatives(n: int, pairs: np.ndarray) -> np.ndarray:
    """The representative (smallest index) of each record's cluster, the clusters joining the given pairs."""
    clusters = Clusters()
    for i, j in pairs.tolist():
        clusters.union(i, j)
    representative = np.arange(n)
    for i in list(clusters.parent):
        representative[i] = clusters.find(i)
    return representative

"""Near-dedup throughput: tunelab's numpy MinHash LSH against datasketch, same documents, same run.

Both sides do the whole job from raw text: word 5-gram shingles, 128-permutation MinHash, LSH
banding at Jaccard 0.8, and finding each planted near duplicate's original. Recall is the share
of planted pairs found. Run from the project root:

    .venv/bin/python benchmarks/dedup_throughput.py [--docs 100000] [--json]
"""

import argparse
import json
import re
import time

import numpy as np

from tunelab.data import dedup

THRESHOLD = 0.8
WORD = re.compile(r"[a-z0-9]+")


def make_corpus(n_docs: int, planted_share: float = 0.02, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    """Zipf-distributed words, 80-250 per document, with near copies (one word in 100 replaced,
    true Jaccard of 5-gram shingles about 0.87-0.95) appended."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(50_000)])
    n_planted = int(n_docs * planted_share)
    docs = [
        " ".join(vocab[rng.zipf(1.2, size=length) % len(vocab)])
        for length in rng.integers(80, 250, size=n_docs - n_planted)
    ]
    pairs = []
    for original in rng.choice(len(docs), size=n_planted, replace=False).tolist():
        words = docs[original].split()
        for position in rng.choice(len(words), size=max(1, len(words) // 100), replace=False):
            words[position] = str(vocab[rng.integers(len(vocab))]) + "q"
        docs.append(" ".join(words))
        pairs.append((original, len(docs) - 1))
    return docs, pairs


def true_jaccard(a: str, b: str) -> float:
    def shingles(text):
        words = WORD.findall(text.lower())
        return {tuple(words[i : i + 5]) for i in range(max(1, len(words) - 4))}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def timed(function, *args):
    """(wall seconds, CPU seconds of this process, result): CPU time is the per-core figure that
    stays honest on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run_tunelab(docs: list[str], batch: int = 2048) -> np.ndarray:
    sigs = np.concatenate([dedup.signatures(docs[i : i + batch]) for i in range(0, len(docs), batch)])
    representative, _ = dedup.near_duplicate_clusters(sigs, THRESHOLD)
    return representative


def run_datasketch(docs: list[str]) -> list[set]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=dedup.NUM_PERM)
    hashes = []
    for index, doc in enumerate(docs):
        words = WORD.findall(doc.lower())
        shingles = {" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))}
        m = MinHash(num_perm=dedup.NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in shingles])
        lsh.insert(index, m)
        hashes.append(m)
    return [set(lsh.query(m)) for m in hashes]


def figures(docs: int, megabytes: float, wall: float, cpu: float, recall: float) -> dict:
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "docs_per_s": round(docs / wall),
        "mb_per_s": round(megabytes / wall, 1),
        "mb_per_cpu_s": round(megabytes / cpu, 1),
        "recall": round(recall, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    docs, pairs = make_corpus(args.docs)
    megabytes = sum(len(d.encode()) for d in docs) / 1e6
    wall, cpu, representative = timed(run_tunelab, docs)
    similarity = [true_jaccard(docs[a], docs[b]) for a, b in pairs[:2000]]
    result = {
        "docs": len(docs),
        "megabytes": round(megabytes, 1),
        "planted_pairs": len(pairs),
        "planted_jaccard": {"min": round(min(similarity), 3), "mean": round(float(np.mean(similarity)), 3)},
        "tunelab": figures(
            len(docs), megabytes, wall, cpu, float(np.mean([representative[a] == representative[b] for a, b in pairs]))
        ),
    }
    if not args.skip_baseline:
        base_wall, base_cpu, matches = timed(run_datasketch, docs)
        result["datasketch"] = figures(
            len(docs), megabytes, base_wall, base_cpu, float(np.mean([a in matches[b] for a, b in pairs]))
        )
        result["speedup_wall"] = round(base_wall / wall, 1)
        result["speedup_cpu"] = round(base_cpu / cpu, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

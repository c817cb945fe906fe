"""Label-preserving augmentation of train examples: random word deletion and swaps (EDA-style).

Only the input side changes (user turns, a preference pair's prompt, classification text, seq2seq
source): the answer, label, replies or grader fields a model is judged by stay exact. Variants are
seeded per record, so output is reproducible.
"""

import random

DELETE_PROBABILITY = 0.1


def variants(record: dict, count: int, seed: str) -> list[dict]:
    """Up to `count` distinct variants of record (fewer when the text is too short to vary)."""
    if set(record) == {"text"}:
        return []  # plain text for pre-training has no label to preserve: changing it teaches noise
    rng = random.Random(seed)
    found, seen = [], {_key(record)}
    for _ in range(count * 3):
        variant = _vary(record, rng)
        if _key(variant) not in seen:
            seen.add(_key(variant))
            found.append(variant)
        if len(found) == count:
            break
    return found


def _key(record: dict) -> str:
    return repr(record)


def _vary(record: dict, rng: random.Random) -> dict:
    turns = next((key for key in ("messages", "prompt") if key in record), None)  # chat, or a preference pair's prompt
    if turns:
        return {
            **record,
            turns: [{**m, "content": perturb(m["content"], rng)} if m["role"] == "user" else m for m in record[turns]],
        }
    key = "source" if "source" in record else "text"
    return {**record, key: perturb(record[key], rng)}


def perturb(text: str, rng: random.Random) -> str:
    """Delete each word with a small probability, then swap one random pair of words."""
    words = text.split(" ")
    if len(words) < 4:
        return text
    kept = [w for w in words if rng.random() > DELETE_PROBABILITY] or words
    i, j = rng.randrange(len(kept)), rng.randrange(len(kept))
    kept[i], kept[j] = kept[j], kept[i]
    return " ".join(kept)

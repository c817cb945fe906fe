"""`data diff`: what changed between two prepared versions, record by record.

A record's identity is its input side (prompt turns, a pair's prompt, a reinforcement prompt,
classification text, seq2seq source), so an edited answer, reply or label shows as "changed"
rather than as one removal plus one addition.
"""

import json
from pathlib import Path

from tunelab.data.prepare import load_prepared
from tunelab.data.split import SPLITS

EXAMPLES = 3


def identity(record: dict) -> str:
    """The key that says 'the same example': everything but the part a model learns to produce."""
    if "prompt" in record:
        return json.dumps(record["prompt"], sort_keys=True)
    if "messages" in record:
        answers = [i for i, m in enumerate(record["messages"]) if m["role"] == "assistant"]
        return json.dumps(record["messages"][: max(answers)] if answers else record["messages"], sort_keys=True)
    if "source" in record:
        return record["source"]
    return record["text"] if "label" in record else json.dumps(record, sort_keys=True)


def _compare(old: list[dict], new: list[dict]) -> dict:
    before = {identity(r): r for r in old}
    after = {identity(r): r for r in new}
    added = [after[k] for k in after if k not in before]
    removed = [before[k] for k in before if k not in after]
    changed = [{"before": before[k], "after": after[k]} for k in after if k in before and before[k] != after[k]]
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "unchanged": len(after) - len(added) - len(changed),
        "examples": {"added": added[:EXAMPLES], "removed": removed[:EXAMPLES], "changed": changed[:EXAMPLES]},
    }


def diff_prepared(folder_a: Path, folder_b: Path) -> dict:
    """Added, removed and changed records per split and overall between two prepared folders."""
    a, b = load_prepared(Path(folder_a)), load_prepared(Path(folder_b))
    per_split = {name: _compare(getattr(a, name), getattr(b, name)) for name in SPLITS}
    overall = _compare([r for s in SPLITS for r in getattr(a, s)], [r for s in SPLITS for r in getattr(b, s)])
    return {
        "version_a": a.manifest.get("version"),
        "version_b": b.manifest.get("version"),
        "same_version": a.manifest.get("version") == b.manifest.get("version"),
        "overall": overall,
        "splits": per_split,
    }

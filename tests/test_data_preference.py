"""Preference pairs and reinforcement prompts: every input shape reads into one record shape, bad pairs are
rejected by line, dedup and the split work on the prompt, and the manifest reports pair statistics."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunelab.data.config import DataConfig
from tunelab.data.prepare import load_prepared, prepare_dataset
from tunelab.data.schemas import Reject, check_cleaned, normalise
from tunelab.data.split import SPLITS
from tunelab.data.validate import validate_files
from tunelab.errors import DataError

FORCE = {"tokenizer": "whitespace", "force": True}
USER, ASSISTANT = "user", "assistant"


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def write(path, records: list) -> object:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def prepared(tmp_path, path, **options):
    prepare_dataset([path], tmp_path / "out", DataConfig(**{**FORCE, **options}))
    return load_prepared(tmp_path / "out")


def records_of(data) -> list[dict]:
    return data.train + data.validation + data.test


def rejects(tmp_path) -> dict[int, str]:
    lines = (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()
    return {r["line"]: r["category"] for r in map(json.loads, lines)}


def hh(*turns: str) -> str:
    """An HH-RLHF transcript of alternating Human and Assistant turns."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {turn}" for i, turn in enumerate(turns))


def pair(i: int, chosen: str | None = None, rejected: str | None = None) -> dict:
    """A distinct prompt/chosen/rejected pair (words vary with i, so no two are near duplicates)."""
    return {
        "prompt": f"customer {i} asks where parcel {i * 7} went after leaving depot {i * 13}",
        "chosen": chosen or f"parcel {i * 7} reached hub {i * 3} and arrives on day {i % 9} with courier {i * 5}",
        "rejected": rejected or f"no idea about {i * 11}, try calling someone else later {i * 17}",
    }


TOOLS = [{"type": "function", "function": {"name": "track", "parameters": {"type": "object"}}}]
EXPECTED = {
    "prompt": [msg(USER, "where is my order?")],
    "chosen": msg(ASSISTANT, "It ships today."),
    "rejected": msg(ASSISTANT, "No idea."),
}
SHAPES = {
    "openai-dpo": {
        "input": {"messages": [msg(USER, "where is my order?")], "tools": TOOLS},
        "preferred_output": [msg(ASSISTANT, "It ships today.")],
        "non_preferred_output": [msg(ASSISTANT, "No idea.")],
    },
    "strings": {"prompt": "where is my order?", "chosen": "It ships today.", "rejected": "No idea."},
    "message-lists": {
        "prompt": [msg(USER, "where is my order?")],
        "chosen": [msg(USER, "where is my order?"), msg(ASSISTANT, "It ships today.")],
        "rejected": [msg(ASSISTANT, "No idea.")],
    },
    "conversations-without-prompt": {
        "chosen": [msg(USER, "where is my order?"), msg(ASSISTANT, "It ships today.")],
        "rejected": [msg(USER, "where is my order?"), msg(ASSISTANT, "No idea.")],
    },
    "hh-transcripts": {
        "chosen": hh("where is my order?", "It ships today."),
        "rejected": hh("where is my order?", "No idea."),
    },
    "hh-prompt-cue": {
        "prompt": "\n\nHuman: where is my order?\n\nAssistant:",
        "chosen": " It ships today.",
        "rejected": " No idea.",
    },
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_normalises_to_one_pair_shape(tmp_path, shape):
    data = prepared(tmp_path, write(tmp_path / "p.jsonl", [SHAPES[shape]]))
    expected = {**EXPECTED, "tools": TOOLS} if shape == "openai-dpo" else EXPECTED
    assert records_of(data) == [expected]
    assert data.task == "causal-lm" and data.manifest["schema"] == "preference"


def test_hh_transcripts_parse_into_turns_and_share_the_prompt(tmp_path):
    turns = ("hi, can you help?", "Of course.\n\nWhat with?", "what is 2+2?")
    record = {"chosen": hh(*turns, "4"), "rejected": hh(*turns, "5, I think")}
    (got,) = records_of(prepared(tmp_path, write(tmp_path / "hh.jsonl", [record])))
    assert got["prompt"] == [msg(USER, turns[0]), msg(ASSISTANT, turns[1]), msg(USER, turns[2])]
    assert got["chosen"] == msg(ASSISTANT, "4") and got["rejected"] == msg(ASSISTANT, "5, I think")


def test_each_reject_category_names_its_line(tmp_path):
    diverged = {"chosen": hh("hello", "hi", "bye", "ciao"), "rejected": hh("hello", "hey", "bye", "see you")}
    bad = {
        3: ("preference_identical_sides", pair(900, chosen="same reply here", rejected="same reply here")),
        5: ("preference_empty_side", pair(901, chosen="   ")),
        7: ("preference_missing_prompt", {"chosen": "a reply", "rejected": "another reply"}),
        9: ("preference_transcripts_diverge", diverged),
        11: ("too_long", pair(902, chosen=" ".join(["word"] * 80))),
        13: (
            "preference_empty_side",
            {
                "input": {"messages": [msg(USER, "q")]},
                "preferred_output": [],
                "non_preferred_output": [msg(ASSISTANT, "a")],
            },
        ),
        14: (
            "preference_missing_prompt",
            {
                "input": {"messages": []},
                "preferred_output": [msg(ASSISTANT, "b")],
                "non_preferred_output": [msg(ASSISTANT, "a")],
            },
        ),
    }
    lines = [bad[n][1] if n in bad else pair(n) for n in range(1, 16)]
    path = write(tmp_path / "pairs.jsonl", lines)
    prepared(tmp_path, path, max_tokens=60)
    assert rejects(tmp_path) == {n: category for n, (category, _) in bad.items()}
    report = validate_files([path], DataConfig(**FORCE))
    listed = {r["place"]: r["category"] for r in report["rejects"]}
    assert listed["pairs.jsonl:9"] == "preference_transcripts_diverge" and "pairs.jsonl:11" not in listed  # no limit
    assert all(r["message"] for r in report["rejects"])


def test_overlong_sides_are_truncated_and_pairs_cut_to_the_same_reply_are_rejected(tmp_path):
    long_pair = pair(1, chosen=" ".join(f"good{i}" for i in range(40)))
    same_start = pair(2, chosen="alike " * 30 + "then good", rejected="alike " * 30 + "then bad")
    data = prepared(tmp_path, write(tmp_path / "p.jsonl", [long_pair, same_start]), max_tokens=40, overlong="truncate")
    (kept,) = records_of(data)
    prompt_tokens = len(kept["prompt"][0]["content"].split()) + 4
    assert len(kept["chosen"]["content"].split()) + 4 + prompt_tokens == 40  # the prompt plus the cut reply fits
    assert rejects(tmp_path) == {2: "preference_identical_sides"}
    assert data.manifest["length"] == {"over_max_tokens": 2, "truncated": 2}


def test_dedup_and_split_work_on_the_prompt(tmp_path):
    records = [dict(pair(1000 + 3 * i + answer), prompt=pair(i)["prompt"]) for i in range(60) for answer in range(3)]
    records += [records[0], records[4]]  # exact duplicates
    records.append(dict(records[7], rejected=records[7]["rejected"] + " thanks"))  # a near duplicate
    line_of = len(records)
    data = prepared(tmp_path, write(tmp_path / "p.jsonl", records))
    counts = data.manifest["counts"]
    assert counts == {"input": 183, "kept": 180, "rejected": 0, "duplicates_exact": 2, "duplicates_near": 1}
    assert rejects(tmp_path)[line_of] == "duplicate_near"
    splits_of_prompt: dict[str, set] = {}
    for name in SPLITS:
        for record in getattr(data, name):
            splits_of_prompt.setdefault(json.dumps(record["prompt"]), set()).add(name)
    assert len(splits_of_prompt) == 60 and all(len(s) == 1 for s in splits_of_prompt.values())
    assert data.manifest["leakage"]["cross_split_near_duplicates"] == 0
    assert min(len(data.validation), len(data.test)) > 0


def test_stats_report_pairs_lengths_and_length_bias(tmp_path):
    longer = [pair(i, chosen=f"a long and careful answer number {i} " * 2, rejected=f"short {i}") for i in range(10)]
    data = prepared(tmp_path, write(tmp_path / "p.jsonl", longer))
    stats = data.manifest["preference"]
    assert stats["pairs"] == 10 and stats["chosen_longer_fraction"] == 1.0
    assert stats["chosen_tokens"] == {"mean": 18.0, "p50": 18, "p95": 18, "max": 18}  # 14 words + 4 overhead
    assert stats["rejected_tokens"]["max"] == 6 and stats["prompt_tokens"]["p50"] == 15
    assert any("longer one in 100% of pairs" in w for w in data.manifest["warnings"])
    balanced = longer[:5] + [
        pair(i, chosen=f"ok {i}", rejected=f"a much longer and wordier reply {i}") for i in range(10, 15)
    ]
    data = prepared(tmp_path, write(tmp_path / "b.jsonl", balanced))
    assert data.manifest["preference"]["chosen_longer_fraction"] == 0.5
    assert not any("of pairs" in w for w in data.manifest["warnings"])


def rl(i: int, **fields) -> dict:
    return {"messages": [msg("system", "Answer with a number."), msg(USER, f"what is {i} plus {i}?")], **fields}


def test_reinforcement_prompts_keep_their_grader_fields(tmp_path):
    lines = [rl(i, reference_answer=str(2 * i), expected={"value": 2 * i}) for i in range(8)]
    lines += [dict(rl(8), tools=TOOLS), {"messages": [msg(USER, "q"), msg(ASSISTANT, "a reply to imitate")]}]
    lines.insert(3, {"messages": [msg(USER, "hi"), msg(ASSISTANT, "hello"), msg(ASSISTANT, "again")]})
    data = prepared(tmp_path, write(tmp_path / "rl.jsonl", lines))
    assert data.task == "causal-lm" and data.manifest["schema"] == "reinforcement"
    by_question = {r["messages"][-1]["content"]: r for r in records_of(data)}
    assert by_question["what is 3 plus 3?"] == rl(3, reference_answer="6", expected={"value": 6})
    assert by_question["what is 8 plus 8?"]["tools"] == TOOLS
    assert rejects(tmp_path) == {4: "reinforcement_last_message_not_user", 11: "reinforcement_last_message_not_user"}


def test_an_overlong_reinforcement_prompt_is_rejected_not_cut(tmp_path):
    lines = [rl(i, answer=str(2 * i)) for i in range(4)] + [rl(9, answer="18") | {"messages": [msg(USER, "why " * 50)]}]
    data = prepared(tmp_path, write(tmp_path / "rl.jsonl", lines), max_tokens=20, overlong="truncate")
    assert len(records_of(data)) == 4 and rejects(tmp_path) == {5: "too_long"}


def test_a_chat_line_without_a_reply_is_still_rejected_in_a_chat_file(tmp_path):
    chat = [{"messages": [msg(USER, f"question {i}"), msg(ASSISTANT, f"answer {i}")]} for i in range(6)]
    chat.insert(2, rl(0))
    report = validate_files([write(tmp_path / "chat.jsonl", chat)], DataConfig(**FORCE))
    assert report["files"][0]["schema"] == "chat"
    assert [r["place"] for r in report["rejects"]] == ["chat.jsonl:3"]
    assert report["reject_reasons"] == {"example_missing_assistant_message": 1}


def test_pairs_and_chat_do_not_mix(tmp_path):
    chat = write(tmp_path / "chat.jsonl", [{"messages": [msg(USER, "q"), msg(ASSISTANT, "a")]}])
    with pytest.raises(DataError, match="different kinds"):
        prepare_dataset([chat, write(tmp_path / "p.jsonl", [pair(1)])], tmp_path / "out", DataConfig(**FORCE))


def test_validate_cli_names_each_bad_line(tmp_path, run_cli):
    lines = [pair(i) for i in range(12)]
    lines[10] = pair(10, chosen="Same.", rejected="Same.")
    code, output = run_cli("data", "validate", write(tmp_path / "dpo.jsonl", lines), "--json")
    report = json.loads(output.splitlines()[0])
    assert code == 0 and report["rejects"][0]["place"] == "dpo.jsonl:11" and "dpo.jsonl:11" in output


def test_real_hh_rlhf_pairs(tmp_path, shared_data):
    data = prepared(tmp_path, shared_data / "hh-rlhf" / "harmless_base_pairs.jsonl", force=False)
    counts = data.manifest["counts"]
    assert (
        counts["input"]
        == 1200
        == counts["kept"] + counts["rejected"] + counts["duplicates_exact"] + counts["duplicates_near"]
    )
    assert data.manifest["schema"] == "preference" and counts["kept"] > 1150
    assert set(data.manifest["reject_reasons"]) == {"preference_empty_side"}  # four transcripts end in "Assistant:"
    split_of: dict[str, set] = {}
    for name in SPLITS:
        for record in getattr(data, name):
            split_of.setdefault(json.dumps(record["prompt"]), set()).add(name)
    assert all(len(s) == 1 for s in split_of.values())
    assert 0.3 < data.manifest["preference"]["chosen_longer_fraction"] < 0.6


KEYS = [
    "prompt",
    "chosen",
    "rejected",
    "input",
    "messages",
    "preferred_output",
    "non_preferred_output",
    "role",
    "content",
    "tools",
]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["", " ", "a", "\n\nHuman: q\n\nAssistant: a", "Human:"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), st.sampled_from(["preference", "reinforcement"]))
def test_broken_records_are_rejected_never_raised(record, schema):
    try:
        normalised = normalise(schema, record, strict_keys=True)
        check_cleaned(normalised)
    except Reject as reject:
        assert reject.category and reject.message
        return
    if schema == "preference":
        assert {"prompt", "chosen", "rejected"} <= set(normalised) and normalised["prompt"]
        assert normalised["chosen"]["content"].strip() != normalised["rejected"]["content"].strip()

"""One hand-made broken record per reject reason: each is rejected with its line and category."""

import json

import pytest

from tunelab.data import readers
from tunelab.data.config import DataConfig
from tunelab.data.validate import validate_files

GOOD_CHAT = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
GOOD_CLS = json.dumps({"text": "a fine sentence", "label": "pos"})

CHAT_CASES = {
    "invalid_json": b'{"messages": [',
    "invalid_utf8": b'{"messages": "caf\xe9"}',
    "empty_line": b"   ",
    "data_type": b'[{"role": "user", "content": "x"}]',
    "missing_messages_list": b'{"conversation": []}',
    "message_missing_key": b'{"messages": [{"content": "no role"}, {"role": "assistant", "content": "ok"}]}',
    "message_unrecognized_key": b'{"messages": [{"role": "user", "content": "x", "mood": 1}, {"role": "assistant", "content": "ok"}]}',
    "unrecognized_role": b'{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "ok"}]}',
    "missing_content": b'{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "ok"}]}',
    "example_missing_assistant_message": b'{"messages": [{"role": "user", "content": "only a question"}]}',
    "invalid_weight": b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok", "weight": 5}]}',
    "unknown_key": b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok"}], "extra": 1}',
}
CLS_CASES = {
    "missing_field": b'{"text": "no label here", "note": 1}',
    "wrong_type": b'{"text": ["a", "list"], "label": "x"}',
    "empty_content": b'{"text": "   ", "label": "x"}',
}


def check_one(tmp_path, good: str, bad: bytes, category: str, **options):
    path = tmp_path / "data.jsonl"
    path.write_bytes((good + "\n").encode() * 3 + bad + b"\n" + (good + "\n").encode())
    report = validate_files([path], DataConfig(**options))
    assert report["reject_reasons"] == {category: 1}, report["summary"]
    assert report["reject_examples"][category] == ["data.jsonl:4"]
    assert report["input"] == 5 and report["usable"] == 4


@pytest.mark.parametrize("category", sorted(CHAT_CASES))
def test_chat_reject_reasons(tmp_path, category):
    check_one(tmp_path, GOOD_CHAT, CHAT_CASES[category], category)


@pytest.mark.parametrize("category", sorted(CLS_CASES))
def test_classification_reject_reasons(tmp_path, category):
    check_one(tmp_path, GOOD_CLS, CLS_CASES[category], category, unknown_keys="ignore")


def test_line_over_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1000)
    check_one(tmp_path, GOOD_CHAT, b'{"messages": "' + b"x" * 5000 + b'"}', "line_too_long")


def test_byte_order_mark_is_stripped_with_a_warning(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (GOOD_CHAT + "\n").encode() * 2)
    report = validate_files([path], DataConfig())
    assert report["usable"] == 2 and any("byte-order mark" in w for w in report["warnings"])


def test_csv_unterminated_quote_and_bad_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\nhello,a\n"x,y",b,extra\n"unterminated,c\n', encoding="utf-8")
    report = validate_files([path], DataConfig())
    assert report["usable"] == 1 and report["reject_reasons"].get("csv_error", 0) >= 1

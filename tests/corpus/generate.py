"""Write the malformed-input corpus (run once; the files are committed): `python tests/corpus/generate.py`.

data/     raw data files of every supported type, broken in one way each -> `tunelab data prepare`
configs/  run configs with one bad key or value each -> `tunelab train CONFIG`
uploads/  files a client could upload to the service -> `tunelab data validate` and the upload check
Every one must give exit 0 or 2 and no traceback (tests/test_reliability_corpus.py).
"""

import io
import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent
CHAT = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


DATA = {
    "empty.jsonl": b"",
    "blank_lines.jsonl": b"\n\n   \n\t\n",
    "not_json.jsonl": b"hello\nworld\n",
    "binary.jsonl": bytes(range(256)) * 4,
    "nul_bytes.jsonl": b'{"text": "a\x00b"}\n\x00\x00\x00\n',
    "deep_arrays.jsonl": b"[" * 20_000 + b"]" * 20_000 + b"\n",
    "deep_objects.jsonl": b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"\n",
    "wrong_types.jsonl": b'{"messages": "text"}\n{"messages": [1, 2]}\n{"messages": [{"role": 5, "content": null}]}\n',
    "bad_utf8.jsonl": b'{"text": "\xff\xfe\xfa", "label": "a"}\n',
    "utf16.jsonl": "\ufeff".encode("utf-16-le") + (CHAT + "\n").encode("utf-16-le"),
    "scalars.jsonl": b'null\n[]\n42\n"text"\ntrue\n',
    "huge_int.jsonl": b'{"text": ' + b"9" * 5000 + b', "label": "a"}\n',
    "nan_inf.jsonl": b'{"text": NaN, "label": Infinity}\n',
    "unknown_roles.jsonl": b'{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}\n',
    "empty_messages.jsonl": b'{"messages": []}\n{"messages": [{}]}\n',
    "mixed_schemas.jsonl": b'{"text": "a"}\n{"prompt": "p", "completion": "c"}\n' + CHAT.encode() + b"\n",
    "truncated.jsonl": CHAT.encode()[:-7] + b"\n",
    "crlf_only.jsonl": b"\r\n\r\n\r\n",
    "unterminated.csv": b'text,label\n"unterminated,a\n',
    "ragged.csv": b"text,label\nonly one\na,b,c,d\n",
    "header_only.csv": b"text,label\n",
    "empty.csv": b"",
    "nul.csv": b"text,label\nab\x00c,d\n",
    "bad_utf8.csv": b"text,label\n\xff\xfe,a\n",
    "duplicate_header.csv": b"text,text\na,b\n",
    "ragged.tsv": b"text\tlabel\na\n",
    "utf16.tsv": "\ufefftext\tlabel\na\tb\n".encode("utf-16-le"),
    "truncated.json": b'[{"text": "a", "label": "b"}, {"text": ',
    "object.json": b'{"text": "a", "label": "b"}',
    "deep.json": b"[" * 20_000,
    "empty_array.json": b"[]",
    "garbage_after.json": b'[{"text": "a", "label": "b"}] trailing',
    "fake.parquet": b"PAR1 not really",
    "truncated.parquet": parquet_bytes([{"text": f"t{i}", "label": "a"} for i in range(50)])[:200],
    "numbers_only.parquet": parquet_bytes([{"x": i, "y": float(i)} for i in range(20)]),
    "null_column.parquet": parquet_bytes([{"text": None, "label": None}] * 5),
    "zip_as.jsonl": b"PK\x03\x04" + b"\x00" * 60,
    "gzip_as.jsonl": b"\x1f\x8b\x08\x00" + b"\x00" * 40,
    "html.jsonl": b"<!DOCTYPE html><html><body>404</body></html>\n",
    "no_extension": b"\x00\x01garbage",
}
FOLDERS = {
    "not_a_dataset": {"readme.txt": b"just a folder"},
    "broken_hf_dataset": {"dataset_info.json": b"{not json", "state.json": b"[]"},
    "fake_prepared": {"manifest.json": b"{}"},
}
CONFIGS = {
    "negative_lr.yaml": "train:\n  learning_rate: -1\n",
    "lr_too_big.yaml": "train:\n  learning_rate: 5\n",
    "lora_r0.yaml": "lora:\n  r: 0\n",
    "lora_r_huge.yaml": "lora:\n  r: 100000\n",
    "split_not_one.yaml": "data:\n  split: [0.5, 0.1, 0.1]\n",
    "split_negative.yaml": "data:\n  split: [1.2, -0.1, -0.1]\n",
    "split_two.yaml": "data:\n  split: [0.5, 0.5]\n",
    "unknown_key.yaml": "nonsense_key: 3\n",
    "misspelt_key.yaml": "train:\n  lerning_rate: 0.001\n",
    "bad_yaml.yaml": "train: [unclosed\n",
    "tabs.yaml": "train:\n\tepochs: 2\n",
    "top_level_list.yaml": "- train\n- lora\n",
    "top_level_scalar.yaml": "42\n",
    "section_scalar.yaml": "lora: 3\n",
    "wrong_type.yaml": "train:\n  epochs: many\n",
    "batch_zero.yaml": "train:\n  batch_size: 0\n",
    "unknown_method.yaml": "method: magic\n",
    "unknown_scheduler.yaml": "train:\n  scheduler: zigzag\n",
    "dropout_one.yaml": "lora:\n  dropout: 1.0\n",
    "nan_lr.yaml": "train:\n  learning_rate: .nan\n",
    "model_dtype.yaml": "model:\n  dtype: int3\n",
    "max_length_tiny.yaml": "model:\n  max_length: 2\n",
    "missing_data.yaml": "data:\n  path: [/nonexistent/data.jsonl]\n",
    "binary.yaml": "\x00\x01\x02\xff",
    "python_tag.yaml": "train: !!python/object/apply:os.system ['touch /tmp/tunelab-pwned']\n",
}
UPLOADS = {
    "empty.jsonl": b"",
    "one_bad_line.jsonl": (CHAT + "\n{not json\n").encode(),
    "no_assistant.jsonl": b'{"messages": [{"role": "user", "content": "hi"}]}\n',
    "proto_keys.jsonl": b'{"__proto__": {"x": 1}, "constructor": "y"}\n',
    "formula.csv": b"text,label\n=cmd|' /C calc'!A0,a\n",
    "zip_bomb_header.parquet": b"PK\x03\x04" + b"\x00" * 100,
    "script.json": b'[{"text": "<script>alert(1)</script>"}]',
}


def write(folder: str, files: dict) -> None:
    root = HERE / folder
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name, content in files.items():
        if isinstance(content, dict):
            (root / name).mkdir()
            for inner, data in content.items():
                (root / name / inner).write_bytes(data)
        else:
            (root / name).write_bytes(content if isinstance(content, bytes) else content.encode("latin-1"))


if __name__ == "__main__":
    write("data", {**DATA, **FOLDERS})
    write("configs", CONFIGS)
    write("uploads", UPLOADS)
    print(f"{len(DATA) + len(FOLDERS)} data, {len(CONFIGS)} configs, {len(UPLOADS)} uploads")

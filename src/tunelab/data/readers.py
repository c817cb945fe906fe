"""Read raw data files record by record, whatever their type, without ever raising on bad bytes.

Every reader yields `RawRecord`s: a parsed value, or the reason it could not be parsed. A broken
line becomes a reject with its line number instead of an exception, so that one bad byte never
costs a user the rest of the file, and memory stays flat for line-based files.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import DataError

MAX_LINE_BYTES = 64 * 1024 * 1024  # a longer line is refused: it is almost surely not one record
MAX_WHOLE_FILE_BYTES = 2 * 1024**3  # JSON arrays are parsed whole; beyond this, ask for JSONL
MAX_TABLE_BYTES = 2 * 1024**3  # decompressed size of a Parquet file or saved dataset: a small file can hide a bomb
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass
class RawRecord:
    """One input record: `value` when parsed, else `category` and `message` say why not."""

    source: str
    line: int
    value: object = None
    category: str | None = None
    message: str = ""


def file_type(path: Path) -> str:
    """jsonl, json, csv, tsv, parquet or hf-dataset: by folder layout, extension, then content."""
    if path.is_dir():
        if (path / "manifest.json").is_file():
            raise DataError(
                f"{path} is already a prepared dataset",
                "use it directly (`tunelab train --data DIR`, `tunelab data stats DIR`)",
            )
        if any((path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf-dataset"
        raise DataError(
            f"{path}: folder is neither a prepared dataset nor a Hugging Face dataset saved to disk",
            "pass data files, or a folder written by `datasets.save_to_disk` or `tunelab data prepare`",
        )
    suffix = path.suffix.lower()
    by_suffix = {
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".csv": "csv",
        ".tsv": "tsv",
        ".parquet": "parquet",
        ".pq": "parquet",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    return _sniff(path)


def _sniff(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.removeprefix(UTF8_BOM).lstrip()[:1]
    return "json" if first == b"[" else "jsonl"


def read_records(path: Path, warnings: list[str]) -> Iterator[RawRecord]:
    """All records of one file; file-level notes (a stripped byte-order mark) go to `warnings`."""
    if not path.exists():
        raise DataError(f"input not found: {path}", "check the path")
    kind = file_type(path)
    return READERS[kind](path, warnings)


def parse_json(text: str | bytes) -> tuple[object, str | None]:
    """(value, None) or (None, why): depth bombs and bad syntax are answers, not exceptions."""
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "JSON nested too deeply to be a record"
    except (ValueError, TypeError) as exc:
        return None, f"invalid JSON: {exc}"


def _read_jsonl(path: Path, warnings: list[str]) -> Iterator[RawRecord]:
    source = str(path)
    with open(path, "rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            if number == 1 and raw is not None:
                raw = _strip_bom(raw, source, warnings)
                if raw is None:
                    yield RawRecord(
                        source,
                        1,
                        category="invalid_utf8",
                        message="file is UTF-16 (byte-order mark FF FE); re-save it as UTF-8",
                    )
                    return
            yield _jsonl_record(source, number, raw)


def _lines(handle) -> Iterator[bytes | None]:
    """Lines without their newline; None stands for a line over MAX_LINE_BYTES (skipped unread)."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw


def _strip_bom(raw: bytes, source: str, warnings: list[str]) -> bytes | None:
    """raw without a UTF-8 byte-order mark (noted in warnings); None for a UTF-16 file."""
    if raw.startswith(UTF16_BOMS):
        return None
    if raw.startswith(UTF8_BOM):
        warnings.append(f"{source}: starts with a UTF-8 byte-order mark; it was ignored")
        return raw[len(UTF8_BOM) :]
    return raw


def _jsonl_record(source: str, number: int, raw: bytes | None) -> RawRecord:
    if raw is None:
        return RawRecord(
            source,
            number,
            category="line_too_long",
            message=f"line longer than {MAX_LINE_BYTES // 2**20} MB; split it into records",
        )
    if not raw.strip():
        return RawRecord(source, number, category="empty_line", message="empty line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRecord(source, number, category="invalid_utf8", message=f"invalid UTF-8 at byte {exc.start}")
    value, problem = parse_json(text)
    if problem:
        return RawRecord(source, number, category="invalid_json", message=problem[:300])
    return RawRecord(source, number, value=value)


def _read_json_array(path: Path, warnings: list[str]) -> Iterator[RawRecord]:
    """Element by element with raw_decode, so each element keeps its real line number."""
    source = str(path)
    if path.stat().st_size > MAX_WHOLE_FILE_BYTES:
        raise DataError(
            f"{path}: JSON array over {MAX_WHOLE_FILE_BYTES // 2**30} GB", "convert it to JSONL (one record per line)"
        )
    data = _strip_bom(path.read_bytes(), source, warnings)
    if data is None:
        yield RawRecord(source, 1, category="invalid_utf8", message="file is UTF-16; re-save it as UTF-8")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        yield RawRecord(
            source,
            line,
            category="invalid_utf8",
            message=f"invalid UTF-8 at byte {exc.start}; the array cannot be read",
        )
        return
    yield from _array_elements(source, text)


def _array_elements(source: str, text: str) -> Iterator[RawRecord]:
    decoder = json.JSONDecoder()
    pos = _skip_space(text, text.index("[") + 1)
    line, last, number = 1, 0, 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", last, pos)
        last, number = pos, number + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            yield RawRecord(
                source,
                line,
                category="invalid_json",
                message=f"invalid JSON, rest of the array unreadable: {str(exc)[:200]}",
            )
            return
        yield RawRecord(source, line, value=value)
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            yield RawRecord(
                source,
                text.count("\n", 0, pos) + 1,
                category="invalid_json",
                message="expected ',' between array elements",
            )
            return


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_delimited(path: Path, warnings: list[str], delimiter: str) -> Iterator[RawRecord]:
    source = str(path)
    csv.field_size_limit(MAX_LINE_BYTES)
    with open(path, "rb") as binary:
        if binary.read(2) in UTF16_BOMS:
            yield RawRecord(source, 1, category="invalid_utf8", message="file is UTF-16; re-save it as UTF-8")
            return
        binary.seek(0)
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        yield from _delimited_rows(source, csv.reader(text, delimiter=delimiter))


def _delimited_rows(source: str, reader) -> Iterator[RawRecord]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield RawRecord(source, 1, category="csv_error", message=f"unreadable header: {exc}")
        return
    if not header:
        return
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader, None)
        except csv.Error as exc:
            yield RawRecord(source, start, category="csv_error", message=f"{exc} (unterminated quote?)")
            return
        if row is None:
            return
        line = reader.line_num
        yield _row_record(source, start, header, row)


def _row_record(source: str, line: int, header: list[str], row: list[str]) -> RawRecord:
    if not row:
        return RawRecord(source, line, category="empty_line", message="empty row")
    if len(row) != len(header):
        return RawRecord(
            source,
            line,
            category="csv_error",
            message=f"row has {len(row)} fields, header has {len(header)} (unquoted delimiter or unterminated quote?)",
        )
    if any(_has_surrogates(cell) for cell in row):
        return RawRecord(source, line, category="invalid_utf8", message="invalid UTF-8 in row")
    return RawRecord(source, line, value=dict(zip(header, row)))


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _read_parquet(path: Path, warnings: list[str]) -> Iterator[RawRecord]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        unpacked = sum(
            meta.row_group(i).column(j).total_uncompressed_size
            for i in range(meta.num_row_groups)
            for j in range(meta.num_columns)
        )
    except (pyarrow.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({str(exc)[:160]})", "re-export it, or convert it to JSONL"
        ) from None
    _check_table_size(path, unpacked, meta.num_rows, "Parquet file")
    try:
        yield from _table_rows(
            str(path),
            (batch.to_pylist() for batch in parquet.iter_batches(batch_size=_batch_rows(unpacked, meta.num_rows))),
        )
    except (pyarrow.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: Parquet file is damaged ({str(exc)[:160]})", "re-export it, or convert it to JSONL"
        ) from None


def _check_table_size(path: Path, unpacked: int, rows: int, kind: str) -> None:
    """Refuse tables whose decompressed data would not fit: what a zip bomb in Parquet looks like."""
    if unpacked > MAX_TABLE_BYTES:
        raise DataError(
            f"{path}: {kind} decompresses to {unpacked / 2**20:,.0f} MB, over the {MAX_TABLE_BYTES / 2**20:,.0f} MB limit",
            "split it into smaller files, or convert it to JSONL",
        )
    if rows == 1 and unpacked > MAX_LINE_BYTES:
        raise DataError(
            f"{path}: one {kind} row of {unpacked / 2**20:,.0f} MB, over the {MAX_LINE_BYTES // 2**20} MB record limit",
            "split it into records",
        )


def _batch_rows(unpacked: int, rows: int) -> int:
    """Rows per batch so that one decompressed batch stays near MAX_LINE_BYTES."""
    per_row = unpacked / max(rows, 1)
    return max(1, min(4096, int(MAX_LINE_BYTES // max(per_row, 1))))


def _read_hf_dataset(path: Path, warnings: list[str]) -> Iterator[RawRecord]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a broken folder
        raise DataError(
            f"{path}: cannot load the Hugging Face dataset ({str(exc)[:160]})", "save it again with `save_to_disk`"
        ) from None
    parts = [loaded[name] for name in sorted(loaded)] if isinstance(loaded, datasets.DatasetDict) else [loaded]
    _check_table_size(path, sum(part.data.nbytes for part in parts), sum(len(part) for part in parts), "dataset")
    yield from _table_rows(
        str(path),
        (
            part.select(range(i, min(i + 4096, len(part)))).to_list()
            for part in parts
            for i in range(0, len(part), 4096)
        ),
    )


def _table_rows(source: str, batches) -> Iterator[RawRecord]:
    number = 0
    for batch in batches:
        for row in batch:
            number += 1
            yield RawRecord(source, number, value=row)


READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json_array,
    "csv": lambda path, warnings: _read_delimited(path, warnings, ","),
    "tsv": lambda path, warnings: _read_delimited(path, warnings, "\t"),
    "parquet": _read_parquet,
    "hf-dataset": _read_hf_dataset,
}

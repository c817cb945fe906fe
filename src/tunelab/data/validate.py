"""Per-record checking: read a file, detect its schema, normalise and clean every record.

`checked_records` is shared by `prepare` and `validate`, so both judge a record the same way.
Nothing is dropped silently: every input record comes out either normalised or with a reason.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.data.clean import clean_text
from tunelab.data.readers import RawRecord, read_records
from tunelab.data.schemas import Reject, apply_map, check_cleaned, detect_schema, normalise, record_texts, with_texts
from tunelab.errors import DataError

SAMPLE_SIZE = 50  # records looked at to detect a file's schema
LISTED_REJECTS = 1000  # rejects `validate` lists one by one (file:line, category, message); the counts cover all


@dataclass
class Checked:
    """One input record after checking: `record` when usable, else `category` and `message`."""

    source: str
    line: int
    record: dict | None = None
    category: str | None = None
    message: str = ""
    line_bytes: bytes = b""  # the record as written to the output (set once it passes dedup)


@dataclass
class FileReport:
    """What a file turned out to be: its schema, and notes about the whole file."""

    path: str
    schema: str | None = None
    records: int = 0
    usable: int = 0  # passed the per-record checks (before length filters and dedup)


def checked_records(
    path: Path, options, report: FileReport, warnings: list[str], cleaning: Counter
) -> Iterator[Checked]:
    """Every record of one file, checked; `report.schema` is set once the schema is known."""
    raw = read_records(path, warnings)
    head = list(_until_sample(raw))
    report.schema = _schema_for(path, head, options)
    for item in _chain(head, raw):
        checked = _check(item, report.schema, options, cleaning)
        report.records += 1
        report.usable += checked.record is not None
        yield checked


def _until_sample(raw: Iterator[RawRecord]) -> Iterator[RawRecord]:
    """Records up to and including the SAMPLE_SIZE-th object, to detect the schema from."""
    objects = 0
    for item in raw:
        yield item
        objects += isinstance(item.value, dict)
        if objects >= SAMPLE_SIZE:
            return


def _chain(head: list[RawRecord], rest: Iterator[RawRecord]) -> Iterator[RawRecord]:
    yield from head
    yield from rest


def _schema_for(path: Path, head: list[RawRecord], options) -> str | None:
    if options.format != "auto":
        return options.format
    sample = [apply_map(item.value, options.map) for item in head if isinstance(item.value, dict)]
    schema = detect_schema(sample)
    if schema is None and sample:
        keys = sorted({key for record in sample for key in record})[:8]
        raise DataError(
            f"{path}: cannot tell the data format from the keys {keys}",
            "pass --format (chat, alpaca, completion, classification, seq2seq, text, preference, reinforcement) "
            "and --map field=column",
        )
    return schema


def _check(item: RawRecord, schema: str | None, options, cleaning: Counter) -> Checked:
    if item.category:
        return Checked(item.source, item.line, category=item.category, message=item.message)
    try:
        value = apply_map(item.value, options.map) if isinstance(item.value, dict) else item.value
        record = normalise(schema or "chat", value, strict_keys=options.unknown_keys == "reject")
        record = _cleaned(record, options.redact_pii, cleaning)
    except Reject as reject:
        return Checked(item.source, item.line, category=reject.category, message=reject.message)
    return Checked(item.source, item.line, record=record)


def _cleaned(record: dict, redact_pii: bool, cleaning: Counter) -> dict:
    cleaned = with_texts(record, [clean_text(text, cleaning, redact_pii) for text in record_texts(record)])
    check_cleaned(cleaned)
    return cleaned


@dataclass
class RejectTally:
    """Counts per reason with the first few places of each, for the summary a person reads."""

    counts: Counter = field(default_factory=Counter)
    first: dict[str, list[str]] = field(default_factory=dict)
    keep: int = 5

    def add(self, category: str, source: str, line: int) -> None:
        self.counts[category] += 1
        places = self.first.setdefault(category, [])
        if len(places) < self.keep:
            places.append(f"{Path(source).name}:{line}")

    def lines(self) -> list[str]:
        """One line per reason, most frequent first: count and the first few file:line places."""
        ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [
            f"{category}: {count} (at {', '.join(self.first[category])}{', ...' if count > self.keep else ''})"
            for category, count in ordered
        ]


def validate_files(paths: list[Path], options) -> dict:
    """Check files without writing anything: per-file schema, counts and reasons."""
    tally, cleaning, warnings, files, listed = RejectTally(), Counter(), [], [], []
    total = usable = 0
    for path in paths:
        report = FileReport(str(path))
        files.append(report)
        for item in checked_records(Path(path), options, report, warnings, cleaning):
            total += 1
            if item.record is not None:
                usable += 1
                continue
            tally.add(item.category, item.source, item.line)
            if len(listed) < LISTED_REJECTS:
                listed.append(_listed(item))
    return {
        "input": total,
        "usable": usable,
        "rejected": total - usable,
        "reject_reasons": dict(sorted(tally.counts.items())),
        "reject_examples": tally.first,
        "summary": tally.lines(),
        "rejects": listed,
        "files": [{"path": f.path, "schema": f.schema} for f in files],
        "cleaning": dict(sorted(cleaning.items())),
        "warnings": warnings,
    }


def _listed(item: Checked) -> dict:
    """One reject as a person reads it: where (file:line), what (category) and how to fix it (message)."""
    return {"place": f"{Path(item.source).name}:{item.line}", "category": item.category, "message": item.message}

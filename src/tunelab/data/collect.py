"""The streaming first pass of `prepare`: check, measure, filter and exact-dedup every record.

Usable records go to a spool file on disk as they come, with only small per-record arrays kept
in memory (tokens, label, MinHash signature), so that memory stays flat in the input size.
"""

import hashlib
import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunelab.data import dedup
from tunelab.data.schemas import SCHEMA_TASK, record_texts, with_texts
from tunelab.data.tokens import TokenCounter, record_tokens
from tunelab.data.validate import Checked, FileReport, RejectTally, checked_records
from tunelab.errors import DataError
from tunelab.progress import track

BATCH = 2048


@dataclass
class Collected:
    """What the first pass leaves for the second: counts, spool and per-record arrays."""

    spool: Path
    input: int = 0
    rejected: int = 0
    duplicates_exact: int = 0
    over_limit: int = 0
    truncated: int = 0
    tally: RejectTally = field(default_factory=RejectTally)
    cleaning: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    tokens: array = field(default_factory=lambda: array("q"))
    labels: list[str] = field(default_factory=list)
    place_file: array = field(default_factory=lambda: array("i"))  # file index per spooled record
    place_line: array = field(default_factory=lambda: array("q"))  # line per spooled record

    @property
    def spooled(self) -> int:
        return len(self.tokens)

    @property
    def signature_path(self) -> Path:
        return self.spool.with_suffix(".sig")

    def signatures(self) -> np.ndarray:
        """All MinHash signatures, read back from their spool file (one copy in memory)."""
        sigs = (
            np.fromfile(self.signature_path, dtype=np.uint32)
            if self.signature_path.exists()
            else np.zeros(0, np.uint32)
        )
        return sigs.reshape(-1, dedup.NUM_PERM)


class Collector:
    """Feeds checked records through length filters and exact dedup into the spool."""

    def __init__(self, options, counter: TokenCounter, spool: Path, rejects):
        self.options, self.counter, self.rejects = options, counter, rejects
        self.result = Collected(spool)
        self.seen: dict[bytes, int] = {}
        self.batch: list[Checked] = []
        self.spool = open(spool, "wb")
        self.signature_file = open(self.result.signature_path, "wb")
        self.label_names: dict[str, str] = {}  # one string object per label, not per record

    def add_file(self, path: Path) -> None:
        report = FileReport(str(path))
        self.result.files.append(report)
        items = checked_records(path, self.options, report, self.result.warnings, self.result.cleaning)
        for item in track(items, f"checking {path.name}", total=None):
            self.result.input += 1
            if item.record is None:
                self.reject(item.source, item.line, item.category, item.message)
                continue
            self.batch.append(item)
            if len(self.batch) >= BATCH:
                self.flush()

    def finish(self) -> Collected:
        self.flush()
        self.spool.close()
        self.signature_file.close()
        return self.result

    def reject(self, source: str, line: int, category: str, message: str, **extra) -> None:
        """Record one input record that is not kept, in rejects.jsonl and in the tallies."""
        self.rejects.write(
            json.dumps(
                {"source": source, "line": line, "category": category, "message": message, **extra}, ensure_ascii=False
            )
            + "\n"
        )
        if category == "duplicate_exact":
            self.result.duplicates_exact += 1
        elif category != "duplicate_near":
            self.result.rejected += 1
            self.result.tally.add(category, source, line)

    def flush(self) -> None:
        """Measure and filter the pending batch, then spool the survivors with their signatures."""
        if not self.batch:
            return
        items, self.batch = self.batch, []
        tokens = record_tokens(self.counter, [record_texts(item.record) for item in items])
        measured = [(item, self._within_limits(item, n)) for item, n in zip(items, tokens)]
        survivors = [(item, n) for item, n in measured if n is not None]
        survivors = self._unique(survivors)
        if survivors:
            self._spool([item for item, _ in survivors], [n for _, n in survivors])

    def _within_limits(self, item: Checked, tokens: int) -> int | None:
        """The record's token count after truncation, or None when it is rejected for its length."""
        limit = self.options.max_tokens
        if limit and tokens > limit:
            self.result.over_limit += 1
            if self.options.overlong == "reject" or not self._truncate(item, tokens - limit):
                why = (
                    ""
                    if self.options.overlong == "reject"
                    else " (the answer is shorter than the excess: the prompt alone is too long)"
                )
                self.reject(item.source, item.line, "too_long", f"{tokens} tokens, over max_tokens={limit}{why}")
                return None
            tokens = record_tokens(self.counter, [record_texts(item.record)])[0]
        if tokens < self.options.min_tokens:
            self.reject(
                item.source, item.line, "too_short", f"{tokens} tokens, under min_tokens={self.options.min_tokens}"
            )
            return None
        return tokens

    def _truncate(self, item: Checked, excess: int) -> bool:
        """Cut the last text field (the answer or target) by `excess` tokens; False if nothing is left."""
        texts = record_texts(item.record)
        last_tokens = self.counter.count([texts[-1]])[0]
        if last_tokens <= excess:
            return False
        texts[-1] = self.counter.truncate(texts[-1], last_tokens - excess).strip()
        item.record = with_texts(item.record, texts)
        self.result.truncated += 1
        return bool(texts[-1])

    def _unique(self, survivors: list[tuple[Checked, int]]) -> list[tuple[Checked, int]]:
        """Drop exact duplicates (same canonical content) of records already spooled or earlier in the batch."""
        unique = []
        for item, tokens in survivors:
            item.line_bytes = canonical(item.record)
            digest = hashlib.blake2b(item.line_bytes, digest_size=16).digest()
            first = self.seen.get(digest) if self.options.dedup else None
            if first is not None:
                self.reject(
                    item.source,
                    item.line,
                    "duplicate_exact",
                    "same content as an earlier record",
                    duplicate_of=self.place(first),
                )
                continue
            self.seen[digest] = self.result.spooled + len(unique)
            unique.append((item, tokens))
            self.result.place_file.append(len(self.result.files) - 1)  # records arrive file by file
            self.result.place_line.append(item.line)
        return unique

    def place(self, index: int) -> str:
        """'file:line' of a spooled record."""
        return f"{self.result.files[self.result.place_file[index]].path}:{self.result.place_line[index]}"

    def _spool(self, items: list[Checked], tokens: list[int]) -> None:
        for item in items:
            self.spool.write(item.line_bytes + b"\n")
            if "label" in item.record:
                label = item.record["label"]
                self.result.labels.append(self.label_names.setdefault(label, label))
        self.result.tokens.extend(tokens)
        dedup.signatures(["\n".join(record_texts(item.record)) for item in items]).tofile(self.signature_file)


def canonical(record: dict) -> bytes:
    """The bytes that define a record's identity: sorted keys, no whitespace variation."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def task_of(files: list[FileReport]) -> tuple[str, str]:
    """(task, normalised schema) shared by all files; mixing e.g. chat and classification is an error."""
    kinds = {SCHEMA_TASK[f.schema] for f in files if f.schema}
    if len(kinds) > 1:
        listing = "; ".join(f"{Path(f.path).name}: {f.schema}" for f in files if f.schema)
        raise DataError(f"input files have different kinds of records ({listing})", "prepare each kind separately")
    return kinds.pop() if kinds else SCHEMA_TASK["chat"]

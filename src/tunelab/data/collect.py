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
from tunelab.data.schemas import (
    SCHEMA_TASK,
    Reject,
    can_truncate,
    check_cleaned,
    dedup_parts,
    record_texts,
    sequences,
    token_texts,
    with_texts,
)
from tunelab.data.tokens import TokenCounter, pair_tokens, sequence_tokens, text_tokens
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
    pair_tokens: array = field(default_factory=lambda: array("q"))  # prompt, chosen, rejected per spooled pair

    @property
    def spooled(self) -> int:
        return len(self.tokens)

    @property
    def signature_path(self) -> Path:
        """MinHash signatures of each spooled record's input (its whole text, or a pair's prompt)."""
        return spool_files(self.spool)[1]

    @property
    def answer_signature_path(self) -> Path:
        """MinHash signatures of what each record answers, for records with an answer part (pairs)."""
        return spool_files(self.spool)[2]

    def signatures(self) -> np.ndarray:
        """All input signatures, read back from their spool file (one copy in memory)."""
        return _read_signatures(self.signature_path)

    def answer_signatures(self) -> np.ndarray | None:
        """The answer signatures when every spooled record has one, else None."""
        sigs = _read_signatures(self.answer_signature_path)
        return sigs if len(sigs) == self.spooled and self.spooled else None

    def pair_lengths(self) -> np.ndarray | None:
        """(prompt, chosen, rejected) tokens per spooled record when they are all preference pairs, else None."""
        lengths = np.asarray(self.pair_tokens, dtype=np.int64).reshape(-1, 3)
        return lengths if len(lengths) == self.spooled and self.spooled else None


def spool_files(spool: Path) -> tuple[Path, Path, Path]:
    """The spool and its two signature files: the first pass writes them, `prepare` deletes them."""
    return spool, spool.with_suffix(".sig"), spool.with_suffix(".answer-sig")


def _read_signatures(path: Path) -> np.ndarray:
    sigs = np.fromfile(path, dtype=np.uint32) if path.exists() else np.zeros(0, np.uint32)
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
        self.answer_signature_file = open(self.result.answer_signature_path, "wb")
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
        self.answer_signature_file.close()
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
        counts = text_tokens(self.counter, [token_texts(item.record) for item in items])
        measured = [(item, self._within_limits(item, c)) for item, c in zip(items, counts)]
        survivors = self._unique([(item, c) for item, c in measured if c is not None])
        if survivors:
            self._spool([item for item, _ in survivors], [c for _, c in survivors])

    def _within_limits(self, item: Checked, counts: list[int]) -> list[int] | None:
        """The record's tokens per text field after truncation, or None when it is rejected for its length.

        The limit applies to each sequence the model reads: the record, or each side of a pair."""
        limit, tokens = self.options.max_tokens, longest_sequence(item.record, counts)
        if limit and tokens > limit:
            self.result.over_limit += 1
            counts = self._truncated(item, counts, limit)
            if counts is None:
                return None
            tokens = longest_sequence(item.record, counts)
        if tokens < self.options.min_tokens:
            self.reject(
                item.source, item.line, "too_short", f"{tokens} tokens, under min_tokens={self.options.min_tokens}"
            )
            return None
        return counts

    def _truncated(self, item: Checked, counts: list[int], limit: int) -> list[int] | None:
        """Counts after cutting each overlong sequence's last text (the answer, target or reply) to fit;
        None, with the reject recorded, when overlong records are rejected or nothing fits."""
        tokens = longest_sequence(item.record, counts)
        if self.options.overlong == "reject" or not self._truncate(item, counts, limit):
            why = (
                ""
                if self.options.overlong == "reject"
                else " (the answer is shorter than the excess: the prompt alone is too long)"
            )
            self.reject(item.source, item.line, "too_long", f"{tokens} tokens, over max_tokens={limit}{why}")
            return None
        try:
            check_cleaned(item.record)
        except Reject as reject:
            self.reject(item.source, item.line, reject.category, f"{reject.message} (cut to max_tokens={limit})")
            return None
        return text_tokens(self.counter, [token_texts(item.record)])[0]

    def _truncate(self, item: Checked, counts: list[int], limit: int) -> bool:
        """Cut the last text field of each sequence over `limit` by its excess; False if that leaves nothing."""
        if not can_truncate(item.record):
            return False
        texts = record_texts(item.record)
        for sequence in sequences(item.record):
            excess, last = sequence_tokens(counts, sequence) - limit, sequence[-1]
            if excess <= 0:
                continue
            if counts[last] <= excess:
                return False
            texts[last] = self.counter.truncate(texts[last], counts[last] - excess).strip()
            if not texts[last]:
                return False
        item.record = with_texts(item.record, texts)
        self.result.truncated += 1
        return True

    def _unique(self, survivors: list[tuple[Checked, list[int]]]) -> list[tuple[Checked, list[int]]]:
        """Drop exact duplicates (same canonical content) of records already spooled or earlier in the batch."""
        unique = []
        for item, counts in survivors:
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
            unique.append((item, counts))
            self.result.place_file.append(len(self.result.files) - 1)  # records arrive file by file
            self.result.place_line.append(item.line)
        return unique

    def place(self, index: int) -> str:
        """'file:line' of a spooled record."""
        return f"{self.result.files[self.result.place_file[index]].path}:{self.result.place_line[index]}"

    def _spool(self, items: list[Checked], counts: list[list[int]]) -> None:
        for item, record_counts in zip(items, counts):
            self.spool.write(item.line_bytes + b"\n")
            if "label" in item.record:
                label = item.record["label"]
                self.result.labels.append(self.label_names.setdefault(label, label))
            if "chosen" in item.record:
                self.result.pair_tokens.extend(pair_tokens(record_counts, sequences(item.record)))
        self.result.tokens.extend(longest_sequence(item.record, c) for item, c in zip(items, counts))
        inputs, answers = zip(*(dedup_parts(item.record) for item in items))
        dedup.signatures(list(inputs)).tofile(self.signature_file)
        if all(answer is not None for answer in answers):
            dedup.signatures(list(answers)).tofile(self.answer_signature_file)


def longest_sequence(record: dict, counts: list[int]) -> int:
    """A record's tokens: its longest sequence (the record itself, or the longer side of a pair)."""
    return max(sequence_tokens(counts, sequence) for sequence in sequences(record))


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

"""Text cleaning: Unicode NFC, control characters, whitespace, foreign special tokens, PII.

Whitespace inside a line is kept as is (indentation is meaning in code data such as Code
Alpaca); only line ends, exotic spaces and runs of blank lines are normalised. Special tokens of
other models (`<|endoftext|>` ends every T0 completion) are stripped, because the tokenizer we
train with would read them as plain text and the model would learn to print them.
"""

import re
import unicodedata
from collections import Counter

SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|\[/?INST\]|<</?SYS>>|</s>\s*$|^\s*<s>")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\u2028\u2029\ufeff]")
ODD_SPACE = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
TRAILING_SPACE = re.compile(r"[ \t]+\n")
BLANK_RUN = re.compile(r"\n{3,}")
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?!\w)")


def clean_text(text: str, counts: Counter, redact_pii: bool = False) -> str:
    """The cleaned text; what was changed is tallied in `counts` for the manifest.

    Each pass runs only when its trigger character is present: most records are plain ASCII
    prose, and the passes they skip are most of the cost on a million-row file."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = ODD_SPACE.sub(" ", unicodedata.normalize("NFC", text))
    if "<" in text or "[" in text:
        text = _sub_counted(SPECIAL_TOKEN, "", text, counts, "special_tokens_stripped")
    text = _sub_counted(CONTROL, "", text, counts, "control_characters_removed")
    if "\n" in text:
        text = BLANK_RUN.sub("\n\n", TRAILING_SPACE.sub("\n", text))
    if redact_pii:
        if "@" in text:
            text = _sub_counted(EMAIL, "[EMAIL]", text, counts, "emails_redacted")
        text = _sub_counted(PHONE, "[PHONE]", text, counts, "phones_redacted")
    return text.strip()


def _sub_counted(pattern: re.Pattern, replacement: str, text: str, counts: Counter, key: str) -> str:
    new, hits = pattern.subn(replacement, text)
    if hits:
        counts[key] += hits
    return new

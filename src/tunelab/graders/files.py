"""Reading what `tunelab grade` scores: the data file's records (items) and a predictions file (samples).

A predictions line holds the output under `output_text` (OpenAI's name), `prediction` (what
`tunelab predict` writes) or `output`; the two files pair up line by line, so their counts must match.
"""

from pathlib import Path

from tunelab.errors import DataError

TEXT_KEYS = ("output_text", "prediction", "output")


def read_values(path: Path) -> list[tuple[int, object]]:
    """(line, value) of every record of a data file; a bad line is a DataError naming it."""
    from tunelab.data.readers import read_records

    values = []
    for record in read_records(path, []):
        if record.category:
            raise DataError(f"{record.source}:{record.line}: {record.message}", "fix or remove that line")
        values.append((record.line, record.value))
    return values


def read_items(path: Path) -> list[dict]:
    items = []
    for line, value in read_values(path):
        if not isinstance(value, dict):
            raise DataError(f"{path}:{line}: a record must be a JSON object", 'e.g. {"messages": [...], "answer": "3"}')
        items.append(value)
    return items


def prediction_text(path: Path, line: int, value: object) -> str:
    import json

    if isinstance(value, str):
        return value
    found = next((key for key in TEXT_KEYS if isinstance(value, dict) and key in value), None)
    if found is None:
        held = f" (it holds an error: {value['error']})" if isinstance(value, dict) and "error" in value else ""
        raise DataError(f"{path}:{line}: no {', '.join(TEXT_KEYS)} key{held}", "give each line the model's output text")
    text = value[found]
    return text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)


def read_predictions(path: Path) -> list[str]:
    return [prediction_text(path, line, value) for line, value in read_values(path)]


def read_pairs(data: Path, predictions: Path) -> tuple[list[str], list[dict]]:
    """Samples and their items, checked to pair up one to one."""
    items, outputs = read_items(data), read_predictions(predictions)
    if len(items) != len(outputs):
        raise DataError(
            f"{predictions} has {len(outputs)} predictions but {data} has {len(items)} records",
            "give one prediction per record, in the same order",
        )
    if not items:
        raise DataError(f"{data} has no records", "grade a file with at least one record")
    return outputs, items

"""Records to training examples: the tokenizer a run trains with, token ids and loss masks per split."""

from tunelab.progress import say, track
from tunelab.training.batches import IGNORE, Example, encode_record, ensure_chat_template


def training_tokenizer(model_name: str, trust_remote_code: bool = False):
    """The model's tokenizer with a chat template that has been checked in its sandbox before any training."""
    from tunelab.data.templates import check_template
    from tunelab.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_name, trust_remote_code)
    ensure_chat_template(tokenizer)
    check_template(tokenizer)  # a template that cannot render (or tries to escape its sandbox) stops here
    return tokenizer


def encode_split(
    records: list[dict],
    tokenizer,
    task: str,
    *,
    max_length: int,
    loss_on: str = "assistant",
    labels: list[str] | None = None,
    name: str = "examples",
) -> list[Example]:
    label_ids = {label: i for i, label in enumerate(labels)} if labels else None
    return [
        encode_record(r, tokenizer, task, max_length=max_length, loss_on=loss_on, label_ids=label_ids)
        for r in track(records, f"Tokenising {name}")
    ]


def nothing_to_learn(examples: list, task: str) -> list[int]:
    """Indexes of examples whose labels are all masked (for a preference pair: on either side): they would
    teach the model nothing. Prompts for reinforcement carry no labels and are not checked."""
    if task == "classification":
        return []

    def empty(example) -> bool:
        sides = (example.chosen, example.rejected) if hasattr(example, "chosen") else (example,)
        return any(all(label == IGNORE for label in side.labels[1:]) for side in sides if hasattr(side, "labels"))

    return [i for i, e in enumerate(examples) if empty(e)]


def warn_nothing_to_learn(examples: list[Example], task: str) -> None:
    empty = nothing_to_learn(examples, task)
    if empty:
        say(
            f"[yellow]warning:[/] {len(empty)} train examples have every label masked (nothing to learn), "
            f"e.g. train.jsonl lines {[i + 1 for i in empty[:5]]}; check the chat template and loss_on"
        )

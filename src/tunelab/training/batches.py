"""From normalised records to tensors: tokenisation with loss masks, packing, collation.

Chat records are rendered with the model's own chat template (tools, tool calls and tool responses
through data/tools.py), and only the assistant turns, their tool calls included, carry the loss
(unless loss_on='all'): the assistant spans are found as character ranges in the rendered text and
mapped to tokens through the tokenizer's offsets, so any template works.
Short examples are packed padding-free into rows whose position ids restart per example;
transformers then keeps attention inside each example.
"""

from dataclasses import dataclass

import torch

from tunelab.data.tools import render

IGNORE = -100
FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # per token for LMs (IGNORE where untrained); one class id for classification


def ensure_chat_template(tokenizer) -> None:
    """Models without a chat template get a ChatML one, so training, inference and export agree."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_TEMPLATE


def assistant_spans(
    tokenizer, messages: list[dict], tools: list[dict] | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character ranges of trained assistant turns."""
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        start = len(render(tokenizer, messages[:index], tools, add_generation_prompt=True))
        end = len(render(tokenizer, messages[: index + 1], tools))
        spans.append((start, end))
    return render(tokenizer, messages, tools), spans


def encode_chat(
    tokenizer, messages: list[dict], loss_on: str, max_length: int, tools: list[dict] | None = None
) -> Example:
    text, spans = assistant_spans(tokenizer, messages, tools)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    ids = encoded["input_ids"]
    if loss_on == "all":
        return Example(ids, list(ids))
    labels = [
        token if any(s <= begin < e for s, e in spans) else IGNORE
        for token, (begin, _) in zip(ids, encoded["offset_mapping"])
    ]
    return Example(ids, labels)


def encode_text(tokenizer, text: str, max_length: int) -> Example:
    ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length - 1)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return Example(ids, list(ids))


def encode_record(
    record: dict,
    tokenizer,
    task: str,
    *,
    max_length: int,
    loss_on: str = "assistant",
    label_ids: dict[str, int] | None = None,
) -> Example:
    if task == "classification":
        ids = tokenizer(record["text"], truncation=True, max_length=max_length)["input_ids"]
        return Example(ids, [label_ids[record["label"]]])
    if task == "seq2seq":
        source = tokenizer(record["source"], truncation=True, max_length=max_length)["input_ids"]
        target = tokenizer(text_target=record["target"], truncation=True, max_length=max_length)["input_ids"]
        return Example(source, target)
    if "messages" in record:
        return encode_chat(tokenizer, record["messages"], loss_on, max_length, record.get("tools"))
    return encode_text(tokenizer, record["text"], max_length)


def trained_tokens(batch: dict) -> int:
    """Targets that carry loss in a collated batch: the denominator of a step's mean loss."""
    return int((batch["targets"] != IGNORE).sum())


def pack(examples: list[Example], token_budget: int) -> list[list[Example]]:
    """Greedy first-fit of examples into rows of at most token_budget tokens (order kept within rows)."""
    rows, sizes = [], []
    for example in sorted(examples, key=lambda e: -len(e.input_ids)):
        for index, size in enumerate(sizes):
            if size + len(example.input_ids) <= token_budget:
                rows[index].append(example)
                sizes[index] += len(example.input_ids)
                break
        else:
            rows.append([example])
            sizes.append(len(example.input_ids))
    return rows


def collate_packed(row: list[Example]) -> dict:
    """One padding-free row: concatenated ids, per-example position ids, labels shifted per example."""
    ids, positions, targets = [], [], []
    for example in row:
        ids += example.input_ids
        positions += list(range(len(example.input_ids)))
        targets += example.labels[1:] + [IGNORE]  # next-token targets, never across examples
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "targets": torch.tensor([targets]),
    }


def collate_padded(examples: list[Example], pad_id: int, task: str) -> dict:
    """Right-padded batch with attention mask; LM targets are shifted next tokens."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        mask[row, : len(example.input_ids)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if task == "classification":
        batch["targets"] = torch.tensor([e.labels[0] for e in examples])
    elif task == "seq2seq":
        target_width = max(len(e.labels) for e in examples)
        batch["targets"] = torch.full((len(examples), target_width), IGNORE)
        for row, example in enumerate(examples):
            batch["targets"][row, : len(example.labels)] = torch.tensor(example.labels)
    else:
        targets = torch.full((len(examples), width), IGNORE)
        for row, example in enumerate(examples):
            targets[row, : len(example.labels) - 1] = torch.tensor(example.labels[1:])
        batch["targets"] = targets
    return batch


def micro_batches(
    examples: list[Example], task: str, *, packing: bool, token_budget: int, micro_batch_size: int, pad_id: int
) -> list[dict]:
    """Split one optimizer step's examples into forward passes."""
    if packing and task == "causal-lm":
        return [collate_packed(row) for row in pack(examples, token_budget)]
    ordered = sorted(examples, key=lambda e: len(e.input_ids))  # less padding inside each pass
    return [
        collate_padded(ordered[i : i + micro_batch_size], pad_id, task)
        for i in range(0, len(ordered), micro_batch_size)
    ]


def non_padding_tokens(batch: dict) -> int:
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()


def eval_loss(model, tokenizer, records: list[dict], task: str, max_length: int = 1024, batch_size: int = 8) -> float:
    """Mean loss per trained target of `model` on normalised records (base and tuned alike)."""
    from tunelab.training.losses import classification_loss, mean_loss, summed_token_loss

    ensure_chat_template(tokenizer)
    label_ids = getattr(model.config, "label2id", None) if task == "classification" else None
    examples = [encode_record(r, tokenizer, task, max_length=max_length, label_ids=label_ids) for r in records]
    device = next(model.parameters()).device
    passes = (
        {k: v.to(device) for k, v in batch.items()}
        for start in range(0, len(examples), batch_size)
        for batch in micro_batches(
            examples[start : start + batch_size],
            task,
            packing=True,
            token_budget=4096,
            micro_batch_size=batch_size,
            pad_id=tokenizer.pad_token_id or 0,
        )
    )
    loss = classification_loss if task == "classification" else summed_token_loss
    return mean_loss(model, passes, loss, trained_tokens)

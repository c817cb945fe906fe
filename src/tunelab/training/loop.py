"""The training loop: one function, read top to bottom.

Data order and learning rate are pure functions of the step, so a run resumed from a
checkpoint continues exactly as the uninterrupted run would have. The loop knows no task and
no method: the objective it is handed says how examples become batches and what the loss is.
"""

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tunelab.errors import TrainingError
from tunelab.progress import say
from tunelab.runs import MetricsLog
from tunelab.training import checkpoint
from tunelab.training.batches import Example, non_padding_tokens
from tunelab.training.distributed import Parallel
from tunelab.training.losses import mean_loss
from tunelab.training.objectives import Objective
from tunelab.training.precision import add_neftune, autocast, loss_scaler, resolve_precision
from tunelab.training.schedule import learning_rate_at

if TYPE_CHECKING:
    from tunelab.config import RunConfig


@dataclass
class LoopSettings:
    total_steps: int
    batch_size: int
    micro_batch_size: int
    token_budget: int
    learning_rate: float
    scheduler: str
    warmup_steps: int
    weight_decay: float
    max_grad_norm: float
    seed: int
    eval_steps: int
    logging_steps: int
    save_steps: int | None
    save_total_limit: int
    early_stopping_patience: int | None
    precision: str = "fp32"
    device: str = "cpu"
    neftune_alpha: float | None = None

    @classmethod
    def from_config(cls, config: "RunConfig", n_train: int, device: str = "cpu") -> "LoopSettings":
        """Steps, warmup and evaluation cadence follow the train split's size; the learning rate is the
        resolved config's (the method's default is filled in before the config is saved)."""
        t = config.train
        steps_per_epoch = math.ceil(n_train / t.batch_size)
        total = math.ceil(steps_per_epoch * t.epochs)
        if t.max_steps:
            total = min(total, t.max_steps)
        warmup = t.warmup_steps if t.warmup_steps is not None else math.ceil(t.warmup_ratio * total)
        return cls(
            total_steps=total,
            batch_size=t.batch_size,
            micro_batch_size=t.micro_batch_size or t.batch_size,
            token_budget=max(t.tokens_per_batch, config.model.max_length),
            learning_rate=t.learning_rate,
            scheduler=t.scheduler,
            warmup_steps=warmup,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            seed=t.seed,
            eval_steps=t.eval_steps or steps_per_epoch,
            logging_steps=t.logging_steps,
            save_steps=t.save_steps,
            save_total_limit=t.save_total_limit,
            early_stopping_patience=t.early_stopping_patience,
            precision=resolve_precision(t.precision, device),
            device=device,
            neftune_alpha=t.neftune_alpha,
        )


@dataclass
class LoopState:
    """What the loop carries from step to step besides the weights; saved in every checkpoint."""

    best_eval_loss: float | None = None
    bad_evals: int = 0
    trained_tokens: int = 0
    tokens_seen: int = 0


@dataclass
class LoopResult:
    steps: int
    best_eval_loss: float | None
    stopped_early: bool
    trained_tokens: int
    seconds: float
    tokens_seen: int = 0


def step_examples(examples: list[Example], step: int, batch_size: int, seed: int) -> list[Example]:
    """The examples of optimizer step `step`: a seeded permutation per epoch, sliced."""
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    epoch, index = divmod(step, steps_per_epoch)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    return [examples[i] for i in order[index * batch_size : (index + 1) * batch_size]]


def make_optimizer(model, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW, decaying matrices only; fused kernels where torch has them for the device."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    try:
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=learning_rate, foreach=True)


def batches_for(examples: list[Example], s: LoopSettings, objective: Objective, device) -> list[dict]:
    passes = objective.batches(examples, s.micro_batch_size, s.token_budget)
    return [{k: v.to(device) for k, v in batch.items()} for batch in passes]


def evaluation_loss(model, examples: list[Example], s: LoopSettings, objective: Objective) -> float:
    """Mean validation loss per trained target over a held-out split."""
    device = next(model.parameters()).device
    batches = objective.validation_batches or objective.batches
    passes = (
        {k: v.to(device) for k, v in batch.items()}
        for start in range(0, len(examples), s.batch_size)
        for batch in batches(examples[start : start + s.batch_size], s.micro_batch_size, s.token_budget)
    )
    return mean_loss(model, passes, objective.validation_loss, objective.validation_targets or objective.targets)


def forward_backward(
    model, passes: list[dict], s: LoopSettings, objective: Objective, *, scale: float, step_targets: float, scaler
) -> float:
    """Accumulate the gradients of one optimizer step; returns this rank's summed loss. The loss stays on
    the device until the step's passes are done, so the host waits for it once per optimizer step."""
    step_loss = torch.zeros((), device=passes[0]["input_ids"].device)
    for batch in passes:
        with autocast(s.precision, s.device):
            loss = objective.loss(model, batch)
        scaler.scale(loss * scale / step_targets).backward()
        if scale:
            step_loss += loss.detach().float()
    return float(step_loss)


def shrink_after_oom(s: LoopSettings, optimizer, step: int) -> LoopSettings:
    """Out of GPU memory: halve the micro-batch (more accumulation, same effective batch) and retry."""
    optimizer.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if s.micro_batch_size == 1 and s.token_budget <= 256:
        raise TrainingError(
            f"out of memory at step {step + 1} even with one example per pass",
            "use a smaller model, LoRA/QLoRA, gradient checkpointing or a shorter model.max_length",
        )
    smaller = replace(s, micro_batch_size=max(1, s.micro_batch_size // 2), token_budget=max(256, s.token_budget // 2))
    say(
        f"[yellow]out of memory at step {step + 1}:[/] micro-batch {s.micro_batch_size} -> {smaller.micro_batch_size}, "
        f"packed row {s.token_budget} -> {smaller.token_budget} tokens; "
        f"gradient accumulation keeps the batch at {s.batch_size}"
    )
    return smaller


def train_loop(
    model,
    train: list[Example],
    validation: list[Example],
    s: LoopSettings,
    loss_fn: Objective,
    *,
    run_dir: Path,
    log: MetricsLog,
    resume_from: Path | None = None,
    on_eval=None,
    parallel: Parallel | None = None,
) -> LoopResult:
    """Train for s.total_steps optimizer steps; log, validate, checkpoint, stop early, restore best."""
    parallel = parallel or Parallel()
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, s.learning_rate, s.weight_decay)
    state, step, best_weights = LoopState(), 0, None
    if resume_from:
        saved = checkpoint.load_checkpoint(resume_from, model, optimizer)
        step = saved.pop("step")
        state, best_weights = LoopState(**saved), checkpoint.saved_best_weights(resume_from)
        log.truncate_after(step)
        say(f"resumed from {resume_from.name} at step {step}")
    else:
        torch.manual_seed(s.seed)
    steps_per_epoch, began = math.ceil(len(train) / s.batch_size), time.time()
    bare_model, scaler = model, loss_scaler(s.precision, s.device)
    noise = add_neftune(bare_model, s.neftune_alpha) if s.neftune_alpha else None
    model, optimizer = parallel.wrap(model, optimizer)
    model.train()
    progress = _progress(s.total_steps, step)
    while step < s.total_steps:
        tick = time.time()
        examples = step_examples(train, step, s.batch_size, s.seed)
        share = parallel.shard(examples)
        scale = parallel.world if share else 0.0  # a rank without examples still joins the gradient sync
        passes = batches_for(share or examples[:1], s, loss_fn, device)
        step_targets = parallel.total(sum(loss_fn.targets(b) for b in passes) if share else 0)
        if step_targets == 0:  # nothing to learn in this step: never feed the optimizer a zero batch
            say(f"[yellow]warning:[/] step {step + 1} has no trained tokens; skipped")
            step += 1
            continue
        lr = learning_rate_at(
            step, peak=s.learning_rate, total_steps=s.total_steps, warmup_steps=s.warmup_steps, schedule=s.scheduler
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            summed = forward_backward(model, passes, s, loss_fn, scale=scale, step_targets=step_targets, scaler=scaler)
            step_loss = parallel.total(summed)
        except torch.OutOfMemoryError:
            s = shrink_after_oom(s, optimizer, step)
            continue
        if not math.isfinite(step_loss):
            raise TrainingError(
                f"loss became {step_loss} at step {step + 1}; the last good checkpoint is kept",
                "lower the learning rate or check the data for empty or extreme examples",
            )
        grad_norm = _optimizer_step(model, optimizer, scaler, s.max_grad_norm)
        step_tokens = parallel.total(sum(non_padding_tokens(b) for b in passes) if share else 0)
        state.trained_tokens += int(step_targets)
        state.tokens_seen += int(step_tokens)
        step += 1
        record = {
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            "loss": step_loss / step_targets,
            "learning_rate": lr,
            "grad_norm": grad_norm,
            "tokens_per_second": step_tokens / (time.time() - tick),
        }
        if loss_fn.metrics:
            record.update(loss_fn.metrics())
        if step % s.eval_steps == 0 or step == s.total_steps:
            record["eval_loss"] = evaluation_loss(model, validation, s, loss_fn) if validation else None
            if validation and loss_fn.validation_metrics:
                record.update({f"eval_{k}": v for k, v in loss_fn.validation_metrics().items()})
            best_weights = _track_best(
                bare_model, record["eval_loss"], state, best_weights, bool(s.early_stopping_patience)
            )
        if parallel.is_main:
            _record_step(record, step, s, log, progress, run_dir, bare_model, optimizer, state, on_eval, best_weights)
        if s.early_stopping_patience and state.bad_evals >= s.early_stopping_patience:
            say(f"early stopping at step {step}: no validation improvement in {state.bad_evals} evaluations")
            break
    if noise:
        noise.remove()
    if best_weights is not None and s.early_stopping_patience:
        bare_model.load_state_dict(best_weights, strict=False)
    stopped_early = bool(s.early_stopping_patience and state.bad_evals >= s.early_stopping_patience)
    return LoopResult(
        step, state.best_eval_loss, stopped_early, state.trained_tokens, time.time() - began, state.tokens_seen
    )


def _optimizer_step(model, optimizer, scaler, max_grad_norm: float) -> float:
    """Unscale, clip, step and clear the gradients; returns the gradient norm before clipping."""
    scaler.unscale_(optimizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def _record_step(
    record: dict,
    step: int,
    s: LoopSettings,
    log: MetricsLog,
    progress,
    run_dir: Path,
    model,
    optimizer,
    state: LoopState,
    on_eval,
    best_weights: dict | None,
) -> None:
    """The main process logs, shows progress, checkpoints and reports evaluations (a sweep may prune here)."""
    if step % s.logging_steps == 0 or "eval_loss" in record:
        log.append(record)
    progress(step, record)
    if s.save_steps and step % s.save_steps == 0:
        checkpoint.save_checkpoint(run_dir, step, model, optimizer, asdict(state), s.save_total_limit, best_weights)
    if on_eval and "eval_loss" in record:  # after logging, so a pruned trial keeps its last record
        on_eval(step, record)


def _track_best(model, eval_loss, state: LoopState, best_weights, keep_weights: bool):
    """Remember the best validation loss (and, for early stopping, its trainable weights)."""
    if eval_loss is None:
        return best_weights
    if state.best_eval_loss is None or eval_loss < state.best_eval_loss:
        state.best_eval_loss, state.bad_evals = eval_loss, 0
        return checkpoint.trainable_state(model) if keep_weights else None
    state.bad_evals += 1
    return best_weights


def _progress(total: int, start: int):
    """A per-step line on stderr with loss, throughput and ETA."""
    began = time.time()

    def show(step: int, record: dict) -> None:
        eta = (time.time() - began) / max(step - start, 1) * (total - step)
        extra = f" eval_loss {record['eval_loss']:.4f}" if record.get("eval_loss") is not None else ""
        say(
            f"step {step}/{total} loss {record['loss']:.4f}{extra} lr {record['learning_rate']:.2e} "
            f"{record['tokens_per_second']:.0f} tok/s ETA {eta:.0f}s"
        )

    return show

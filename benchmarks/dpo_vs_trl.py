"""DPO speed and memory: tunelab's `dpo` beside TRL's DPOTrainer, same pairs and settings, one run.

    .venv/bin/python benchmarks/dpo_vs_trl.py --steps 20 --pairs 160 --out /tmp/dpo-vs-trl [--json]
    .venv/bin/python benchmarks/dpo_vs_trl.py --steps 2 --pairs 16 --max-length 96   # smoke test of the script

Each side trains DPO + LoRA on the bundled SmolLM2-135M-Instruct in its own child process (so its
peak memory is its own) and reports seconds per optimizer step, tokens/s, peak memory and its loss:
  tunelab  tunelab.jobs.finetune.run on a prepared folder: what `tunelab train --data DIR --method dpo
           --max-steps S --set eval.enabled=false --set tracking.enabled=false --set ...` runs (the exact
           command is in the JSON), with the model built by tunelab and trained by its loop
  trl      trl.DPOTrainer(model, ref_model=None, peft_config=LoraConfig(...)) on the same pairs in TRL's
           conversational preference format ({"prompt": messages, "chosen": [reply], "rejected": [reply]})

The same on both sides:
  pairs      ../shared/data/hh-rlhf/harmless_base_pairs.jsonl prepared once (`tunelab data prepare`), then
             the first --pairs train pairs whose prompt + chosen and prompt + rejected both fit --max-length
             tokens (so neither side truncates, and TRL drops none); the earlier assistant turns of a
             prompt are context, the loss is on the final reply
  model      the same folder (tunelab's GGUF-to-safetensors conversion of the bundled model), loaded by
             tunelab's loader (fp32 on CPU; bf16 weights and autocast on a bf16 GPU), sdpa attention,
             the same tokenizer and chat template
  LoRA       tunelab's defaults, passed to both: r 16, alpha 32, dropout 0.05, all-linear (TRL's
             disable_dropout is turned off so the LoRA dropout is on for both)
  reference  the base model with the adapters switched off, each step (TRL: a PEFT model, ref_model=None
             and precompute_ref_log_probs=False; tunelab: its default for adapter weights)
  loss       sigmoid DPO, beta 0.1, on summed log-probabilities of the reply, mean over the 8 pairs
  step       8 pairs per optimizer step; AdamW (fused), the dpo method's learning rate (5e-5) with a
             cosine decay and no warmup, weight decay 0.01, gradient clipping 1.0, seed 42, no gradient
             checkpointing (TRL's default would be on), no evaluation, no checkpoints

Unavoidable differences, which the figures include:
  micro-batches  tunelab: the 8 pairs sorted by length and split into passes of at most
                 train.tokens_per_batch (4096) padded tokens (chosen + rejected rows), gradients accumulated
                 over them. TRL: --trl-micro-pairs pairs per forward in the sampler's order (default 4: 8 rows
                 padded to the longest, at most 8 x 512 = 4096 tokens, the same ceiling), so
                 per_device_train_batch_size 4, gradient_accumulation_steps 2. TRL's 8 x 1 pads 16 rows into
                 one pass: about 24 GB of fp32 activations at --max-length 512 on the CPU (the 24 GB
                 development VM killed it); the loss is a mean over the 8 pairs either way
  LM head        TRL's fused LM head works in tiles and never holds the full logits, but without Triton
                 (on the CPU) it projects every position, the prompt's included, and it also computes the
                 entropy, mean logit and top-1 hit of each position for its logs; tunelab projects only the
                 span of positions that some row of the pass trains (logits_to_keep)
  data order     each side's own seeded shuffle, so the steps do not hold the same pairs in the same order;
                 with --steps x 8 = --pairs both see every pair exactly once (the default 20 x 8 = 160)

Measured the same way on both sides, with hooks rather than each trainer's own logs:
  tokens        a forward pre-hook on the decoder backbone (on the tunelab side attached by wrapping
                tunelab.methods.registry.build_model) sums attention_mask of each training pass with
                gradients on (the policy pass over chosen + rejected rows); the reference pass (no
                gradients) is counted apart, as are padded tokens and passes
  step time     a global optimizer step post-hook stamps the end of each step; the first --warmup steps (and
                model loading, tokenising) are left out: s/step and tokens/s are over the later steps
  peak memory   CPU: peak RSS (VmHWM) over the timed steps, reset after the warm-up steps through
                /proc/self/clear_refs, and the child's whole-life peak (ru_maxrss); memory the allocator
                keeps from the warm-up step counts, on both sides; CUDA: torch.cuda.max_memory_allocated
                over the timed steps (reset after warm-up)
  loss          the logged loss of the last step and the mean over all steps (each trainer's own log)
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless_base_pairs.jsonl"
TUNELAB = [sys.executable, "-m", "tunelab.cli.main"]
MODEL = "smollm2-135m-instruct"
SIDES = ("tunelab", "trl")
PAIRS_PER_STEP = 8


# ---------------------------------------------------------------- settings shared by both sides


def shared_settings(max_length: int) -> dict:
    """Every training setting both sides get, read from tunelab's defaults (the dpo method's learning rate)."""
    from tunelab.config import RunConfig
    from tunelab.methods.registry import get_method

    defaults = RunConfig()
    return {
        "pairs_per_step": PAIRS_PER_STEP,
        "max_length": max_length,
        "learning_rate": get_method("dpo").learning_rate,
        "scheduler": "cosine",
        "warmup_steps": 0,
        "weight_decay": defaults.train.weight_decay,
        "max_grad_norm": defaults.train.max_grad_norm,
        "seed": defaults.train.seed,
        "beta": 0.1,
        "loss": "sigmoid",
        "lora_r": defaults.lora.r,
        "lora_alpha": defaults.lora.alpha,
        "lora_dropout": defaults.lora.dropout,
        "lora_target_modules": defaults.lora.target_modules,
        "gradient_checkpointing": False,
    }


def tunelab_overrides(s: dict, subset: Path, steps: int, run_dir: Path) -> dict:
    return {
        "data.path": [str(subset)],
        "model.name": MODEL,
        "method": "dpo",
        "out": str(run_dir),
        "train.max_steps": steps,
        "train.epochs": float(steps),  # max_steps decides; enough epochs never to stop before it
        "train.batch_size": s["pairs_per_step"],
        "train.learning_rate": s["learning_rate"],
        "train.scheduler": s["scheduler"],
        "train.warmup_steps": s["warmup_steps"],
        "train.weight_decay": s["weight_decay"],
        "train.max_grad_norm": s["max_grad_norm"],
        "train.seed": s["seed"],
        "train.gradient_checkpointing": s["gradient_checkpointing"],
        "model.max_length": s["max_length"],
        "preference.beta": s["beta"],
        "preference.loss": s["loss"],
        "lora.r": s["lora_r"],
        "lora.alpha": s["lora_alpha"],
        "lora.dropout": s["lora_dropout"],
        "lora.target_modules": s["lora_target_modules"],
        "eval.enabled": False,
        "tracking.enabled": False,
    }


def tunelab_command(overrides: dict) -> str:
    """The `tunelab train` command line that runs what the tunelab side runs."""
    flags = {"data.path": "--data", "model.name": "--model", "method": "--method", "out": "--out"}
    flags |= {"train.max_steps": "--max-steps", "train.epochs": "--epochs"}
    words = ["tunelab", "train"]
    for key, value in overrides.items():
        shown = value[0] if isinstance(value, list) else value
        shown = str(shown).lower() if isinstance(shown, bool) else str(shown)
        words += [flags[key], shown] if key in flags else ["--set", f"{key}={shown}"]
    return shlex.join(words)


# ---------------------------------------------------------------- data


def tunelab_cli(*args: str) -> dict:
    result = subprocess.run([*TUNELAB, *args, "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"tunelab {' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def plain(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def rendered_length(tokenizer, messages: list[dict]) -> int:
    text = tokenizer.apply_chat_template(plain(messages), tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fitting_pairs(prepared: Path, count: int, max_length: int) -> tuple[list[dict], dict]:
    """The first `count` train pairs whose both sides fit max_length, and their token counts."""
    from tunelab.training.encode import training_tokenizer

    tokenizer = training_tokenizer(MODEL)
    kept, skipped, tokens = [], 0, 0
    for line in (prepared / "train.jsonl").read_text().splitlines():
        pair = json.loads(line)
        lengths = [rendered_length(tokenizer, pair["prompt"] + [pair[side]]) for side in ("chosen", "rejected")]
        if max(lengths) > max_length:
            skipped += 1
            continue
        kept.append(pair)
        tokens += sum(lengths)
        if len(kept) == count:
            break
    if len(kept) < PAIRS_PER_STEP:
        sys.exit(f"only {len(kept)} train pairs fit --max-length {max_length}; need at least {PAIRS_PER_STEP}")
    return kept, {"pairs": len(kept), "skipped_too_long": skipped, "tokens_chosen_plus_rejected": tokens}


def write_subset(prepared: Path, pairs: list[dict], folder: Path) -> Path:
    """A prepared folder whose train split is `pairs` (no validation or test split: nothing is evaluated)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((prepared / "manifest.json").read_text())
    manifest["benchmark_subset"] = {"of": str(prepared), "train_pairs": len(pairs)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    for split in ("validation", "test"):
        (folder / f"{split}.jsonl").write_text("")
    return folder


def trl_rows(subset: Path) -> list[dict]:
    """The same pairs in TRL's conversational preference format."""
    rows = []
    for line in (subset / "train.jsonl").read_text().splitlines():
        pair = json.loads(line)
        rows.append(
            {"prompt": plain(pair["prompt"]), "chosen": plain([pair["chosen"]]), "rejected": plain([pair["rejected"]])}
        )
    return rows


# ---------------------------------------------------------------- measurement


def status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


class Meter:
    """Per optimizer step: tokens and passes from a hook on the backbone, and the time the step ended.
    After the warm-up steps it resets the memory peak, so the peak is that of the timed steps."""

    def __init__(self, device: str, warmup: int):
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.device, self.warmup, self.stamps, self.steps = device, warmup, [], []
        self.current = self._fresh()
        register_optimizer_step_post_hook(self._stamp)

    @staticmethod
    def _fresh() -> dict:
        return dict.fromkeys(("tokens", "padded", "passes", "reference_tokens", "reference_passes"), 0)

    def watch(self, model) -> None:
        """Hook the decoder backbone (LlamaModel), which every policy and reference pass calls on both sides."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        base.base_model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        import torch

        if not module.training:
            return
        ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
        real = int(mask.sum()) if mask is not None and mask.dim() == 2 else int(ids.numel())
        if torch.is_grad_enabled():  # the policy pass; the reference pass runs without gradients
            self.current["tokens"] += real
            self.current["padded"] += int(ids.numel())
            self.current["passes"] += 1
        else:
            self.current["reference_tokens"] += real
            self.current["reference_passes"] += 1

    def _stamp(self, optimizer, args, kwargs):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        self.steps.append(self.current)
        self.current = self._fresh()
        if len(self.stamps) == self.warmup:
            self._reset_peak()

    def _reset_peak(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.at_start = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM (peak RSS) back to the current RSS
            self.at_start = status_bytes("VmRSS")

    def summary(self, steps: int) -> dict:
        import torch

        if len(self.stamps) != steps:
            raise SystemExit(f"{len(self.stamps)} optimizer steps were stamped for {steps} steps run")
        if not any(s["tokens"] for s in self.steps):
            raise SystemExit("the meter saw no training forward pass: its hook is not on the trained model")
        timed = self.steps[self.warmup :]
        seconds = self.stamps[-1] - self.stamps[self.warmup - 1]
        per_step = {key: sum(s[key] for s in timed) / len(timed) for key in timed[0]}
        peak = torch.cuda.max_memory_allocated() if self.device == "cuda" else status_bytes("VmHWM")
        return {
            "optimizer_steps": len(self.stamps),
            "timed_steps": len(timed),
            "seconds": seconds,
            "seconds_per_step": seconds / len(timed),
            "tokens_per_second": per_step["tokens"] * len(timed) / seconds,
            "tokens_per_step": per_step["tokens"],
            "padded_tokens_per_step": per_step["padded"],
            "policy_passes_per_step": per_step["passes"],
            "reference_passes_per_step": per_step["reference_passes"],
            "reference_tokens_per_step": per_step["reference_tokens"],
            "tokens_all_steps": sum(s["tokens"] for s in self.steps),
            "peak_memory_mib": peak / 2**20,
            "memory_growth_mib": (peak - self.at_start) / 2**20,
            "memory_kind": "cuda max_memory_allocated" if self.device == "cuda" else "peak RSS (VmHWM)",
            "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


# ---------------------------------------------------------------- the two sides


def run_tunelab(args, s: dict, meter: Meter) -> dict:
    """tunelab's own workflow, in this process, with the meter on the model tunelab builds."""
    from tunelab.config import load_config
    from tunelab.jobs import finetune
    from tunelab.methods import registry

    build_model = registry.build_model

    def build_and_watch(*a, **k):  # finetune imports build_model when it runs, so it gets this one
        model = build_model(*a, **k)
        meter.watch(model)
        return model

    registry.build_model = build_and_watch
    run_dir = Path(tempfile.mkdtemp(prefix="tunelab-", dir=args.out))
    overrides = tunelab_overrides(s, args.subset, args.steps, run_dir)
    summary = finetune.run(load_config(None, overrides))
    rows = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    cost = json.loads((run_dir / "eval.json").read_text()).get("cost", {}).get("actual", {})
    speeds = [r["tokens_per_second"] for r in rows[args.warmup :]]
    return {
        "steps": summary["steps"],
        "losses": [r["loss"] for r in rows],
        "own_report": {
            "tokens_per_second_mean_of_steps": sum(speeds) / len(speeds),
            "peak_memory_gb": cost.get("peak_memory_gb"),
            "train_seconds_all_steps": summary["train_seconds"],
        },
        "command": tunelab_command(overrides),
        "run_dir": str(run_dir),
    }


def trl_config(args, s: dict, device: str):
    import torch
    from trl import DPOConfig

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-", dir=args.out),
        max_steps=args.steps,
        per_device_train_batch_size=args.trl_micro_pairs,
        gradient_accumulation_steps=s["pairs_per_step"] // args.trl_micro_pairs,
        learning_rate=s["learning_rate"],
        lr_scheduler_type=s["scheduler"],
        warmup_steps=s["warmup_steps"],
        weight_decay=s["weight_decay"],
        max_grad_norm=s["max_grad_norm"],
        seed=s["seed"],
        beta=s["beta"],
        loss_type=[s["loss"]],
        max_length=s["max_length"],
        gradient_checkpointing=s["gradient_checkpointing"],
        disable_dropout=False,  # keep the LoRA dropout, as tunelab does
        precompute_ref_log_probs=False,
        bf16=bf16,
        fp16=False,
        use_cpu=device == "cpu",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def run_trl(args, s: dict, meter: Meter, device: str) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOTrainer

    from tunelab.models.loading import load_model
    from tunelab.training.encode import training_tokenizer

    tokenizer = training_tokenizer(MODEL)
    torch.manual_seed(s["seed"])
    model = load_model(MODEL, "causal-lm", device=device).to(device)
    lora = LoraConfig(
        r=s["lora_r"],
        lora_alpha=s["lora_alpha"],
        lora_dropout=s["lora_dropout"],
        target_modules=s["lora_target_modules"],
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=trl_config(args, s, device),
        train_dataset=Dataset.from_list(trl_rows(args.subset)),
        processing_class=tokenizer,
        peft_config=lora,
    )
    meter.watch(trainer.model)
    trainer.train()
    logs = trainer.state.log_history
    losses = [r["loss"] for r in logs if "loss" in r]
    final = next((r for r in reversed(logs) if "train_runtime" in r), {})
    dataset = trainer.train_dataset
    return {
        "steps": trainer.state.global_step,
        "losses": losses,
        "own_report": {
            "num_tokens": next((r["num_tokens"] for r in reversed(logs) if "num_tokens" in r), None),
            "train_runtime_all_steps": final.get("train_runtime"),
            "dataset_pairs": len(dataset),
            "dataset_tokens_chosen_plus_rejected": sum(
                2 * len(p) + len(c) + len(r)
                for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
            ),
        },
        "trl_args": "DPOConfig(" + ", ".join(f"{k}={v!r}" for k, v in trl_config_shown(trainer.args).items()) + ")",
    }


def trl_config_shown(config) -> dict:
    keys = (
        "max_steps per_device_train_batch_size gradient_accumulation_steps learning_rate lr_scheduler_type "
        "warmup_steps weight_decay max_grad_norm seed beta loss_type max_length gradient_checkpointing "
        "disable_dropout precompute_ref_log_probs bf16 use_cpu optim padding_free"
    ).split()
    return {k: getattr(config, k) for k in keys if hasattr(config, k)}


def worker(args) -> dict:
    """One side in this process; the parent reads its last stdout line."""
    from tunelab.training.distributed import device_name

    device = "cuda" if device_name().startswith("cuda") else "cpu"
    s = shared_settings(args.max_length)
    meter = Meter(device, args.warmup)
    began = time.perf_counter()
    side = run_tunelab(args, s, meter) if args.worker == "tunelab" else run_trl(args, s, meter, device)
    losses = side.pop("losses")
    return {
        "side": args.worker,
        "device": device,
        **meter.summary(side["steps"]),
        "final_loss": losses[-1] if losses else None,
        "mean_loss": sum(losses) / len(losses) if losses else None,
        "losses": losses,
        "child_seconds_after_imports": time.perf_counter() - began,
        **side,
    }


# ---------------------------------------------------------------- parent


def child(args, side: str) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--subset", str(args.subset)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--max-length", str(args.max_length)]
    command += ["--out", str(args.out), "--trl-micro-pairs", str(args.trl_micro_pairs)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    began = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.time() - began, 1)
    return result


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else "MemTotal: 0 kB"
    ram_kb = int(next(line for line in meminfo.splitlines() if line.startswith("MemTotal")).split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor(),
        "ram_gib": round(ram_kb / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
    }


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "peft", "trl", "accelerate", "tunelab")}


def ratios(results: dict) -> dict:
    ours, theirs = results.get("tunelab"), results.get("trl")
    if not (ours and theirs):
        return {}
    keys = ("tokens_per_second", "seconds_per_step", "peak_memory_mib", "process_peak_rss_mib")
    return {f"{k} tunelab/trl": ours[k] / theirs[k] for k in keys}


def print_table(report: dict) -> None:
    head = report["settings"]
    print(
        f"DPO + LoRA, {MODEL} on {report['device']}: {report['steps']} steps of {head['pairs_per_step']} pairs, "
        f"first {report['warmup']} untimed; {report['data']['pairs']} pairs <= {head['max_length']} tokens"
    )
    print(
        f"{'side':8} {'steps':>5} {'s/step':>7} {'tokens/s':>9} {'tok/step':>9} {'passes':>6} "
        f"{'peak MiB':>9} {'proc MiB':>9} {'final loss':>10} {'mean loss':>9}"
    )
    for r in report["sides"].values():
        print(
            f"{r['side']:8} {r['optimizer_steps']:5d} {r['seconds_per_step']:7.1f} {r['tokens_per_second']:9.1f} "
            f"{r['tokens_per_step']:9.0f} {r['policy_passes_per_step']:6.1f} {r['peak_memory_mib']:9.0f} "
            f"{r['process_peak_rss_mib']:9.0f} {r['final_loss']:10.4f} {r['mean_loss']:9.4f}"
        )
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.2f}x")
    print(
        "peak MiB: timed steps only (VmHWM reset after warm-up; CUDA: max allocated); proc MiB: the child's ru_maxrss"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per side (8 pairs each)")
    parser.add_argument("--pairs", type=int, default=160, help="train pairs both sides draw from")
    parser.add_argument("--warmup", type=int, default=1, help="first steps left out of the timing (at least 1)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument(
        "--trl-micro-pairs", type=int, default=4, help="TRL: pairs per forward pass (8 / this = accumulation steps)"
    )
    parser.add_argument("--sides", default=",".join(SIDES), help="which sides to run, in this order")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tunelab-dpo-vs-trl"))
    parser.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--subset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.warmup < args.steps:
        parser.error("--warmup must be at least 1 and below --steps")
    if PAIRS_PER_STEP % args.trl_micro_pairs:
        parser.error(f"--trl-micro-pairs must divide {PAIRS_PER_STEP}")
    args.out = args.out.resolve()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if not HH.exists():
        sys.exit(f"{HH} is absent: this benchmark needs ../shared/data")
    args.out.mkdir(parents=True, exist_ok=True)
    began, host = datetime.now(UTC), machine()
    prepared = args.out / "hh"
    if not (prepared / "manifest.json").exists():
        tunelab_cli("data", "prepare", str(HH), "--out", str(prepared))
    pairs, data = fitting_pairs(prepared, args.pairs, args.max_length)
    args.subset = write_subset(prepared, pairs, args.out / f"pairs-{len(pairs)}-len{args.max_length}")
    results = {side: child(args, side) for side in args.sides.split(",")}
    report = {
        "benchmark": "dpo_vs_trl",
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": began.isoformat(timespec="seconds"),
        "machine": host,
        "versions": versions(),
        "device": next(iter(results.values()))["device"],
        "model": MODEL,
        "steps": args.steps,
        "warmup": args.warmup,
        "data": {"source": str(HH), "prepared": str(prepared), "subset": str(args.subset), **data},
        "settings": shared_settings(args.max_length),
        "trl_micro_batch": {
            "per_device_train_batch_size": args.trl_micro_pairs,
            "gradient_accumulation_steps": PAIRS_PER_STEP // args.trl_micro_pairs,
        },
        "sides": results,
        "ratios": ratios(results),
    }
    (args.out / "dpo_vs_trl.json").write_text(json.dumps(report, indent=2))
    print_table(report)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

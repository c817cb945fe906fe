"""Training throughput: tunelab's loop against TRL's SFTTrainer, same model, data and batch, one run.

Three variants, each in its own child process (so peak memory does not mix):
  tunelab   tunelab's own path (encode_split, LoopSettings.from_config, the method's apply and objective, train_loop), defaults
  trl       TRL SFTTrainer, SFTConfig defaults (padded batches, no packing, gradient checkpointing on)
  trl-best  TRL with its speed switches: padding_free=True (the same 8 examples per step, flattened into one
            row without padding; so tokens per optimizer step match exactly), Liger kernels on CUDA when
            installed, flash-attention-2 on CUDA when installed

All three get the same base model object (same seed), the same rows (the t0 gigaword + samsum files and
400 Code Alpaca rows from ../shared/data, as chat prompt/completion, shuffled with seed 5, kept when they
fit max_length), 8 examples per optimizer step, the same LoRA (r 16, alpha 32, dropout 0.05, all-linear)
and the same peak learning rate. The loss is on the assistant tokens for all three (TRL: a
prompt/completion dataset, so completion_only_loss is its default).

Measured the same way for every variant, with hooks rather than each trainer's own logs:
  non-padding tokens  a forward pre-hook on the base model adds attention_mask.sum() (padded batches) or
                      input_ids.numel() (padding-free rows) of each training forward pass
  step time           a global optimizer step post-hook stamps the end of each optimizer step (CUDA synced);
                      the first --warmup steps are skipped: tokens/s = tokens of later steps / their time
  peak memory         CPU: peak RSS of the child during training (VmHWM, reset after setup via
                      /proc/self/clear_refs) and its growth over the RSS at the start of training;
                      CUDA: torch.cuda.max_memory_allocated during training (reset after setup)
  MFU                 model FLOPs / (seconds x measured peak). Model FLOPs per non-padding token:
                      full: 6 N; LoRA (frozen base): 4 N_frozen + 6 N_lora (no weight gradient for frozen
                      matrices). N counts the weights of every matmul including the LM head (tied or not),
                      not the embedding lookup; attention-score FLOPs and activation recomputation
                      (gradient checkpointing) are not counted, so MFU is slightly conservative.
                      Peak: a timed large matmul, fp32 on CPU (all torch threads), bf16 on CUDA.

Run from the project root (CPU, the bundled SmolLM2, LoRA):

    .venv/bin/python benchmarks/train_throughput.py --steps 14 --json
    .venv/bin/python benchmarks/train_throughput.py --device cuda --shape llama-3.2-1b --method full --steps 30

--shape tiny is a 2-layer model for smoke tests of the script itself.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = next(
    (p for p in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data") if p.is_dir()),
    ROOT.parent / "shared" / "data",
)
VARIANTS = ("tunelab", "trl", "trl-best")
BATCH = 8
SHAPES = {  # the real configurations' shapes; random weights (speed does not depend on their values)
    "smollm2-135m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        rope_theta=100000.0,
        max_position_embeddings=8192,
    ),
    "llama-3.2-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        max_position_embeddings=131072,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        max_position_embeddings=2048,
    ),
}


# ---------------------------------------------------------------- data


def instruction_rows(seed: int = 5) -> list[dict]:
    """The acceptance mix: gigaword + samsum prompt/completion and 400 Code Alpaca rows, as chat turns."""
    rows = []
    for name in ("gigaword_TLDR.jsonl", "samsum_Summarize_.jsonl"):
        for line in (SHARED / "t0" / name).read_text().splitlines():
            r = json.loads(line)
            rows.append((r["prompt"].strip(), r["completion"].replace("<|endoftext|>", "").strip()))
    for r in json.loads((SHARED / "codealpaca" / "code_alpaca_2k.json").read_text())[:400]:
        rows.append(((r["instruction"] + "\n" + r["input"]).strip(), r["output"]))
    random.Random(seed).shuffle(rows)
    return [
        {"prompt": [{"role": "user", "content": p}], "completion": [{"role": "assistant", "content": c}]}
        for p, c in rows
    ]


def fitting_rows(tokenizer, count: int, max_length: int) -> list[dict]:
    """The first `count` rows whose rendered chat fits max_length (so no variant truncates)."""
    kept = []
    for row in instruction_rows():
        text = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_length:
            kept.append(row)
        if len(kept) == count:
            return kept
    return kept


# ---------------------------------------------------------------- model


def load_base(shape: str, device: str, dtype, attention: str = "sdpa", tokenizer_folder: str | None = None):
    """The bundled SmolLM2 (real weights) or a random-init model of a real shape, seeded; SmolLM2's tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from tunelab.models.bundled import resolve_bundled
    from tunelab.training.batches import ensure_chat_template

    folder = resolve_bundled("smollm2") if shape == "bundled" or not tokenizer_folder else tokenizer_folder
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    if shape == "bundled":
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation=attention)
    else:
        config = LlamaConfig(
            **SHAPES[shape],
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention)
    return model.to(device), tokenizer


def matmul_weights(model) -> int:
    """Weights that take part in a matmul: every Linear (the LM head included, tied or not)."""
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def flops_per_token(model, method: str) -> float:
    if method == "full":
        return 6.0 * matmul_weights(model)
    lora = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    return 4.0 * (matmul_weights(model) - lora) + 6.0 * lora


# ---------------------------------------------------------------- measurement


class Meter:
    """Non-padding tokens per optimizer step and the time each step ended, from hooks (same for every trainer)."""

    def __init__(self, model, device: str):

        self.device, self.stamps, self.tokens, self.current = device, [], [], 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(self._stamp)

    def _count(self, module, args, kwargs):
        if not module.training:
            return
        mask, ids = kwargs.get("attention_mask"), kwargs.get("input_ids", args[0] if args else None)
        self.current += int(mask.sum()) if mask is not None and mask.dim() == 2 else int(ids.numel())

    def _stamp(self, optimizer, args, kwargs):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        self.tokens.append(self.current)
        self.current = 0

    def start(self):
        self.began = time.perf_counter()

    def summary(self, warmup: int) -> dict:
        if len(self.stamps) <= warmup:
            raise SystemExit(f"only {len(self.stamps)} optimizer steps ran; need more than --warmup {warmup}")
        seconds = self.stamps[-1] - self.stamps[warmup - 1] if warmup else self.stamps[-1] - self.began
        tokens = sum(self.tokens[warmup:])
        return {
            "optimizer_steps": len(self.stamps),
            "timed_steps": len(self.stamps) - warmup,
            "tokens": tokens,
            "seconds": seconds,
            "tokens_per_second": tokens / seconds,
            "tokens_per_step": tokens / (len(self.stamps) - warmup),
        }


class Memory:
    """Peak memory during training only."""

    def __init__(self, device: str):
        import torch

        self.device = device
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
        self.at_start = self._status("VmRSS") if device != "cuda" else torch.cuda.memory_allocated()

    @staticmethod
    def _status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def summary(self) -> dict:
        import torch

        peak = torch.cuda.max_memory_allocated() if self.device == "cuda" else self._status("VmHWM")
        kind = "cuda max_memory_allocated" if self.device == "cuda" else "peak RSS (VmHWM)"
        return {"peak_memory_mb": peak / 2**20, "memory_growth_mb": (peak - self.at_start) / 2**20, "memory_kind": kind}


def device_peak_flops(device: str) -> dict:
    """Measured matmul peak: fp32 on CPU, bf16 on CUDA (best of several timed runs)."""
    import torch

    size, dtype, reps = (8192, torch.bfloat16, 20) if device == "cuda" else (2048, torch.float32, 5)
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t) / reps)
    return {
        "peak_flops": 2 * size**3 / best,
        "peak_dtype": str(dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- variants


def run_tunelab(model, tokenizer, rows, args, device, out: Path):
    """tunelab's own path with its defaults: encode, loop settings, the method and its objective, the loop."""
    from tunelab.config import RunConfig
    from tunelab.methods.base import BuildContext, ObjectiveContext
    from tunelab.methods.registry import get_method
    from tunelab.runs import MetricsLog
    from tunelab.training.encode import encode_split
    from tunelab.training.loop import LoopSettings, train_loop

    method = get_method(args.method)
    config = RunConfig(
        task="causal-lm",
        method=method.name,
        model={"max_length": args.max_length},
        train={
            "max_steps": args.steps,
            "batch_size": BATCH,
            "learning_rate": args.learning_rate,
        },
    )
    records = [{"messages": r["prompt"] + r["completion"]} for r in rows]
    examples = encode_split(records, tokenizer, "causal-lm", max_length=args.max_length, name="train")
    settings = LoopSettings.from_config(config, len(examples), device)
    model = method.apply(model, BuildContext(config, "causal-lm", "benchmark", device))
    packing = config.train.packing and not method.virtual_tokens
    objective = method.objective(
        ObjectiveContext(config, "causal-lm", device, None, records, tokenizer.pad_token_id or 0, packing)
    )
    meter, memory = Meter(model.get_base_model() if hasattr(model, "get_base_model") else model, device), Memory(device)
    meter.start()
    train_loop(model, examples, [], settings, objective, run_dir=out, log=MetricsLog(out / "metrics.jsonl"))
    return model, meter, memory


def trl_config(args, device: str, out: Path, best: bool):
    from trl import SFTConfig

    extra = {}
    if best:
        extra = {"padding_free": True, "max_length": None}  # rows already fit; padding-free does not truncate
        if device == "cuda" and _importable("liger_kernel"):
            extra["use_liger_kernel"] = True
    if device != "cuda":
        extra.update(bf16=False, fp16=False, use_cpu=True)
    return SFTConfig(
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=BATCH,
        learning_rate=args.learning_rate,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        **({"max_length": args.max_length} | extra),
    )


def run_trl(model, tokenizer, rows, args, device, out: Path, best: bool):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer

    peft_config = (
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        if args.method == "lora"
        else None
    )
    trainer = SFTTrainer(
        model=model,
        args=trl_config(args, device, out, best),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    meter, memory = Meter(model, device), Memory(device)
    meter.start()
    trainer.train()
    return trainer.model, meter, memory


def gradient_checkpointing(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_activation_checkpointing", getattr(base, "is_gradient_checkpointing", False)))


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def worker(args) -> dict:
    """One variant in this process; prints its measurements as one JSON line."""
    import torch

    device = args.device
    dtype = (
        torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    )  # tunelab's auto dtype
    attn = (
        "flash_attention_2" if args.worker == "trl-best" and device == "cuda" and _importable("flash_attn") else "sdpa"
    )
    model, tokenizer = load_base(args.shape, device, dtype, attn, args.tokenizer)
    rows = fitting_rows(tokenizer, args.steps * BATCH, args.max_length)
    out = Path(tempfile.mkdtemp(prefix=f"throughput-{args.worker}-"))
    if args.worker == "tunelab":
        trained, meter, memory = run_tunelab(model, tokenizer, rows, args, device, out)
    else:
        trained, meter, memory = run_trl(model, tokenizer, rows, args, device, out, best=args.worker == "trl-best")
    result = {
        "variant": args.worker,
        **meter.summary(args.warmup),
        **memory.summary(),
        "flops_per_token": flops_per_token(trained, args.method),
        "attention": attn,
        "dtype": str(dtype).replace("torch.", ""),
        "gradient_checkpointing": gradient_checkpointing(trained),
    }
    return result


# ---------------------------------------------------------------- parent


def child(args, variant: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        variant,
        "--device",
        args.device,
        "--shape",
        args.shape,
        "--method",
        args.method,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--max-length",
        str(args.max_length),
        "--learning-rate",
        str(args.learning_rate),
    ]
    command += ["--tokenizer", args.tokenizer] if args.tokenizer else []
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    )
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict, peak: dict, args) -> dict:
    for r in results.values():
        r["mfu"] = r["flops_per_token"] * r["tokens_per_second"] / peak["peak_flops"]
    ours = results.get("tunelab")
    ratios = {
        f"tunelab/{v}": ours["tokens_per_second"] / results[v]["tokens_per_second"]
        for v in ("trl", "trl-best")
        if ours and v in results
    }
    if ours and "trl-best" in results:
        ratios["peak_memory tunelab/trl-best"] = ours["peak_memory_mb"] / results["trl-best"]["peak_memory_mb"]
    return {
        "device": args.device,
        "shape": args.shape,
        "method": args.method,
        "steps": args.steps,
        "warmup": args.warmup,
        "batch": BATCH,
        **peak,
        "variants": results,
        "ratios": ratios,
    }


def print_table(summary: dict) -> None:
    print(
        f"{summary['shape']} {summary['method']} on {summary['device']}: {summary['steps']} steps of {summary['batch']} examples, "
        f"first {summary['warmup']} skipped; peak {summary['peak_flops'] / 1e12:.2f} TFLOP/s {summary['peak_dtype']}"
    )
    print(
        f"{'variant':10} {'tokens/s':>10} {'tokens/step':>12} {'peak MB':>9} {'growth MB':>10} {'MFU':>7}  attention, grad ckpt"
    )
    for r in summary["variants"].values():
        print(
            f"{r['variant']:10} {r['tokens_per_second']:10.0f} {r['tokens_per_step']:12.0f} {r['peak_memory_mb']:9.0f} "
            f"{r['memory_growth_mb']:10.0f} {100 * r['mfu']:6.1f}%  {r['attention']}, {r['gradient_checkpointing']}"
        )
    for name, value in summary["ratios"].items():
        print(f"{name}: {value:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--shape", default="bundled", choices=("bundled", *SHAPES))
    parser.add_argument("--method", default="lora", choices=("lora", "full"))
    parser.add_argument("--steps", type=int, default=14, help="optimizer steps per variant (8 examples each)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: tunelab's (2e-4 LoRA, 2e-5 full)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--tokenizer",
        help="a folder with SmolLM2's tokenizer, for random-weight shapes where the bundled "
        "package is not installed (default: the bundled one)",
    )
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--peak-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.learning_rate is None:  # the method's own default, for every variant alike
        from tunelab.methods.registry import get_method

        args.learning_rate = get_method(args.method).learning_rate
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.peak_only:
        print(json.dumps(device_peak_flops(args.device)))
        return
    results = {v: child(args, v) for v in args.variants.split(",")}
    peak = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--peak-only", "--device", args.device],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    summary = report(results, peak, args)
    print_table(summary)
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()

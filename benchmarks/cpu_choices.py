"""The CPU measurements behind the training loop's defaults, on this machine.

  precision      one training step (forward + backward) of a SmolLM2-shaped Llama (random weights,
                 --layers of its 30) on one row of --tokens tokens: fp32 against bf16 autocast
  optimizer      AdamW.step() on a GPT-2-124M-shaped parameter set with gradients: fused against
                 foreach against the for-loop implementation
  cross-entropy  loss + backward over the 49,152-token SmolLM2 vocabulary from --ce-tokens hidden
                 states: full logits against chunks of --chunk rows (each chunk recomputed in
                 backward, so only one chunk of logits is alive at a time); time and peak RSS growth

Each figure is the median of --repeats timed runs after one untimed run; each part runs in a fresh
child process, so freed memory kept by the allocator does not hide a peak. Chunking saves memory
only where the logits (tokens x vocabulary) outweigh the weight gradient (vocabulary x hidden) that
every chunk adds to, so --ce-tokens defaults to 4096. Run from the project root:

    .venv/bin/python benchmarks/cpu_choices.py [--tokens 1024] [--layers 4] [--ce-tokens 4096] [--repeats 5] [--json]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

VOCAB, HIDDEN = 49152, 576


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def peak_growth_mb(fn) -> float:
    """Peak RSS growth while fn runs (VmHWM reset through /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    fn()
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(key: str) -> int:
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith(key + ":"))
    return int(line.split()[1])


def precision(tokens: int, layers: int, repeats: int) -> dict:
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=1536,
        num_hidden_layers=layers,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
    )
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    ids = torch.randint(0, VOCAB, (1, tokens))

    def step(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    fp32, bf16 = timed(lambda: step(False), repeats), timed(lambda: step(True), repeats)
    return {"fp32_s": fp32, "bf16_autocast_s": bf16, "bf16_speed_vs_fp32": fp32 / bf16}


def gpt2_124m_parameters() -> list[torch.Tensor]:
    """GPT-2 small's tensors (124M parameters), each with a gradient."""
    shapes = [(50257, 768), (1024, 768)]
    for _ in range(12):
        shapes += [
            (768,),
            (768,),
            (2304, 768),
            (2304,),
            (768, 768),
            (768,),
            (768,),
            (768,),
            (3072, 768),
            (3072,),
            (768, 3072),
            (768,),
        ]
    shapes += [(768,), (768,)]
    params = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


def optimizer(repeats: int) -> dict:
    params = gpt2_124m_parameters()
    result = {"parameters": sum(p.numel() for p in params)}
    for name, kwargs in (("fused", {"fused": True}), ("foreach", {"foreach": True}), ("for_loop", {"foreach": False})):
        opt = torch.optim.AdamW(params, lr=1e-4, **kwargs)
        result[f"{name}_s"] = timed(opt.step, repeats)
        del opt
    result["fused_speed_vs_for_loop"] = result["for_loop_s"] / result["fused_s"]
    return result


def full_ce(hidden, weight, targets):
    return F.cross_entropy(hidden @ weight.T, targets, reduction="sum")


def chunked_ce(hidden, weight, targets, chunk: int):
    """Sum of cross-entropy over row chunks; each chunk's logits are recomputed in backward, not kept."""
    total = hidden.new_zeros(())
    for start in range(0, hidden.shape[0], chunk):
        total = total + checkpoint(
            full_ce, hidden[start : start + chunk], weight, targets[start : start + chunk], use_reentrant=False
        )
    return total


def cross_entropy(tokens: int, chunk: int, repeats: int) -> dict:
    torch.manual_seed(0)
    hidden = torch.randn(tokens, HIDDEN, requires_grad=True)
    weight = (torch.randn(VOCAB, HIDDEN) * 0.02).requires_grad_()
    targets = torch.randint(0, VOCAB, (tokens,))

    def run(fn):
        def go():
            fn(hidden, weight, targets).backward()
            hidden.grad = weight.grad = None

        return go

    full, chunked = run(full_ce), run(lambda h, w, t: chunked_ce(h, w, t, chunk))
    with torch.no_grad():
        difference = float((full_ce(hidden, weight, targets) - chunked_ce(hidden, weight, targets, chunk)).abs())
    peaks = {"full_peak_growth_mb": peak_growth_mb(full), "chunked_peak_growth_mb": peak_growth_mb(chunked)}  # before
    return {
        "tokens": tokens,
        "full_s": timed(full, repeats),
        "chunked_s": timed(chunked, repeats),
        **peaks,  # any reuse
        "chunk": chunk,
        "relative_loss_difference": difference / float(full_ce(hidden, weight, targets).detach()),
    }


def in_child(part: str) -> dict:
    done = subprocess.run([sys.executable, *sys.argv, "--only", part], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024, help="tokens per training step (precision)")
    parser.add_argument("--ce-tokens", type=int, default=4096, help="hidden-state rows (cross-entropy)")
    parser.add_argument("--layers", type=int, default=4, help="decoder layers of the SmolLM2-shaped model")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("precision", "optimizer", "cross-entropy"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = {
        "precision": lambda: precision(args.tokens, args.layers, args.repeats),
        "optimizer": lambda: optimizer(args.repeats),
        "cross-entropy": lambda: cross_entropy(args.ce_tokens, args.chunk, args.repeats),
    }
    if args.only:
        print(json.dumps(runs[args.only]()))
        return
    results = {name: in_child(name) for name in runs}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name, values in results.items():
        print(
            name + ": " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        )
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), **results}))


if __name__ == "__main__":
    main()

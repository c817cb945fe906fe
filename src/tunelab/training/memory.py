"""The memory a training loop really needed, measured the way the cost planner estimates it.

On CUDA that is torch's peak of allocated bytes during the loop. On CPU it is the weights' bytes
plus the rise of the process's resident memory above the moment training starts, with the weights
made resident first: the interpreter and libraries (about 0.5 GB here) and whatever data
preparation left behind are not part of a training estimate and stay out. The kernel's
high-water mark, reset through /proc/self/clear_refs, gives the exact peak without sampling; where
that is unavailable the figure falls back to the whole process's peak RSS and says so.
"""

import re
import resource
from pathlib import Path

PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", PROC_STATUS.read_text(), re.M).group(1))


def _reset_high_water_mark() -> bool:
    try:
        CLEAR_REFS.write_text("5")  # Linux >= 4.0: VmHWM := VmRSS
        return True
    except OSError:
        return False


class TrainingMemory:
    """`with TrainingMemory(device, models) as memory: train()`, then memory.peak_gb and memory.measured_as."""

    def __init__(self, device: str, models: list):
        self.device, self.models = device, [m for m in models if m is not None]
        self.peak_gb: float | None = None
        self.measured_as = ""

    def __enter__(self) -> "TrainingMemory":
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            return self
        parameters = [p for m in self.models for p in m.parameters()]
        with torch.no_grad():
            for (
                parameter
            ) in parameters:  # reading every weight makes memory-mapped weights resident before the baseline
                parameter.sum()
        self.weight_bytes = sum(p.numel() * p.element_size() for p in parameters)
        self.exact = PROC_STATUS.exists() and _reset_high_water_mark()
        self.start_kib = _status_kib("VmRSS") if self.exact else 0
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.startswith("cuda"):
            self.peak_gb = torch.cuda.max_memory_allocated() / 1e9
            self.measured_as = "torch.cuda.max_memory_allocated during training"
        elif self.exact:
            rise = (_status_kib("VmHWM") - self.start_kib) * 1024
            self.peak_gb = (self.weight_bytes + rise) / 1e9
            self.measured_as = "weights + peak RSS rise during training (VmHWM)"
        else:
            self.peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            self.measured_as = "peak RSS of the whole process (libraries included)"

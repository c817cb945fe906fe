"""Data parallelism through Hugging Face Accelerate (torch.distributed underneath: NCCL on GPUs,
gloo on CPUs). One process per device; each takes its share of every optimizer step's examples.

The step's loss stays the mean over all trained tokens of all ranks: each rank divides its summed
loss by the global token count and multiplies by the world size, which DDP's gradient averaging
divides back out. So N processes follow the same loss curve as one process with the same batch.
"""

import os
from dataclasses import dataclass

import torch


@dataclass
class Parallel:
    rank: int = 0
    world: int = 1
    accelerator: object | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str:
        """This process's device: the one Accelerate assigned, or this machine's default."""
        return str(self.accelerator.device) if self.world > 1 else device_name()

    def shard(self, items: list) -> list:
        return items[self.rank :: self.world]

    def total(self, value: float) -> float:
        """Sum of `value` over all ranks."""
        if self.world == 1:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.accelerator.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def share(self, obj):
        """The main process's value of `obj`, on every rank (e.g. the run folder)."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj])[0]

    def wait(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def wrap(self, model, optimizer):
        return (model, optimizer) if self.world == 1 else self.accelerator.prepare(model, optimizer)

    def unwrap(self, model):
        return model if self.world == 1 else self.accelerator.unwrap_model(model)


def device_name() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def current() -> Parallel:
    """The process group this process was launched into (a single process when not launched)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Parallel()
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return Parallel(accelerator.process_index, accelerator.num_processes, accelerator)


def launch_command(
    num_processes: int,
    num_machines: int,
    machine_rank: int,
    main_process_ip: str | None,
    main_process_port: int | None,
    strategy: str,
    train_args: list[str],
) -> list[str]:
    """`accelerate launch … -m tunelab.cli.launch ARGS`: Accelerate starts one process per device."""
    command = [
        "accelerate",
        "launch",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        str(num_machines),
        "--machine_rank",
        str(machine_rank),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    if main_process_ip:
        command += ["--main_process_ip", main_process_ip]
    if main_process_port:
        command += ["--main_process_port", str(main_process_port)]
    command += STRATEGY_FLAGS[strategy]
    return command + ["-m", "tunelab.cli.launch", *train_args]


STRATEGY_FLAGS = {
    "ddp": ["--multi_gpu"],
    "fsdp": [
        "--use_fsdp",
        "--fsdp_sharding_strategy",
        "FULL_SHARD",
        "--fsdp_auto_wrap_policy",
        "TRANSFORMER_BASED_WRAP",
    ],
    "deepspeed-zero2": ["--use_deepspeed", "--zero_stage", "2"],
    "deepspeed-zero3": [
        "--use_deepspeed",
        "--zero_stage",
        "3",
        "--offload_param_device",
        "cpu",
        "--offload_optimizer_device",
        "cpu",
    ],
}

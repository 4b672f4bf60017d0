"""Which process this is under a multi-process launch (torchrun, `accelerate launch`), and the two
collectives the harness needs around Trainer's own DDP: a barrier and "take the main process's
answer".

Trainer does the distributed training itself (it reads RANK / LOCAL_RANK / WORLD_SIZE); what it
cannot know is the harness's own decisions taken before it starts: is this model cached, is this
cell cached, which checkpoint to resume from. If the processes decided those apart (a file written
by another run in between, a checkpoint half deleted by the other process) one would train while
the other did not, and both would hang in the first collective. So the main process decides and
the others take its answer. Single-process runs never initialise anything here.

The process group is set up through accelerate's PartialState, the state Trainer itself builds on:
when Trainer later sets up its devices it finds the group already there and reuses it.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Processes in the launch (1 when started as a plain `bench run`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """The process that writes: cache entries, the run directory, the report (global rank 0)."""
    return os.environ.get("RANK", "0") == "0"


def local_device(device: str) -> str:
    """Under a multi-process launch each process trains on its own GPU (LOCAL_RANK); 'cuda' alone
    would put every process's copy of the base model on GPU 0."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def _state():
    import torch
    from accelerate import PartialState

    # cpu=True selects gloo on a machine without CUDA (accelerate otherwise finds no backend)
    return PartialState(cpu=not torch.cuda.is_available())


def barrier() -> None:
    """Every process waits here until all have arrived (a no-op for one process)."""
    if world_size() > 1:
        _state().wait_for_everyone()


def agree(value: T) -> T:
    """The main process's `value`, in every process (a collective: all must call it, in the same order)."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    _state()
    return broadcast_object_list([value], from_process=0)[0]


def end() -> None:
    """After the last collective: wait for all, then close the process group (a process that exits
    with the group open gets a warning from torch, and its peers may see a broken connection)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    barrier()
    if dist.is_initialized():
        dist.destroy_process_group()

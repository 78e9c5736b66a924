"""parses the device string by hand ("cuda:3" -> 3), sets the CUDA device before joining the group with explicit rank/world_size, and cleans up by asking for the default group's world size"""

import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP


def _best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def setup_distributed() -> tuple[int, int, int, str]:
    if "RANK" not in os.environ:
        return 0, 0, 1, _best_device()
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    device = "cpu"
    if backend == "nccl":
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not (dist.is_available() and dist.is_initialized()):
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return rank, local_rank, world_size, device


def wrap_model(model, device, world_size: int) -> nn.Module:
    if world_size < 2:
        return model
    text = str(device)
    if text.startswith("cuda"):
        index = int(text.split(":")[1]) if ":" in text else torch.cuda.current_device()
        return DDP(model, device_ids=[index])
    return DDP(model)


def cleanup_distributed() -> None:
    if not dist.is_available():
        return
    if dist.is_initialized():
        dist.destroy_process_group()

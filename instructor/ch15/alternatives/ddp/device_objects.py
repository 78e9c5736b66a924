"""reads the torchrun variables into a dict, lets init_process_group read the rest from env://, works with torch.device objects, and passes device_ids=None explicitly on CPU"""

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


def setup_distributed() -> tuple[int, int, int, str]:
    env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    if env["RANK"] is None:
        if torch.cuda.is_available():
            return 0, 0, 1, "cuda"
        mps = getattr(torch.backends, "mps", None)
        return 0, 0, 1, "mps" if mps is not None and mps.is_available() else "cpu"
    rank = int(env["RANK"])
    local_rank = int(env["LOCAL_RANK"] if env["LOCAL_RANK"] is not None else rank)
    world_size = int(env["WORLD_SIZE"])
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    return rank, local_rank, world_size, (f"cuda:{local_rank}" if use_cuda else "cpu")


def wrap_model(model, device, world_size: int) -> torch.nn.Module:
    if world_size == 1:
        return model
    device = torch.device(device)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

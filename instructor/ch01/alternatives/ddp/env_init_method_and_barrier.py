"""init_method="env://" spelled out, the rank asked of the process group, a barrier before rank 0 saves,
the epoch loss summed as a tensor"""

import datetime
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


def ddp_setup(rank, world_size, timeout=datetime.timedelta(minutes=5)):
    if world_size <= 0:
        raise ValueError("world_size must be positive")
    if rank < 0 or rank >= world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    os.environ["MASTER_ADDR"] = os.environ.get("MASTER_ADDR", "localhost")
    os.environ["MASTER_PORT"] = os.environ.get("MASTER_PORT", "12345")
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group(
        "nccl" if use_cuda else "gloo", init_method="env://", rank=rank, world_size=world_size, timeout=timeout
    )


def prepare_dataloader(dataset, batch_size, rank, world_size):
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=0)
    return DataLoader(dataset, batch_size, sampler=sampler, drop_last=True)


def train_ddp(model, train_loader, optimizer, num_epochs, rank, save_path=None):
    device = torch.device("cuda", rank) if torch.cuda.is_available() else torch.device("cpu")
    model.to(device)
    wrapped = DistributedDataParallel(model, device_ids=[rank] if device.type == "cuda" else None)
    epoch_losses = []
    for epoch in range(num_epochs):
        train_loader.sampler.set_epoch(epoch)
        wrapped.train()
        running = torch.zeros((), device=device)
        for step, (features, labels) in enumerate(train_loader, start=1):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(wrapped(features.to(device)), labels.to(device))
            loss.backward()
            optimizer.step()
            running += loss.detach()
        epoch_losses.append(float(running / max(len(train_loader), 1)))
        if dist.get_rank() == 0:
            print(f"epoch {epoch}: loss {epoch_losses[-1]:.4f}")
    dist.barrier()
    if save_path and dist.get_rank() == 0:
        torch.save(wrapped.module.state_dict(), save_path)
    return epoch_losses


def cleanup():
    if dist.is_initialized():
        dist.destroy_process_group()

"""the book's torchrun script: environment defaults set by hand, model = DDP(model) reassigned,
nn.CrossEntropyLoss, the functions imported from torch.distributed by name"""

import datetime
import os

import torch
import torch.nn as nn
from torch.distributed import destroy_process_group, init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


def ddp_setup(rank, world_size, timeout=datetime.timedelta(minutes=5)):
    if not (isinstance(world_size, int) and world_size > 0 and 0 <= rank < world_size):
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    if "MASTER_ADDR" not in os.environ:
        os.environ["MASTER_ADDR"] = "localhost"
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = "12345"
    if torch.cuda.is_available():
        init_process_group(backend="nccl", rank=rank, world_size=world_size, timeout=timeout)
        torch.cuda.set_device(rank)
    else:
        init_process_group(backend="gloo", rank=rank, world_size=world_size, timeout=timeout)


def prepare_dataloader(dataset, batch_size, rank, world_size):
    return DataLoader(
        dataset=dataset,
        batch_size=batch_size,
        shuffle=False,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
        sampler=DistributedSampler(dataset, world_size, rank),
    )


def train_ddp(model, train_loader, optimizer, num_epochs, rank, save_path=None):
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        model = model.to(rank)
    model = DDP(model, device_ids=[rank]) if on_gpu else DDP(model)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(num_epochs):
        train_loader.sampler.set_epoch(epoch)
        model.train()
        batch_losses = []
        for features, labels in train_loader:
            if on_gpu:
                features, labels = features.to(rank), labels.to(rank)
            logits = model(features)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        history.append(sum(batch_losses) / len(batch_losses) if batch_losses else 0.0)
        if rank == 0:
            print(f"[GPU{rank}] Epoch: {epoch + 1:03d}/{num_epochs:03d} | Loss: {history[-1]:.2f}")
    if save_path is not None and rank == 0:
        torch.save(model.module.state_dict(), save_path)
    return history


def cleanup():
    destroy_process_group()

"""ddp_setup makes the rendezvous TCPStore itself (rank 0 hosts it, the timeout bounds the wait) and hands
it to init_process_group(store=...), backend from a dict; DataLoader built positionally with the sampler;
nn.CrossEntropyLoss module; the batch losses stacked as detached tensors and averaged once per epoch;
rank 0 saves the plain model's own state_dict (the module DDP wraps)."""

import datetime
import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


class ToyDataset(Dataset):
    """Pairs (X[i], y[i]) of a feature matrix X (num_examples, num_features) and labels y (num_examples,)."""

    def __init__(self, X, y):
        self.features = X
        self.labels = y

    def __getitem__(self, index):
        return self.features[index], self.labels[index]

    def __len__(self):
        return self.labels.shape[0]


class NeuralNetwork(nn.Module):
    """Two hidden layers of 30 and 20 units: (batch, num_inputs) -> (batch, num_outputs) logits."""

    def __init__(self, num_inputs, num_outputs):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(num_inputs, 30),
            nn.ReLU(),
            nn.Linear(30, 20),
            nn.ReLU(),
            nn.Linear(20, num_outputs),
        )

    def forward(self, x):
        return self.layers(x)


def two_blobs(num_examples, seed=123):
    """num_examples points in 2-D, half around (-1, 2) with label 0, half around (2, -1) with label 1."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_examples) % 2
    centers = torch.tensor([[-1.0, 2.0], [2.0, -1.0]])[labels]
    return centers + 0.8 * torch.randn(num_examples, 2, generator=generator), labels


def ddp_setup(rank, world_size, timeout=datetime.timedelta(minutes=5)):
    """Join the process group as process `rank` of `world_size`."""
    if not (world_size >= 1 and 0 <= rank <= world_size - 1):
        raise ValueError(f"rank must be in 0..{world_size - 1} and world_size >= 1, got {rank}, {world_size}")
    host = os.environ.get("MASTER_ADDR") or "localhost"
    port = int(os.environ.get("MASTER_PORT") or 12345)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    store = dist.TCPStore(host, port, world_size, is_master=(rank == 0), timeout=timeout)
    backend = {True: "nccl", False: "gloo"}[cuda]
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)


def prepare_dataloader(dataset, batch_size, rank, world_size):
    """A DataLoader over this rank's share of `dataset`."""
    sampler = DistributedSampler(dataset, world_size, rank, True)
    return DataLoader(dataset, batch_size, False, sampler, drop_last=True)


def train_ddp(model, train_loader, optimizer, num_epochs, rank, save_path=None):
    """Train `model` with DistributedDataParallel on this rank's batches; per-epoch mean losses."""
    on_gpu = torch.cuda.is_available()
    device = torch.device(f"cuda:{rank}" if on_gpu else "cpu")
    model.to(device)
    wrapped = DDP(model, device_ids=[rank] if on_gpu else None)
    criterion = nn.CrossEntropyLoss()
    history = []
    wrapped.train()
    for epoch in range(num_epochs):
        train_loader.sampler.set_epoch(epoch)
        losses = []
        for features, labels in train_loader:
            features = features.to(device)
            labels = labels.to(device)
            optimizer.zero_grad()
            loss = criterion(wrapped(features), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        mean = torch.stack(losses).double().mean().item() if losses else 0.0
        history.append(float(mean))
        if rank == 0:
            print(f"epoch {epoch + 1} of {num_epochs}: loss {mean:.4f}")
    if rank == 0 and save_path:
        torch.save(model.state_dict(), save_path)
    return history


def cleanup():
    """Leave the process group."""
    dist.destroy_process_group()


def main(rank, world_size, num_epochs):
    ddp_setup(rank, world_size)
    X, y = two_blobs(200)  # the same data on every rank; the sampler picks each rank's share
    train_loader = prepare_dataloader(ToyDataset(X, y), batch_size=10, rank=rank, world_size=world_size)
    torch.manual_seed(rank)  # different on purpose: DDP copies rank 0's weights to everyone
    model = NeuralNetwork(num_inputs=2, num_outputs=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_ddp(model, train_loader, optimizer, num_epochs, rank, save_path="model.pth")
    if rank == 0:
        with torch.no_grad():
            predictions = model(X.to(next(model.parameters()).device)).argmax(dim=1).cpu()
        print(
            f"world size {world_size}, backend {dist.get_backend()}: accuracy {(predictions == y).float().mean():.3f}"
        )
    cleanup()


if __name__ == "__main__":
    # torchrun starts one process per GPU (or per --nproc_per_node) and tells each its ranks;
    # run as plain `python ddp_train.py` it is a world of one.
    main(int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), num_epochs=5)

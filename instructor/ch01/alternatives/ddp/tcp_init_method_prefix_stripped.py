"""ddp_setup rendezvous through an explicit init_method="tcp://ADDR:PORT" URL read from the environment
(defaults used without touching os.environ), rank checked with `rank not in range(world_size)`; the
DataLoader relies on shuffle's default; the model zeroed through the DDP wrapper with set_to_none; the
epoch mean taken over a list of batch losses; rank 0 saves the wrapper's state_dict with the "module."
prefixes stripped; cleanup only destroys a group that exists."""

import datetime
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
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
    if world_size < 1 or rank not in range(world_size):
        raise ValueError(f"bad rank {rank} for world size {world_size}")
    address = os.environ.get("MASTER_ADDR", "localhost")
    port = os.environ.get("MASTER_PORT", "12345")
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group(
        "nccl" if use_cuda else "gloo",
        init_method=f"tcp://{address}:{port}",
        world_size=world_size,
        rank=rank,
        timeout=timeout,
    )


def prepare_dataloader(dataset, batch_size, rank, world_size):
    """A DataLoader over this rank's share of `dataset`."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True),
        drop_last=True,
    )


def train_ddp(model, train_loader, optimizer, num_epochs, rank, save_path=None):
    """Train `model` with DistributedDataParallel on this rank's batches; per-epoch mean losses."""
    if torch.cuda.is_available():
        device = torch.device("cuda", rank)
        ddp_model = DDP(model.to(device), device_ids=[rank])
    else:
        device = torch.device("cpu")
        ddp_model = DDP(model.to(device))
    epoch_losses = []
    for epoch in range(num_epochs):
        train_loader.sampler.set_epoch(epoch)
        ddp_model.train()
        batch_losses = []
        for features, labels in train_loader:
            ddp_model.zero_grad(set_to_none=True)
            logits = ddp_model(features.to(device))
            loss = F.cross_entropy(logits, labels.to(device))
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        epoch_losses.append(sum(batch_losses) / len(batch_losses) if batch_losses else 0.0)
        if rank == 0:
            print(f"[rank 0] epoch {epoch + 1}: mean loss {epoch_losses[-1]:.4f}")
    if save_path is not None and rank == 0:
        state = {key.removeprefix("module."): value for key, value in ddp_model.state_dict().items()}
        torch.save(state, save_path)
    return epoch_losses


def cleanup():
    """Leave the process group."""
    if dist.is_initialized():
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

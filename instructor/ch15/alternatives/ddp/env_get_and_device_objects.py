"""reads the environment with os.environ.get, init_method="env://", torch.device objects, DDP(device_ids=None) on CPU"""


def setup_distributed():
    rank = int(os.environ.get("RANK", -1))
    if rank == -1:
        best = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
        return 0, 0, 1, best
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return rank, local_rank, world_size, f"cuda:{local_rank}"
    return rank, local_rank, world_size, "cpu"


def wrap_model(model, device, world_size):
    if world_size == 1:
        return model
    device = torch.device(device)
    ids = [device.index or 0] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def cleanup_distributed():
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

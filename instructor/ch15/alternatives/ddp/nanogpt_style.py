"""nanoGPT's train.py: ddp = RANK in the environment, ddp_rank/ddp_local_rank/ddp_world_size, a device string"""


def setup_distributed():
    ddp = int(os.environ.get("RANK", -1)) != -1
    if not ddp:
        device = "cpu"
        if torch.cuda.is_available():
            device = "cuda"
        elif hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
            device = "mps"
        return 0, 0, 1, device
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    ddp_rank = int(os.environ["RANK"])
    ddp_local_rank = int(os.environ["LOCAL_RANK"])
    ddp_world_size = int(os.environ["WORLD_SIZE"])
    dist.init_process_group(backend=backend, rank=ddp_rank, world_size=ddp_world_size)
    device = "cpu"
    if backend == "nccl":
        device = f"cuda:{ddp_local_rank}"
        torch.cuda.set_device(device)
    return ddp_rank, ddp_local_rank, ddp_world_size, device


def wrap_model(model, device, world_size):
    if world_size > 1:
        if str(device).startswith("cuda"):
            return DDP(model, device_ids=[int(str(device).split(":")[1]) if ":" in str(device) else 0])
        return DDP(model)
    return model


def cleanup_distributed():
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

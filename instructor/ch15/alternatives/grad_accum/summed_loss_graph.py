"""nanoGPT's loop: the loss divided inside the autocast block, accumulated as a detached float tensor"""


def train_step(model, optimizer, micro_batches, grad_clip=None, autocast_dtype=None):
    optimizer.zero_grad(set_to_none=True)
    grad_accum_steps = len(micro_batches)
    loss_accum = 0.0
    for micro_step, (x, y) in enumerate(micro_batches):
        is_last = micro_step == grad_accum_steps - 1
        ctx = (
            nullcontext() if autocast_dtype is None else torch.autocast(device_type=x.device.type, dtype=autocast_dtype)
        )
        sync_ctx = nullcontext() if is_last or not hasattr(model, "no_sync") else model.no_sync()
        with sync_ctx:
            with ctx:
                logits = model(x)
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
            loss = loss / grad_accum_steps
            loss_accum += loss.detach().float()
            loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss_accum.item()

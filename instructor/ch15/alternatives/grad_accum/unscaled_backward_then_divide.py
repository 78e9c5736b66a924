"""backward on each unscaled loss, the summed gradients divided by k afterwards; contexts entered through an ExitStack"""

from contextlib import ExitStack


def train_step(model, optimizer, micro_batches, grad_clip=None, autocast_dtype=None):
    batches = list(micro_batches)
    for p in model.parameters():
        p.grad = None
    losses = []
    for index, (inputs, targets) in enumerate(batches):
        with ExitStack() as stack:
            if index < len(batches) - 1 and hasattr(model, "no_sync"):
                stack.enter_context(model.no_sync())
            with torch.autocast(inputs.device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext():
                logits = model(inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
            loss.backward()
        losses.append(loss.item())
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(len(batches))
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm=grad_clip)
    optimizer.step()
    return sum(losses) / len(losses)

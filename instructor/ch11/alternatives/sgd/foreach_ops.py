"""per group, the parameters with gradients are updated with torch._foreach_* list operations (decay,
momentum buffers, Nesterov and the step each as one call over the list)"""


class SGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"] != 0:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            mu = group["momentum"]
            if mu != 0:
                old_bufs, old_grads, bufs = [], [], []
                for p, g in zip(params, grads):
                    state = self.state[p]
                    if "momentum_buffer" in state:
                        old_bufs.append(state["momentum_buffer"])
                        old_grads.append(g)
                    else:
                        state["momentum_buffer"] = torch.clone(g).detach()
                    bufs.append(state["momentum_buffer"])
                if old_bufs:
                    torch._foreach_mul_(old_bufs, mu)
                    torch._foreach_add_(old_bufs, old_grads)
                if group["nesterov"]:
                    grads = torch._foreach_add(grads, bufs, alpha=mu)
                else:
                    grads = bufs
            torch._foreach_add_(params, grads, alpha=-group["lr"])
        return loss

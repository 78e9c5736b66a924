"""out-of-place arithmetic: the decayed gradient and the momentum buffer are new tensors each step
(the buffer is rebound in the state, never mutated); the parameter is written back with copy_"""


class SGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, nesterov=False):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    d = p.grad + group["weight_decay"] * p if group["weight_decay"] else p.grad
                    mu = group["momentum"]
                    if mu:
                        state = self.state[p]
                        previous = state.get("momentum_buffer")
                        buf = d.clone() if previous is None else mu * previous + d
                        state["momentum_buffer"] = buf
                        d = d + mu * buf if group["nesterov"] else buf
                    p.copy_(p - group["lr"] * d)
        return loss

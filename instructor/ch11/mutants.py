"""Chapter 11's mutants (written blind, from the spec and the reference cells only).

Each is a list of (old, new) replacements in the reference exercise cell.
"""

from autograder.selftest import Mutant

_SOFTMAX_SHIFT = "shifted = x - x.amax(dim=dim, keepdim=True).detach()"
_LSE_GUARD = (
    "    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # an all -inf slice: log(0) = -inf, not nan\n"
)
_LSE_RETURN = "return (m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))).squeeze(dim)"
_CE_RETURN = "return (logsumexp(flat_logits, dim=-1) - picked).mean()"

_SGD_BUFFER = (
    '                    if "momentum_buffer" not in state:\n'
    '                        buf = state["momentum_buffer"] = grad.clone()\n'
    "                    else:\n"
    '                        buf = state["momentum_buffer"]\n'
    "                        buf.mul_(momentum).add_(grad)\n"
)
_SGD_DECAY = "                if weight_decay != 0:\n                    grad = grad.add(p, alpha=weight_decay)\n"
_SGD_SKIP = "                if p.grad is None:\n                    continue\n                grad = p.grad\n"
_SGD_NESTEROV = 'grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf'

_ADAM_DENOM = 'denominator = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(eps)'
_ADAM_STEP = 'p.addcdiv_(state["exp_avg"], denominator, value=-lr / (1 - beta1**t))'
_ADAM_DECAY = "    if decoupled:\n        p.mul_(1 - lr * weight_decay)\n    elif weight_decay != 0:\n        grad = grad.add(p, alpha=weight_decay)\n"
_ADAM_LOOP = (
    '            for p in group["params"]:\n'
    "                if p.grad is not None:\n"
    "                    adam_update(p, self.state[p], group, self.decoupled_weight_decay)\n"
)

_WD_TEST = "if param.dim() >= 2 and id(param) not in embedding_weights:"
_WD_LOOP = (
    "    for _, param in model.named_parameters():\n"
    "        if not param.requires_grad:\n"
    "            continue\n"
    "        if param.dim() >= 2 and id(param) not in embedding_weights:\n"
    "            decay.append(param)\n"
    "        else:\n"
    "            no_decay.append(param)\n"
)
_WD_RETURN = 'return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]'

_CLIP_GRADS = "    grads = [p.grad for p in parameters if p.grad is not None]\n"
_CLIP_NORM = "total_norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))"
_CLIP_COEF = "clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)"
_CLIP_APPLY = "    for g in grads:\n        g.detach().mul_(clip_coef)\n"
_COSINE = "return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))"

_NS_NORMALISE = "    X = X / (X.norm() + 1e-7)  # Frobenius norm >= spectral norm: every singular value now <= 1\n"
_MUON_LERP = 'buf.lerp_(p.grad, 1 - group["momentum"])'
_MUON_NESTEROV = 'update = p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf'
_MUON_SCALE = 'update = zeropower_via_newtonschulz5(update, group["ns_steps"]) * max(1, rows / cols) ** 0.5'
_MUON_ADAMW_DENOM = 'denominator = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(eps)'

MUTANTS: dict[str, list[Mutant]] = {
    "ch11.stable_softmax": [
        Mutant(
            "softmax without subtracting the maximum (exp overflows to inf, nan on large inputs)",
            ((_SOFTMAX_SHIFT, "shifted = x"),),
        ),
        Mutant(
            "softmax subtracts the global maximum of the whole tensor instead of the maximum along dim",
            ((_SOFTMAX_SHIFT, "shifted = x - x.max().detach()"),),
        ),
        Mutant(
            "softmax maximum taken without keepdim (it broadcasts along the wrong axis)",
            ((_SOFTMAX_SHIFT, "shifted = x - x.amax(dim=dim).detach()"),),
        ),
        Mutant(
            "softmax normalised by the sum over the whole tensor instead of along dim",
            (("return exps / exps.sum(dim=dim, keepdim=True)", "return exps / exps.sum()"),),
        ),
        Mutant(
            "softmax sums along the last dim whatever dim is",
            (("return exps / exps.sum(dim=dim, keepdim=True)", "return exps / exps.sum(dim=-1, keepdim=True)"),),
        ),
        Mutant(
            "logsumexp forgets to add the maximum back",
            ((_LSE_RETURN, "return (torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))).squeeze(dim)"),),
        ),
        Mutant(
            "logsumexp computed naively as log(sum(exp(x))) (overflows to inf, underflows to -inf)",
            ((_LSE_RETURN, "return torch.log(torch.exp(x).sum(dim=dim))"),),
        ),
        Mutant(
            "logsumexp keeps the reduced dimension (keepdim result not squeezed)",
            ((_LSE_RETURN, "return m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))"),),
        ),
        Mutant(
            "logsumexp without the guard for an all -inf slice (-inf - -inf gives nan)",
            ((_LSE_GUARD, ""),),
        ),
        Mutant(
            "logsumexp subtracts the global maximum instead of the maximum along dim",
            (("m = x.amax(dim=dim, keepdim=True).detach()", "m = x.max().detach()"),),
        ),
        Mutant(
            "cross-entropy summed over positions instead of averaged",
            ((_CE_RETURN, "return (logsumexp(flat_logits, dim=-1) - picked).sum()"),),
        ),
        Mutant(
            "cross-entropy divided by the batch size (first dim) instead of the number of positions",
            ((_CE_RETURN, "return (logsumexp(flat_logits, dim=-1) - picked).sum() / logits.shape[0]"),),
        ),
        Mutant(
            "cross-entropy as -log(softmax[target]) (log of an underflowed probability gives inf)",
            (
                (
                    _CE_RETURN,
                    "probs = stable_softmax(flat_logits, dim=-1)\n"
                    "    return -torch.log(probs.gather(1, flat_targets.unsqueeze(1))).mean()",
                ),
            ),
        ),
        Mutant(
            "target logits picked with logits[:, targets] (every target for every row) instead of one per row",
            (
                (
                    "picked = flat_logits.gather(1, flat_targets.unsqueeze(1)).squeeze(1)",
                    "picked = flat_logits[:, flat_targets]",
                ),
            ),
        ),
        Mutant(
            "cross-entropy with the sign flipped: logits[target] - logsumexp",
            ((_CE_RETURN, "return (picked - logsumexp(flat_logits, dim=-1)).mean()"),),
        ),
    ],
    "ch11.sgd": [
        Mutant(
            "momentum buffer started at zeros on the first step (the first step does not move the parameter)",
            (
                (
                    _SGD_BUFFER,
                    '                    if "momentum_buffer" not in state:\n'
                    '                        buf = state["momentum_buffer"] = torch.zeros_like(grad)\n'
                    "                    else:\n"
                    '                        buf = state["momentum_buffer"]\n'
                    "                        buf.mul_(momentum).add_(grad)\n",
                ),
            ),
        ),
        Mutant(
            "momentum as an average: buf = momentum * buf + (1 - momentum) * g (dampening = momentum)",
            (("buf.mul_(momentum).add_(grad)", "buf.mul_(momentum).add_(grad, alpha=1 - momentum)"),),
        ),
        Mutant(
            "Nesterov ignored: the step always uses the buffer",
            ((_SGD_NESTEROV, "grad = buf"),),
        ),
        Mutant(
            "Nesterov step uses the buffer plus momentum times the gradient (buf + mu * g) instead of g + mu * buf",
            ((_SGD_NESTEROV, 'grad = buf.add(grad, alpha=momentum) if group["nesterov"] else buf'),),
        ),
        Mutant(
            "Nesterov step g + buf, without the momentum factor on the buffer",
            ((_SGD_NESTEROV, 'grad = grad.add(buf) if group["nesterov"] else buf'),),
        ),
        Mutant(
            "weight decay added after the momentum (not fed into the buffer)",
            (
                (_SGD_DECAY, ""),
                (
                    "                p.add_(grad, alpha=-lr)\n",
                    "                if weight_decay != 0:\n"
                    "                    grad = grad.add(p, alpha=weight_decay)\n"
                    "                p.add_(grad, alpha=-lr)\n",
                ),
            ),
        ),
        Mutant(
            "weight decay decoupled (p shrunk by lr * weight_decay) instead of L2 added to the gradient",
            (
                (
                    _SGD_DECAY,
                    "                if weight_decay != 0:\n                    p.mul_(1 - lr * weight_decay)\n",
                ),
            ),
        ),
        Mutant(
            "hyperparameters read from self.defaults instead of the parameter's group",
            (
                (
                    'lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]',
                    'lr, momentum, weight_decay = self.defaults["lr"], self.defaults["momentum"], self.defaults["weight_decay"]',
                ),
            ),
        ),
        Mutant(
            "a parameter without a gradient treated as a zero gradient (decay and momentum still move it)",
            ((_SGD_SKIP, "                grad = p.grad if p.grad is not None else torch.zeros_like(p)\n"),),
        ),
        Mutant(
            "step adds lr * gradient (gradient ascent)",
            (("p.add_(grad, alpha=-lr)", "p.add_(grad, alpha=lr)"),),
        ),
        Mutant(
            "closure called under torch.no_grad (its backward fails)",
            (
                (
                    "            with torch.enable_grad():\n                loss = closure()\n",
                    "            loss = closure()\n",
                ),
            ),
        ),
        Mutant(
            "step returns None instead of the closure's loss",
            (("        return loss\n", "        return None\n"),),
        ),
    ],
    "ch11.adam": [
        Mutant(
            "no bias correction of either moment",
            (
                (_ADAM_DENOM, 'denominator = state["exp_avg_sq"].sqrt().add_(eps)'),
                (_ADAM_STEP, 'p.addcdiv_(state["exp_avg"], denominator, value=-lr)'),
            ),
        ),
        Mutant(
            "bias correction of the first moment only (sqrt(v) not divided by sqrt(1 - beta2**t))",
            ((_ADAM_DENOM, 'denominator = state["exp_avg_sq"].sqrt().add_(eps)'),),
        ),
        Mutant(
            "bias correction of the second moment without the square root (v_hat's sqrt divided by 1 - beta2**t)",
            ((_ADAM_DENOM, 'denominator = (state["exp_avg_sq"].sqrt() / (1 - beta2**t)).add_(eps)'),),
        ),
        Mutant(
            "step count starts at 1 before the first increment (the first bias correction uses t = 2)",
            (('state["step"] = 0', 'state["step"] = 1'),),
        ),
        Mutant(
            "eps inside the square root: sqrt(v + eps)",
            ((_ADAM_DENOM, 'denominator = (state["exp_avg_sq"] + eps).sqrt() / math.sqrt(1 - beta2**t)'),),
        ),
        Mutant(
            "eps added before the bias correction of sqrt(v): (sqrt(v) + eps) / sqrt(1 - beta2**t)",
            ((_ADAM_DENOM, 'denominator = (state["exp_avg_sq"].sqrt() + eps) / math.sqrt(1 - beta2**t)'),),
        ),
        Mutant(
            "AdamW's weight decay coupled into the gradient like Adam's L2 term",
            ((_ADAM_DECAY, "    if weight_decay != 0:\n        grad = grad.add(p, alpha=weight_decay)\n"),),
        ),
        Mutant(
            "AdamW's decoupled decay not multiplied by lr: p * (1 - weight_decay)",
            (("p.mul_(1 - lr * weight_decay)", "p.mul_(1 - weight_decay)"),),
        ),
        Mutant(
            "Adam's L2 term left out: weight_decay ignored by Adam",
            (("    elif weight_decay != 0:\n        grad = grad.add(p, alpha=weight_decay)\n", ""),),
        ),
        Mutant(
            "AdamW's decay applied after the Adam step, to the already updated parameter",
            (
                (
                    "    if decoupled:\n        p.mul_(1 - lr * weight_decay)\n    elif weight_decay != 0:",
                    "    if not decoupled and weight_decay != 0:",
                ),
                (_ADAM_STEP, _ADAM_STEP + "\n    if decoupled:\n        p.mul_(1 - lr * weight_decay)"),
            ),
        ),
        Mutant(
            "betas swapped: beta2 used for the first moment and beta1 for the second",
            (
                (
                    'lr, (beta1, beta2), eps, weight_decay = group["lr"]',
                    'lr, (beta2, beta1), eps, weight_decay = group["lr"]',
                ),
            ),
        ),
        Mutant(
            "second moment averaged with (1 - beta1) instead of (1 - beta2)",
            (("addcmul_(grad, grad, value=1 - beta2)", "addcmul_(grad, grad, value=1 - beta1)"),),
        ),
        Mutant(
            "one step count per group, advanced every step, instead of per parameter",
            (
                (
                    '        for group in self.param_groups:\n            for p in group["params"]:',
                    '        for group in self.param_groups:\n            group["t"] = group.get("t", 0) + 1\n            for p in group["params"]:',
                ),
                ('    t = state["step"]\n', '    t = group["t"]\n'),
            ),
        ),
        Mutant(
            "AdamW decays every parameter, also those whose grad is None",
            (
                (
                    _ADAM_LOOP,
                    '            for p in group["params"]:\n'
                    "                if p.grad is None and self.decoupled_weight_decay:\n"
                    '                    p.mul_(1 - group["lr"] * group["weight_decay"])\n'
                    "                if p.grad is not None:\n"
                    "                    adam_update(p, self.state[p], group, self.decoupled_weight_decay)\n",
                ),
            ),
        ),
        Mutant(
            "AdamW's default weight_decay 0.0 (copied from Adam) instead of 1e-2",
            (("weight_decay: float = 1e-2)", "weight_decay: float = 0.0)"),),
        ),
        Mutant(
            "hyperparameters read from self.defaults instead of the parameter's group",
            (
                (
                    "adam_update(p, self.state[p], group, self.decoupled_weight_decay)",
                    "adam_update(p, self.state[p], self.defaults, self.decoupled_weight_decay)",
                ),
            ),
        ),
    ],
    "ch11.weight_decay_groups": [
        Mutant(
            "embedding tables decay (only the number of dimensions is tested)",
            ((_WD_TEST, "if param.dim() >= 2:"),),
        ),
        Mutant(
            "only parameters named bias are excluded from decay (norm weights and embeddings decay)",
            (
                (
                    "    for _, param in model.named_parameters():\n",
                    "    for name, param in model.named_parameters():\n",
                ),
                (_WD_TEST, 'if not name.endswith("bias"):'),
            ),
        ),
        Mutant(
            "frozen parameters (requires_grad=False) put into the groups",
            (("        if not param.requires_grad:\n            continue\n", ""),),
        ),
        Mutant(
            "only tensors with more than two dimensions decay (dim() > 2 instead of >= 2)",
            ((_WD_TEST, "if param.dim() > 2 and id(param) not in embedding_weights:"),),
        ),
        Mutant(
            "groups returned in the wrong order: no-decay group first",
            (
                (
                    _WD_RETURN,
                    'return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]',
                ),
            ),
        ),
        Mutant(
            "the no-decay group also gets weight_decay",
            (
                (
                    _WD_RETURN,
                    'return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": weight_decay}]',
                ),
            ),
        ),
        Mutant(
            "parameters classified module by module, so a tied embedding / output weight lands in both groups",
            (
                (
                    _WD_LOOP,
                    "    for module in model.modules():\n"
                    "        for param in module.parameters(recurse=False):\n"
                    "            if not param.requires_grad:\n"
                    "                continue\n"
                    "            if param.dim() >= 2 and not isinstance(module, nn.Embedding):\n"
                    "                decay.append(param)\n"
                    "            else:\n"
                    "                no_decay.append(param)\n",
                ),
            ),
        ),
        Mutant(
            "a shared (tied) parameter listed twice (named_parameters(remove_duplicate=False))",
            (
                (
                    "for _, param in model.named_parameters():",
                    "for _, param in model.named_parameters(remove_duplicate=False):",
                ),
            ),
        ),
        Mutant(
            "embeddings recognised by the name 'emb' instead of by nn.Embedding",
            (
                (
                    "    for _, param in model.named_parameters():\n",
                    "    for name, param in model.named_parameters():\n",
                ),
                (_WD_TEST, 'if param.dim() >= 2 and "emb" not in name:'),
            ),
        ),
        Mutant(
            "parameter groups hold sets (order lost; optimizers reject them)",
            (
                (
                    _WD_RETURN,
                    'return [{"params": set(decay), "weight_decay": weight_decay}, {"params": set(no_decay), "weight_decay": 0.0}]',
                ),
            ),
        ),
    ],
    "ch11.clip_and_schedule": [
        Mutant(
            "gradients clipped per parameter (each by its own norm) instead of by the global norm",
            (
                (
                    _CLIP_APPLY,
                    "    for g in grads:\n        g.detach().mul_(torch.clamp(max_norm / (g.detach().norm() + 1e-6), max=1.0))\n",
                ),
            ),
        ),
        Mutant(
            "gradients scaled to max_norm also when their norm is below it (clip coefficient not clamped at 1)",
            ((_CLIP_COEF, "clip_coef = max_norm / (total_norm + 1e-6)"),),
        ),
        Mutant(
            "clip coefficient without the 1e-6 in the denominator",
            ((_CLIP_COEF, "clip_coef = torch.clamp(max_norm / total_norm, max=1.0)"),),
        ),
        Mutant(
            "parameters without a gradient (frozen) not skipped: p.grad is None crashes the norm",
            ((_CLIP_GRADS, "    grads = [p.grad for p in parameters]\n"),),
        ),
        Mutant(
            "a generator of parameters consumed twice: the second pass, which clips, sees nothing",
            (
                (
                    _CLIP_GRADS,
                    "    grads = [p.grad for p in parameters if p.grad is not None]\n    parameters = (p for p in parameters)\n",
                ),
                (
                    _CLIP_APPLY,
                    "    for p in parameters:\n        if p.grad is not None:\n            p.grad.detach().mul_(clip_coef)\n",
                ),
            ),
        ),
        Mutant(
            "a single tensor argument not wrapped in a list (iterating it yields rows without gradients)",
            (("    if isinstance(parameters, torch.Tensor):\n        parameters = [parameters]\n", ""),),
        ),
        Mutant(
            "total norm as the sum of the per-parameter norms instead of the root of the summed squares",
            ((_CLIP_NORM, "total_norm = sum(g.detach().norm() for g in grads)"),),
        ),
        Mutant(
            "returns the norm after clipping instead of before",
            (("    return total_norm\n", "    return total_norm * clip_coef\n"),),
        ),
        Mutant(
            "returns the total norm as a Python float instead of a 0-dim tensor",
            (("    return total_norm\n", "    return total_norm.item()\n"),),
        ),
        Mutant(
            "warm-up off by one: step 0 gets lr 0 (max_lr * step / warmup_steps)",
            (("return max_lr * (step + 1) / warmup_steps", "return max_lr * step / warmup_steps"),),
        ),
        Mutant(
            "warm-up condition step <= warmup_steps: the step after warm-up goes above max_lr",
            (("if step < warmup_steps:", "if step <= warmup_steps:"),),
        ),
        Mutant(
            "cosine decays to 0 instead of min_lr",
            ((_COSINE, "return 0.5 * max_lr * (1 + math.cos(math.pi * progress))"),),
        ),
        Mutant(
            "min_lr added on top of the full cosine (starts at max_lr + min_lr)",
            ((_COSINE, "return min_lr + 0.5 * max_lr * (1 + math.cos(math.pi * progress))"),),
        ),
        Mutant(
            "cosine progress over total_steps instead of total_steps - warmup_steps (min_lr not reached at total_steps)",
            (
                (
                    "progress = (step - warmup_steps) / (total_steps - warmup_steps)",
                    "progress = (step - warmup_steps) / total_steps",
                ),
            ),
        ),
        Mutant(
            "cosine progress counted from step 0 instead of from the end of warm-up",
            (
                (
                    "progress = (step - warmup_steps) / (total_steps - warmup_steps)",
                    "progress = step / (total_steps - warmup_steps)",
                ),
            ),
        ),
        Mutant(
            "no floor after total_steps: the cosine climbs back up",
            (("    if step >= total_steps:\n        return min_lr\n", ""),),
        ),
    ],
    "ch11.muon": [
        Mutant(
            "Newton-Schulz without normalising by the Frobenius norm first (diverges)",
            ((_NS_NORMALISE, ""),),
        ),
        Mutant(
            "tall matrices transposed but not transposed back (wrong shape)",
            (("    return X.T if tall else X\n", "    return X\n"),),
        ),
        Mutant(
            "cubic Newton-Schulz coefficients (1.5, -0.5, 0) instead of the quintic ones",
            (("a, b, c = 3.4445, -4.7750, 2.0315", "a, b, c = 1.5, -0.5, 0.0"),),
        ),
        Mutant(
            "quintic term written c * A instead of c * A @ A",
            (("B = b * A + c * A @ A", "B = b * A + c * A"),),
        ),
        Mutant(
            "normalised by the largest entry instead of the Frobenius norm",
            (("X = X / (X.norm() + 1e-7)", "X = X / (X.abs().max() + 1e-7)"),),
        ),
        Mutant(
            "each row normalised separately instead of the whole matrix",
            (("X = X / (X.norm() + 1e-7)", "X = X / (X.norm(dim=1, keepdim=True) + 1e-7)"),),
        ),
        Mutant(
            "Muon applied to 1-D parameters too (viewed as a row) instead of AdamW",
            (
                ("if p.dim() == 2:", "if p.dim() >= 1:"),
                ("rows, cols = p.shape", "rows, cols = (1, p.numel()) if p.dim() == 1 else p.shape"),
                (
                    _MUON_SCALE,
                    'update = zeropower_via_newtonschulz5(update.reshape(rows, cols), group["ns_steps"]).view_as(p) * max(1, rows / cols) ** 0.5',
                ),
            ),
        ),
        Mutant(
            "momentum buffer started at the first gradient instead of zeros",
            (('state["momentum_buffer"] = torch.zeros_like(p)', 'state["momentum_buffer"] = p.grad.clone()'),),
        ),
        Mutant(
            "momentum as SGD's buf = momentum * buf + g (no (1 - momentum) on the gradient)",
            ((_MUON_LERP, 'buf.mul_(group["momentum"]).add_(p.grad)'),),
        ),
        Mutant(
            "Nesterov ignored: the update is always the buffer",
            ((_MUON_NESTEROV, "update = buf"),),
        ),
        Mutant(
            "Nesterov mix reversed: momentum * g + (1 - momentum) * buf",
            ((_MUON_NESTEROV, 'update = buf.lerp(p.grad, group["momentum"]) if group["nesterov"] else buf'),),
        ),
        Mutant(
            "the sqrt(max(1, rows / cols)) shape scale left out",
            ((_MUON_SCALE, 'update = zeropower_via_newtonschulz5(update, group["ns_steps"])'),),
        ),
        Mutant(
            "shape scale inverted: sqrt(max(1, cols / rows))",
            (("max(1, rows / cols) ** 0.5", "max(1, cols / rows) ** 0.5"),),
        ),
        Mutant(
            "Muon's weight decay not multiplied by lr: p * (1 - weight_decay)",
            (('p.mul_(1 - group["lr"] * group["weight_decay"])', 'p.mul_(1 - group["weight_decay"])'),),
        ),
        Mutant(
            "the AdamW part uses Muon's lr instead of adamw_lr",
            (('group["adamw_lr"]', 'group["lr"]'),),
        ),
        Mutant(
            "no weight decay on the AdamW (non-2-D) parameters",
            (('        p.mul_(1 - lr * group["weight_decay"])\n', ""),),
        ),
        Mutant(
            "AdamW part with eps inside the square root",
            ((_MUON_ADAMW_DENOM, 'denominator = (state["exp_avg_sq"] + eps).sqrt() / math.sqrt(1 - beta2**t)'),),
        ),
        Mutant(
            "AdamW part without bias correction",
            (
                (_MUON_ADAMW_DENOM, 'denominator = state["exp_avg_sq"].sqrt().add_(eps)'),
                (
                    'p.addcdiv_(state["exp_avg"], denominator, value=-lr / (1 - beta1**t))',
                    'p.addcdiv_(state["exp_avg"], denominator, value=-lr)',
                ),
            ),
        ),
        Mutant(
            "ns_steps ignored: always 5 Newton-Schulz steps",
            (('zeropower_via_newtonschulz5(update, group["ns_steps"])', "zeropower_via_newtonschulz5(update)"),),
        ),
    ],
}

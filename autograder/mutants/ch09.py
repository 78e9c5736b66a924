"""Chapter 9 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

_INIT = ("self.A = nn.Parameter(torch.empty(in_dim, rank))\n"
         "        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))\n"
         "        self.B = nn.Parameter(torch.zeros(rank, out_dim))")
_FREEZE = ("        for param in self.linear.parameters():\n"
           "            param.requires_grad = False\n")
_RECURSE = ("        else:\n"
            "            replace_linear_with_lora(module, rank, alpha)\n")
_MERGE_RECURSE = ("        else:\n"
                  "            merge_lora(module)\n")
_PREPARE_FREEZE = ("    for param in model.parameters():\n"
                   "        param.requires_grad = False\n")

MUTANTS: list[Mutant] = [
    # ch09.lora_layer
    Mutant("ch09.lora_layer", "B initialised randomly (the update is not zero at the start)",
           (("nn.Parameter(torch.zeros(rank, out_dim))", "nn.Parameter(torch.randn(rank, out_dim))"),)),
    Mutant("ch09.lora_layer", "B initialised like A, Kaiming-uniform",
           (("self.B = nn.Parameter(torch.zeros(rank, out_dim))",
             "self.B = nn.Parameter(torch.empty(rank, out_dim))\n"
             "        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))"),)),
    Mutant("ch09.lora_layer", "A and B initialisations swapped: A zeros, B Kaiming-uniform",
           ((_INIT, "self.A = nn.Parameter(torch.zeros(in_dim, rank))\n"
                    "        self.B = nn.Parameter(torch.empty(rank, out_dim))\n"
                    "        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))"),)),
    Mutant("ch09.lora_layer", "A stored as (rank, in_dim), PEFT's layout, and transposed in forward",
           (("torch.empty(in_dim, rank)", "torch.empty(rank, in_dim)"),
            ("(x @ self.A @ self.B)", "(x @ self.A.T @ self.B)"))),
    Mutant("ch09.lora_layer", "A drawn from a standard normal",
           (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.normal_(self.A)"),)),
    Mutant("ch09.lora_layer", "Kaiming-uniform without a=sqrt(5)",
           (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.kaiming_uniform_(self.A)"),)),
    Mutant("ch09.lora_layer", "A drawn as PEFT does, from a (rank, in_dim) tensor: the fan-in is in_dim",
           (("self.A = nn.Parameter(torch.empty(in_dim, rank))\n        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))",
             "self.A = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(rank, in_dim), a=math.sqrt(5)).T.contiguous())"),)),
    Mutant("ch09.lora_layer", "A uniform in (0, 1/sqrt(rank)) instead of centred at zero",
           (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.uniform_(self.A, 0, 1 / math.sqrt(rank))"),)),
    Mutant("ch09.lora_layer", "A started at zeros like B (then neither ever gets a gradient)",
           (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.zeros_(self.A)"),)),
    Mutant("ch09.lora_layer", "the update scaled by alpha / rank (PEFT's convention)",
           (("return self.alpha * (x @ self.A @ self.B)", "return self.alpha / self.A.shape[1] * (x @ self.A @ self.B)"),)),
    Mutant("ch09.lora_layer", "alpha never applied",
           (("return self.alpha * (x @ self.A @ self.B)", "return x @ self.A @ self.B"),)),
    Mutant("ch09.lora_layer", "A a plain tensor, not an nn.Parameter",
           (("self.A = nn.Parameter(torch.empty(in_dim, rank))", "self.A = torch.empty(in_dim, rank)"),)),
    Mutant("ch09.lora_layer", "the scaling kept under another name",
           (("self.alpha = alpha", "self.scaling = alpha"), ("return self.alpha *", "return self.scaling *"))),
    # ch09.linear_with_lora
    Mutant("ch09.linear_with_lora", "the wrapped layer is not frozen", ((_FREEZE, ""),)),
    Mutant("ch09.linear_with_lora", "frozen by setting requires_grad on the module (an attribute that does nothing)",
           ((_FREEZE, "        self.linear.requires_grad = False\n"),)),
    Mutant("ch09.linear_with_lora", "only the weight frozen, the bias still trains",
           ((_FREEZE, "        self.linear.weight.requires_grad = False\n"),)),
    Mutant("ch09.linear_with_lora", "everything frozen after the LoRA layer is made, A and B included",
           ((_FREEZE, ""), ("alpha)\n", "alpha)\n        for param in self.parameters():\n            param.requires_grad = False\n"))),
    Mutant("ch09.linear_with_lora", "forward returns the LoRA update alone",
           (("return self.linear(x) + self.lora(x)", "return self.lora(x)"),)),
    Mutant("ch09.linear_with_lora", "forward ignores the LoRA update",
           (("return self.linear(x) + self.lora(x)", "return self.linear(x)"),)),
    Mutant("ch09.linear_with_lora", "in_features and out_features swapped for the LoRA layer",
           (("self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)",
             "self.lora = LoRALayer(linear.out_features, linear.in_features, rank, alpha)"),)),
    Mutant("ch09.linear_with_lora", "alpha not passed on (always 1)",
           (("self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)",
             "self.lora = LoRALayer(linear.in_features, linear.out_features, rank, 1.0)"),)),
    Mutant("ch09.linear_with_lora", "a fresh nn.Linear of the same size instead of the pretrained one",
           (("self.linear = linear\n", "self.linear = nn.Linear(linear.in_features, linear.out_features)\n"),)),
    # ch09.replace_linear_with_lora
    Mutant("ch09.replace_linear_with_lora", "LoRA applied only to the top-level linear layers (no recursion)",
           ((_RECURSE, ""),)),
    Mutant("ch09.replace_linear_with_lora", "recursion one level deep only",
           ((_RECURSE, "        else:\n"
                       "            for child_name, child in module.named_children():\n"
                       "                if isinstance(child, nn.Linear):\n"
                       "                    setattr(module, child_name, LinearWithLoRA(child, rank, alpha))\n"),)),
    Mutant("ch09.replace_linear_with_lora", "named_modules() with setattr on the model: dotted names resolve nowhere",
           (("for name, module in model.named_children():", "for name, module in list(model.named_modules())[1:]:"),
            (_RECURSE, ""))),
    Mutant("ch09.replace_linear_with_lora", "the output head left out",
           (("if isinstance(module, nn.Linear):", "if isinstance(module, nn.Linear) and name != \"out_head\":"),)),
    Mutant("ch09.replace_linear_with_lora", "every parameter frozen on the way (prepare_lora_model's job)",
           (("    for name, module in model.named_children():\n",
             "    for param in model.parameters():\n        param.requires_grad = False\n"
             "    for name, module in model.named_children():\n"),)),
    Mutant("ch09.replace_linear_with_lora", "rank and alpha passed in the wrong order",
           (("LinearWithLoRA(module, rank, alpha)", "LinearWithLoRA(module, alpha, rank)"),)),
    Mutant("ch09.replace_linear_with_lora", "only layers with a bias replaced",
           (("if isinstance(module, nn.Linear):", "if isinstance(module, nn.Linear) and module.bias is not None:"),)),
    # ch09.merge_lora
    Mutant("ch09.merge_lora", "merged without the scaling alpha",
           (("linear.weight + lora.alpha * (lora.A @ lora.B).T", "linear.weight + (lora.A @ lora.B).T"),)),
    Mutant("ch09.merge_lora", "merged with alpha / rank",
           (("linear.weight + lora.alpha * (lora.A @ lora.B).T",
             "linear.weight + lora.alpha / lora.A.shape[1] * (lora.A @ lora.B).T"),)),
    Mutant("ch09.merge_lora", "A @ B added without the transpose (reshaped to fit)",
           (("lora.alpha * (lora.A @ lora.B).T", "lora.alpha * (lora.A @ lora.B).reshape(linear.weight.shape)"),)),
    Mutant("ch09.merge_lora", "the bias dropped",
           (("bias=linear.bias is not None", "bias=False"),
            ("        if linear.bias is not None:\n            merged.bias.copy_(linear.bias)\n", ""))),
    Mutant("ch09.merge_lora", "a fresh bias kept instead of the wrapped layer's",
           (("            merged.bias.copy_(linear.bias)\n", "            pass\n"),)),
    Mutant("ch09.merge_lora", "the merged layer made in the default dtype",
           (("device=linear.weight.device, dtype=linear.weight.dtype", "device=linear.weight.device"),)),
    Mutant("ch09.merge_lora", "only the top-level layers merged (no recursion)", ((_MERGE_RECURSE, ""),)),
    Mutant("ch09.merge_lora", "returns nothing", (("    return model\n", ""),)),
    Mutant("ch09.merge_lora", "the adapters dropped instead of merged (the wrapped layer put back)",
           (("setattr(model, name, _merged_linear(module))", "setattr(model, name, module.linear)"),)),
    # ch09.lora_finetune
    Mutant("ch09.lora_finetune", "the model frozen after the LoRA layers were added (A and B frozen too)",
           ((_PREPARE_FREEZE + "    replace_linear_with_lora(model, rank, alpha)\n",
             "    replace_linear_with_lora(model, rank, alpha)\n" + _PREPARE_FREEZE),)),
    Mutant("ch09.lora_finetune", "the classifier not frozen first (chapter 6's trainable parts keep training)",
           ((_PREPARE_FREEZE, ""),)),
    Mutant("ch09.lora_finetune", "only the transformer blocks frozen",
           (("    for param in model.parameters():\n        param.requires_grad = False\n    replace",
             "    for param in model.trf_blocks.parameters():\n        param.requires_grad = False\n    replace"),)),
    Mutant("ch09.lora_finetune", "prepare_lora_model returns nothing", (("    return model\n", ""),)),
    Mutant("ch09.lora_finetune", "counts every parameter, trainable or not",
           (("for param in model.parameters() if param.requires_grad)", "for param in model.parameters())"),)),
    Mutant("ch09.lora_finetune", "counts parameter tensors instead of their entries",
           (("sum(param.numel() for param", "sum(1 for param"),)),
    Mutant("ch09.lora_finetune", "counts the state dict (buffers and frozen parameters too)",
           (("sum(param.numel() for param in model.parameters() if param.requires_grad)",
             "sum(tensor.numel() for tensor in model.state_dict().values())"),)),
    Mutant("ch09.lora_finetune", "returns the count as a tensor",
           (("return sum(param.numel() for param in model.parameters() if param.requires_grad)",
             "return torch.tensor(sum(param.numel() for param in model.parameters() if param.requires_grad))"),)),
]

ALTERNATIVES: list[Alternative] = [
    # ch09.lora_layer
    Alternative("ch09.lora_layer", "A drawn by hand with uniform_(-1/sqrt(rank), 1/sqrt(rank)); x @ (A @ B) * alpha", r'''
class LoRALayer(nn.Module):
    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        bound = 1 / math.sqrt(rank)
        self.A = nn.Parameter(torch.empty(in_dim, rank).uniform_(-bound, bound))
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.alpha = alpha

    def forward(self, x):
        return x @ (self.A @ self.B) * self.alpha
'''),
    Alternative("ch09.lora_layer", "torch.rand scaled to the interval; einsum; alpha as a float", r'''
class LoRALayer(nn.Module):
    """alpha * x A B."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, alpha: float):
        super().__init__()
        self.alpha = float(alpha)
        self.A = nn.Parameter((torch.rand(in_dim, rank) * 2 - 1) / rank ** 0.5)
        self.B = nn.Parameter(torch.zeros(rank, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = torch.einsum("...i,ir->...r", x, self.A)
        return self.alpha * torch.einsum("...r,ro->...o", low_rank, self.B)
'''),
    # ch09.linear_with_lora
    Alternative("ch09.linear_with_lora", "frozen with requires_grad_(False) on the module; F.linear in forward", r'''
import torch.nn.functional as F


class LinearWithLoRA(nn.Module):
    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear.requires_grad_(False)
        self.lora = LoRALayer(in_dim=linear.in_features, out_dim=linear.out_features, rank=rank, alpha=alpha)

    def forward(self, x):
        return F.linear(x, self.linear.weight, self.linear.bias) + self.lora(x)
'''),
    Alternative("ch09.linear_with_lora", "the LoRA layer made first, the weight and bias frozen one by one", r'''
class LinearWithLoRA(nn.Module):
    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.lora = LoRALayer(linear.weight.shape[1], linear.weight.shape[0], rank, alpha)
        linear.weight.requires_grad = False
        if linear.bias is not None:
            linear.bias.requires_grad = False
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.lora(x)
        return update + self.linear(x)
'''),
    # ch09.replace_linear_with_lora
    Alternative("ch09.replace_linear_with_lora", "the paths collected from named_modules() first, each set on its parent",
                r'''
def replace_linear_with_lora(model, rank, alpha):
    paths = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        setattr(parent, child, LinearWithLoRA(getattr(parent, child), rank, alpha))
'''),
    Alternative("ch09.replace_linear_with_lora", "a loop over a snapshot of _modules, the model returned too", r'''
def replace_linear_with_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    for name, child in list(model._modules.items()):
        if type(child) is nn.Linear:
            model._modules[name] = LinearWithLoRA(child, rank, alpha)
        elif child is not None:
            replace_linear_with_lora(child, rank, alpha)
    return model
'''),
    # ch09.merge_lora
    Alternative("ch09.merge_lora", "the wrapped layer's weight updated in place and the layer put back", r'''
def merge_lora(model):
    for name, module in model.named_children():
        if isinstance(module, LinearWithLoRA):
            with torch.no_grad():
                module.linear.weight += module.lora.alpha * (module.lora.A @ module.lora.B).T
            setattr(model, name, module.linear)
        else:
            merge_lora(module)
    return model
'''),
    Alternative("ch09.merge_lora", "paths from named_modules(); the weight from torch.addmm with B.T @ A.T; load_state_dict", r'''
def merge_lora(model: nn.Module) -> nn.Module:
    paths = [name for name, module in model.named_modules() if isinstance(module, LinearWithLoRA)]
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        wrapped = getattr(parent, child)
        old, lora = wrapped.linear, wrapped.lora
        new = nn.Linear(old.in_features, old.out_features, bias=old.bias is not None).to(old.weight)
        state = {"weight": torch.addmm(old.weight, lora.B.T, lora.A.T, alpha=lora.alpha).detach()}
        if old.bias is not None:
            state["bias"] = old.bias.detach()
        new.load_state_dict(state)
        setattr(parent, child, new)
    return model
'''),
    # ch09.lora_finetune
    Alternative("ch09.lora_finetune", "requires_grad_(False) on the model; the count over named_parameters as int", r'''
def count_trainable_parameters(model):
    return int(sum(p.numel() for _, p in model.named_parameters() if p.requires_grad))


def prepare_lora_model(model, rank, alpha):
    model.requires_grad_(False)
    replace_linear_with_lora(model, rank=rank, alpha=alpha)
    return model
'''),
    Alternative("ch09.lora_finetune", "the count with map and filter; each parameter frozen with requires_grad_(False)", r'''
def count_trainable_parameters(model: nn.Module) -> int:
    return sum(map(torch.numel, filter(lambda param: param.requires_grad, model.parameters())))


def prepare_lora_model(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    for _, param in model.named_parameters():
        param.requires_grad_(False)
    replace_linear_with_lora(model, rank, alpha)
    return model
'''),
]

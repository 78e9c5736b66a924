"""Chapter 9's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_INIT = (
    "self.A = nn.Parameter(torch.empty(in_dim, rank))\n"
    "        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))\n"
    "        self.B = nn.Parameter(torch.zeros(rank, out_dim))"
)
_FREEZE = "        for param in self.linear.parameters():\n            param.requires_grad = False\n"
_RECURSE = "        else:\n            replace_linear_with_lora(module, rank, alpha)\n"
_MERGE_RECURSE = "        else:\n            merge_lora(module)\n"
_PREPARE_FREEZE = "    for param in model.parameters():\n        param.requires_grad = False\n"

MUTANTS: dict[str, list[Mutant]] = {
    "ch09.lora_layer": [
        Mutant(
            "B initialised randomly (the update is not zero at the start)",
            (("nn.Parameter(torch.zeros(rank, out_dim))", "nn.Parameter(torch.randn(rank, out_dim))"),),
        ),
        Mutant(
            "B initialised like A, Kaiming-uniform",
            (
                (
                    "self.B = nn.Parameter(torch.zeros(rank, out_dim))",
                    "self.B = nn.Parameter(torch.empty(rank, out_dim))\n"
                    "        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))",
                ),
            ),
        ),
        Mutant(
            "A and B initialisations swapped: A zeros, B Kaiming-uniform",
            (
                (
                    _INIT,
                    "self.A = nn.Parameter(torch.zeros(in_dim, rank))\n"
                    "        self.B = nn.Parameter(torch.empty(rank, out_dim))\n"
                    "        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))",
                ),
            ),
        ),
        Mutant(
            "A stored as (rank, in_dim), PEFT's layout, and transposed in forward",
            (
                ("torch.empty(in_dim, rank)", "torch.empty(rank, in_dim)"),
                ("(x @ self.A @ self.B)", "(x @ self.A.T @ self.B)"),
            ),
        ),
        Mutant(
            "A drawn from a standard normal",
            (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.normal_(self.A)"),),
        ),
        Mutant(
            "Kaiming-uniform without a=sqrt(5)",
            (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.kaiming_uniform_(self.A)"),),
        ),
        Mutant(
            "A drawn as PEFT does, from a (rank, in_dim) tensor: the fan-in is in_dim",
            (
                (
                    "self.A = nn.Parameter(torch.empty(in_dim, rank))\n        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))",
                    "self.A = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(rank, in_dim), a=math.sqrt(5)).T.contiguous())",
                ),
            ),
        ),
        Mutant(
            "A uniform in (0, 1/sqrt(rank)) instead of centred at zero",
            (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.uniform_(self.A, 0, 1 / math.sqrt(rank))"),),
        ),
        Mutant(
            "A started at zeros like B (then neither ever gets a gradient)",
            (("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.zeros_(self.A)"),),
        ),
        Mutant(
            "the update scaled by alpha / rank (PEFT's convention)",
            (
                (
                    "return self.alpha * (x @ self.A @ self.B)",
                    "return self.alpha / self.A.shape[1] * (x @ self.A @ self.B)",
                ),
            ),
        ),
        Mutant(
            "alpha never applied",
            (("return self.alpha * (x @ self.A @ self.B)", "return x @ self.A @ self.B"),),
        ),
        Mutant(
            "A a plain tensor, not an nn.Parameter",
            (("self.A = nn.Parameter(torch.empty(in_dim, rank))", "self.A = torch.empty(in_dim, rank)"),),
        ),
        Mutant(
            "the scaling kept under another name",
            (("self.alpha = alpha", "self.scaling = alpha"), ("return self.alpha *", "return self.scaling *")),
        ),
    ],
    "ch09.linear_with_lora": [
        Mutant(
            "the wrapped layer made trainable (requires_grad = True), undoing the caller's freezing",
            ((_FREEZE, _FREEZE.replace("False", "True")),),
        ),
        Mutant(
            "everything frozen after the LoRA layer is made, A and B included",
            (
                (_FREEZE, ""),
                (
                    "alpha)\n",
                    "alpha)\n        for param in self.parameters():\n            param.requires_grad = False\n",
                ),
            ),
        ),
        Mutant(
            "forward returns the LoRA update alone",
            (("return self.linear(x) + self.lora(x)", "return self.lora(x)"),),
        ),
        Mutant(
            "forward ignores the LoRA update",
            (("return self.linear(x) + self.lora(x)", "return self.linear(x)"),),
        ),
        Mutant(
            "in_features and out_features swapped for the LoRA layer",
            (
                (
                    "self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)",
                    "self.lora = LoRALayer(linear.out_features, linear.in_features, rank, alpha)",
                ),
            ),
        ),
        Mutant(
            "alpha not passed on (always 1)",
            (
                (
                    "self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)",
                    "self.lora = LoRALayer(linear.in_features, linear.out_features, rank, 1.0)",
                ),
            ),
        ),
        Mutant(
            "a fresh nn.Linear of the same size instead of the pretrained one",
            (("self.linear = linear\n", "self.linear = nn.Linear(linear.in_features, linear.out_features)\n"),),
        ),
    ],
    "ch09.replace_linear_with_lora": [
        Mutant(
            "LoRA applied only to the top-level linear layers (no recursion)",
            ((_RECURSE, ""),),
        ),
        Mutant(
            "recursion one level deep only",
            (
                (
                    _RECURSE,
                    "        else:\n"
                    "            for child_name, child in module.named_children():\n"
                    "                if isinstance(child, nn.Linear):\n"
                    "                    setattr(module, child_name, LinearWithLoRA(child, rank, alpha))\n",
                ),
            ),
        ),
        Mutant(
            "named_modules() with setattr on the model: dotted names resolve nowhere",
            (
                ("for name, module in model.named_children():", "for name, module in list(model.named_modules())[1:]:"),
                (_RECURSE, ""),
            ),
        ),
        Mutant(
            "the output head left out",
            (("if isinstance(module, nn.Linear):", 'if isinstance(module, nn.Linear) and name != "out_head":'),),
        ),
        Mutant(
            "every parameter frozen on the way (prepare_lora_model's job)",
            (
                (
                    "    for name, module in model.named_children():\n",
                    "    for param in model.parameters():\n        param.requires_grad = False\n"
                    "    for name, module in model.named_children():\n",
                ),
            ),
        ),
        Mutant(
            "rank and alpha passed in the wrong order",
            (("LinearWithLoRA(module, rank, alpha)", "LinearWithLoRA(module, alpha, rank)"),),
        ),
        Mutant(
            "only layers with a bias replaced",
            (("if isinstance(module, nn.Linear):", "if isinstance(module, nn.Linear) and module.bias is not None:"),),
        ),
    ],
    "ch09.merge_lora": [
        Mutant(
            "merged without the scaling alpha",
            (("linear.weight + lora.alpha * (lora.A @ lora.B).T", "linear.weight + (lora.A @ lora.B).T"),),
        ),
        Mutant(
            "merged with alpha / rank",
            (
                (
                    "linear.weight + lora.alpha * (lora.A @ lora.B).T",
                    "linear.weight + lora.alpha / lora.A.shape[1] * (lora.A @ lora.B).T",
                ),
            ),
        ),
        Mutant(
            "A @ B added without the transpose (reshaped to fit)",
            (("lora.alpha * (lora.A @ lora.B).T", "lora.alpha * (lora.A @ lora.B).reshape(linear.weight.shape)"),),
        ),
        Mutant(
            "the bias dropped",
            (
                ("bias=linear.bias is not None", "bias=False"),
                ("        if linear.bias is not None:\n            merged.bias.copy_(linear.bias)\n", ""),
            ),
        ),
        Mutant(
            "a fresh bias kept instead of the wrapped layer's",
            (("            merged.bias.copy_(linear.bias)\n", "            pass\n"),),
        ),
        Mutant(
            "the merged layer made in the default dtype",
            (("device=linear.weight.device, dtype=linear.weight.dtype", "device=linear.weight.device"),),
        ),
        Mutant(
            "only the top-level layers merged (no recursion)",
            ((_MERGE_RECURSE, ""),),
        ),
        Mutant(
            "returns nothing",
            (("    return model\n", ""),),
        ),
        Mutant(
            "the adapters dropped instead of merged (the wrapped layer put back)",
            (("setattr(model, name, _merged_linear(module))", "setattr(model, name, module.linear)"),),
        ),
    ],
    "ch09.lora_finetune": [
        Mutant(
            "the model frozen after the LoRA layers were added (A and B frozen too)",
            (
                (
                    _PREPARE_FREEZE + "    replace_linear_with_lora(model, rank, alpha)\n",
                    "    replace_linear_with_lora(model, rank, alpha)\n" + _PREPARE_FREEZE,
                ),
            ),
        ),
        Mutant(
            "the classifier not frozen first (chapter 6's trainable parts keep training)",
            ((_PREPARE_FREEZE, ""),),
        ),
        Mutant(
            "only the transformer blocks frozen",
            (
                (
                    "    for param in model.parameters():\n        param.requires_grad = False\n    replace",
                    "    for param in model.trf_blocks.parameters():\n        param.requires_grad = False\n    replace",
                ),
            ),
        ),
        Mutant(
            "prepare_lora_model returns nothing",
            (("    return model\n", ""),),
        ),
        Mutant(
            "counts every parameter, trainable or not",
            (("for param in model.parameters() if param.requires_grad)", "for param in model.parameters())"),),
        ),
        Mutant(
            "counts parameter tensors instead of their entries",
            (("sum(param.numel() for param", "sum(1 for param"),),
        ),
        Mutant(
            "counts the state dict (buffers and frozen parameters too)",
            (
                (
                    "sum(param.numel() for param in model.parameters() if param.requires_grad)",
                    "sum(tensor.numel() for tensor in model.state_dict().values())",
                ),
            ),
        ),
        Mutant(
            "returns the count as a tensor",
            (
                (
                    "return sum(param.numel() for param in model.parameters() if param.requires_grad)",
                    "return torch.tensor(sum(param.numel() for param in model.parameters() if param.requires_grad))",
                ),
            ),
        ),
    ],
}

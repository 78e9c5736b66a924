"""Chapter 4's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch04.layer_norm": [
        Mutant(
            "unbiased variance (divides by n - 1) instead of the biased one",
            (("unbiased=False", "unbiased=True"),),
        ),
        Mutant(
            "eps added outside the square root: (x - mean) / (sqrt(var) + eps)",
            (("torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)"),),
        ),
        Mutant(
            "eps left out of the denominator, so a constant vector divides 0 by 0",
            (("torch.sqrt(var + self.eps)", "torch.sqrt(var)"),),
        ),
        Mutant(
            "eps = 1e-6 instead of 1e-5",
            (("self.eps = 1e-5\n", "self.eps = 1e-6\n"),),
        ),
        Mutant(
            "eps = 1e-12 (the BERT value) instead of 1e-5",
            (("self.eps = 1e-5\n", "self.eps = 1e-12\n"),),
        ),
        Mutant(
            "mean and variance over dim=1 (the token axis of a 3-d input) instead of the last dimension",
            (
                ("x.mean(dim=-1, keepdim=True)", "x.mean(dim=1, keepdim=True)"),
                ("x.var(dim=-1, keepdim=True", "x.var(dim=1, keepdim=True"),
            ),
        ),
        Mutant(
            "mean and variance over dim=0 (the batch) instead of the last dimension",
            (
                ("x.mean(dim=-1, keepdim=True)", "x.mean(dim=0, keepdim=True)"),
                ("x.var(dim=-1, keepdim=True", "x.var(dim=0, keepdim=True"),
            ),
        ),
        Mutant(
            "scale and shift swapped in forward: shift * norm_x + scale",
            (("return self.scale * norm_x + self.shift", "return self.shift * norm_x + self.scale"),),
        ),
        Mutant(
            "scale initialised to zeros and shift to ones",
            (
                ("self.scale = nn.Parameter(torch.ones(emb_dim))", "self.scale = nn.Parameter(torch.zeros(emb_dim))"),
                ("self.shift = nn.Parameter(torch.zeros(emb_dim))", "self.shift = nn.Parameter(torch.ones(emb_dim))"),
            ),
        ),
        Mutant(
            "divides by torch.std (unbiased) plus eps instead of sqrt(biased variance + eps)",
            (
                (
                    "var = x.var(dim=-1, keepdim=True, unbiased=False)\n"
                    "        norm_x = (x - mean) / torch.sqrt(var + self.eps)",
                    "std = x.std(dim=-1, keepdim=True)\n        norm_x = (x - mean) / (std + self.eps)",
                ),
            ),
        ),
        Mutant(
            "mean not subtracted: x / sqrt(var + eps)",
            (("norm_x = (x - mean) / torch.sqrt", "norm_x = x / torch.sqrt"),),
        ),
        Mutant(
            "scale is a plain tensor, not an nn.Parameter: it is neither trained nor in the state dict",
            (("self.scale = nn.Parameter(torch.ones(emb_dim))", "self.scale = torch.ones(emb_dim)"),),
        ),
        Mutant(
            "variance computed around zero, mean(x ** 2), instead of around the mean",
            (
                (
                    "var = x.var(dim=-1, keepdim=True, unbiased=False)",
                    "var = (x ** 2).mean(dim=-1, keepdim=True)",
                ),
            ),
        ),
    ],
    "ch04.gelu": [
        Mutant(
            "exact erf GELU instead of the tanh approximation (differs by up to 5e-4 near |x| = 2.7)",
            (
                (
                    "return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))",
                    "return 0.5 * x * (1 + torch.erf(x / torch.sqrt(torch.tensor(2.0))))",
                ),
            ),
        ),
        Mutant(
            "cubic coefficient 0.44715 instead of 0.044715",
            (("0.044715 * torch.pow", "0.44715 * torch.pow"),),
        ),
        Mutant(
            "the factor 0.5 left out",
            (("return 0.5 * x * (1 +", "return x * (1 +"),),
        ),
        Mutant(
            "sqrt(pi / 2) instead of sqrt(2 / pi)",
            (("torch.tensor(2.0 / torch.pi)", "torch.tensor(torch.pi / 2.0)"),),
        ),
        Mutant(
            "x squared instead of cubed inside the tanh",
            (("torch.pow(x, 3)", "torch.pow(x, 2)"),),
        ),
        Mutant(
            "the leading x left out: returns the gate 0.5 (1 + tanh(...)) itself",
            (("return 0.5 * x * (1 +", "return 0.5 * (1 +"),),
        ),
        Mutant(
            "sigmoid in place of tanh",
            (("torch.tanh(", "torch.sigmoid("),),
        ),
        Mutant(
            "ReLU instead of GELU",
            (
                (
                    "return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))",
                    "return torch.relu(x)",
                ),
            ),
        ),
        Mutant(
            "sqrt(2) / pi instead of sqrt(2 / pi) (square root taken of the 2 only)",
            (("torch.sqrt(torch.tensor(2.0 / torch.pi))", "(torch.sqrt(torch.tensor(2.0)) / torch.pi)"),),
        ),
    ],
    "ch04.feed_forward": [
        Mutant(
            "no expansion: the hidden layer is emb_dim wide instead of 4 * emb_dim",
            (
                ('nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], cfg["emb_dim"]),'),
                ('nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], cfg["emb_dim"]),'),
            ),
        ),
        Mutant(
            "2x expansion instead of 4x",
            (
                ('nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], 2 * cfg["emb_dim"]),'),
                ('nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),', 'nn.Linear(2 * cfg["emb_dim"], cfg["emb_dim"]),'),
            ),
        ),
        Mutant(
            "ReLU between the linear layers instead of GELU",
            (("            GELU(),\n", "            nn.ReLU(),\n"),),
        ),
        Mutant(
            "PyTorch's nn.GELU() (exact erf) instead of the chapter's tanh-approximation GELU",
            (("            GELU(),\n", "            nn.GELU(),\n"),),
        ),
        Mutant(
            "no activation: two linear layers in a row",
            (("            GELU(),\n", ""),),
        ),
        Mutant(
            "linear layers without bias",
            (
                (
                    'nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),',
                    'nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"], bias=False),',
                ),
                (
                    'nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),',
                    'nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"], bias=False),',
                ),
            ),
        ),
        Mutant(
            "a shortcut added inside the feed-forward network: x + layers(x)",
            (("return self.layers(x)", "return x + self.layers(x)"),),
        ),
    ],
    "ch04.transformer_block": [
        Mutant(
            "no shortcut around the attention sublayer",
            (("        x = x + shortcut\n", ""),),
        ),
        Mutant(
            "no shortcut around the feed-forward sublayer",
            (("return x + shortcut", "return x"),),
        ),
        Mutant(
            "post-LayerNorm (original Transformer): norm applied after each shortcut instead of before each sublayer",
            (
                (
                    "x = self.drop_shortcut(self.att(self.norm1(x)))\n        x = x + shortcut",
                    "x = self.drop_shortcut(self.att(x))\n        x = self.norm1(x + shortcut)",
                ),
                (
                    "x = self.drop_shortcut(self.ff(self.norm2(x)))\n        return x + shortcut",
                    "x = self.drop_shortcut(self.ff(x))\n        return self.norm2(x + shortcut)",
                ),
            ),
        ),
        Mutant(
            "norm1 used before both sublayers; norm2 is never used (gets no gradient)",
            (("self.ff(self.norm2(x))", "self.ff(self.norm1(x))"),),
        ),
        Mutant(
            "norm2 is the same module as norm1 (shared scale and shift)",
            (('self.norm2 = LayerNorm(cfg["emb_dim"])', "self.norm2 = self.norm1"),),
        ),
        Mutant(
            "no dropout on the sublayer outputs (drop_shortcut created but never applied)",
            (
                ("x = self.drop_shortcut(self.att(self.norm1(x)))", "x = self.att(self.norm1(x))"),
                ("x = self.drop_shortcut(self.ff(self.norm2(x)))", "x = self.ff(self.norm2(x))"),
            ),
        ),
        Mutant(
            "dropout applied to the shortcut sum instead of the sublayer output",
            (
                (
                    "x = self.drop_shortcut(self.att(self.norm1(x)))\n        x = x + shortcut",
                    "x = self.att(self.norm1(x))\n        x = self.drop_shortcut(x + shortcut)",
                ),
                (
                    "x = self.drop_shortcut(self.ff(self.norm2(x)))\n        return x + shortcut",
                    "x = self.ff(self.norm2(x))\n        return self.drop_shortcut(x + shortcut)",
                ),
            ),
        ),
        Mutant(
            "feed-forward sublayer before the attention sublayer",
            (
                ("self.att(self.norm1(x))", "self.ff(self.norm1(x))"),
                ("self.ff(self.norm2(x))", "self.att(self.norm2(x))"),
            ),
        ),
        Mutant(
            "qkv_bias not passed to MultiHeadAttention, so the query/key/value projections never have a bias",
            (('            qkv_bias=cfg["qkv_bias"],\n', ""),),
        ),
        Mutant(
            "attention built without dropout (dropout=0.0 instead of drop_rate)",
            (('dropout=cfg["drop_rate"],', "dropout=0.0,"),),
        ),
        Mutant(
            "shortcut not updated before the feed-forward sublayer: the block's original input is added back instead of the attention sublayer's result",
            (("x = x + shortcut\n        shortcut = x\n", "x = x + shortcut\n"),),
        ),
    ],
    "ch04.gpt_model": [
        Mutant(
            "position embeddings never added",
            (("x = self.tok_emb(in_idx) + self.pos_emb(positions)", "x = self.tok_emb(in_idx)"),),
        ),
        Mutant(
            "positions counted from 1 instead of 0",
            (
                (
                    "positions = torch.arange(num_tokens, device=in_idx.device)",
                    "positions = torch.arange(1, num_tokens + 1, device=in_idx.device)",
                ),
            ),
        ),
        Mutant(
            "position embedding table sized vocab_size instead of context_length",
            (
                (
                    'self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])',
                    'self.pos_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])',
                ),
            ),
        ),
        Mutant(
            "final_norm created but not applied before the output head",
            (("        x = self.final_norm(x)\n", ""),),
        ),
        Mutant(
            "output head with a bias",
            (('cfg["vocab_size"], bias=False)', 'cfg["vocab_size"], bias=True)'),),
        ),
        Mutant(
            "output head weight tied to the token embedding (one shared matrix, not two)",
            (
                (
                    'self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)',
                    'self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)\n'
                    "        self.out_head.weight = self.tok_emb.weight",
                ),
            ),
        ),
        Mutant(
            "embedding dropout applied to the token embeddings before the position embeddings are added",
            (
                (
                    "x = self.tok_emb(in_idx) + self.pos_emb(positions)\n        x = self.drop_emb(x)",
                    "x = self.drop_emb(self.tok_emb(in_idx)) + self.pos_emb(positions)",
                ),
            ),
        ),
        Mutant(
            "no dropout on the embeddings (drop_emb created but never applied)",
            (("        x = self.drop_emb(x)\n", ""),),
        ),
        Mutant(
            "drop_emb applied twice: on the embeddings and again after the blocks",
            (("x = self.trf_blocks(x)", "x = self.drop_emb(self.trf_blocks(x))"),),
        ),
        Mutant(
            "drop_emb applied before every block, not once on the embeddings",
            (
                (
                    "x = self.drop_emb(x)\n        x = self.trf_blocks(x)",
                    "for block in self.trf_blocks:\n            x = block(self.drop_emb(x))",
                ),
            ),
        ),
        Mutant(
            "drop_emb applied twice in a row to the embeddings",
            (("x = self.drop_emb(x)", "x = self.drop_emb(self.drop_emb(x))"),),
        ),
        Mutant(
            "blocks kept in a plain Python list: not registered, so their parameters are missing and eval() never reaches them",
            (
                (
                    'self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])',
                    'self.trf_blocks = [TransformerBlock(cfg) for _ in range(cfg["n_layers"])]',
                ),
                ("x = self.trf_blocks(x)", "for block in self.trf_blocks:\n            x = block(x)"),
            ),
        ),
        Mutant(
            "one block repeated n_layers times: all layers share the same weights",
            (
                (
                    'nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])',
                    'nn.Sequential(*[TransformerBlock(cfg)] * cfg["n_layers"])',
                ),
            ),
        ),
        Mutant(
            "one transformer block too few",
            (('range(cfg["n_layers"])', 'range(cfg["n_layers"] - 1)'),),
        ),
        Mutant(
            "returns softmax probabilities instead of logits",
            (("return self.out_head(x)", "return torch.softmax(self.out_head(x), dim=-1)"),),
        ),
        # Blind mutants (written without seeing the checks).
        Mutant(
            "dropout applied after the transformer blocks instead of on the embeddings",
            (
                (
                    "x = self.drop_emb(x)\n        x = self.trf_blocks(x)\n",
                    "x = self.trf_blocks(x)\n        x = self.drop_emb(x)\n",
                ),
            ),
        ),
        Mutant(
            "dropout applied to the logits (after the output head) instead of on the embeddings",
            (
                ("        x = self.drop_emb(x)\n", ""),
                ("return self.out_head(x)", "return self.drop_emb(self.out_head(x))"),
            ),
        ),
        Mutant(
            "dropout applied after the final layer norm (just before the output head) instead of on the embeddings",
            (
                ("        x = self.drop_emb(x)\n", ""),
                ("x = self.final_norm(x)\n", "x = self.final_norm(x)\n        x = self.drop_emb(x)\n"),
            ),
        ),
        Mutant(
            "an extra dropout after every transformer block, on top of the embedding dropout",
            (
                (
                    "x = self.trf_blocks(x)\n",
                    "for block in self.trf_blocks:\n            x = self.drop_emb(block(x))\n",
                ),
            ),
        ),
        Mutant(
            "dropout applied to the position embeddings only, not to the token + position sum",
            (
                (
                    "x = self.tok_emb(in_idx) + self.pos_emb(positions)\n        x = self.drop_emb(x)",
                    "x = self.tok_emb(in_idx) + self.drop_emb(self.pos_emb(positions))",
                ),
            ),
        ),
        Mutant(
            "nn.Dropout() created without the rate, so the embeddings are dropped with p = 0.5 instead of drop_rate",
            (('self.drop_emb = nn.Dropout(cfg["drop_rate"])', "self.drop_emb = nn.Dropout()"),),
        ),
    ],
    "ch04.generate_text_simple": [
        Mutant(
            "next token from the logits of the first position (logits[:, 0, :]) instead of the last",
            (("logits[:, -1, :]", "logits[:, 0, :]"),),
        ),
        Mutant(
            "context not cropped: the model sees the whole sequence",
            (("idx_cond = idx[:, -context_size:]", "idx_cond = idx"),),
        ),
        Mutant(
            "context cropped to the first context_size tokens instead of the last",
            (("idx[:, -context_size:]", "idx[:, :context_size]"),),
        ),
        Mutant(
            "new token concatenated along dim 0 (as a new row) instead of dim 1",
            (("torch.cat([idx, next_token], dim=1)", "torch.cat([idx, next_token], dim=0)"),),
        ),
        Mutant(
            "samples from the softmax instead of taking the argmax",
            (
                (
                    "logits[:, -1, :].argmax(dim=-1, keepdim=True)",
                    "torch.multinomial(torch.softmax(logits[:, -1, :], dim=-1), num_samples=1)",
                ),
            ),
        ),
        Mutant(
            "argmax over the batch dimension instead of the vocabulary",
            (("argmax(dim=-1, keepdim=True)", "argmax(dim=0, keepdim=True)"),),
        ),
        Mutant(
            "argmax without keepdim: a (batch,) tensor cannot be concatenated to (batch, num_tokens)",
            (("argmax(dim=-1, keepdim=True)", "argmax(dim=-1)"),),
        ),
        Mutant(
            "returns only the generated tokens, without the prompt",
            (
                (
                    "    for _ in range(max_new_tokens):\n",
                    "    prompt_length = idx.shape[1]\n    for _ in range(max_new_tokens):\n",
                ),
                ("    return idx\n", "    return idx[:, prompt_length:]\n"),
            ),
        ),
        Mutant(
            "one token too many: loops max_new_tokens + 1 times",
            (("range(max_new_tokens)", "range(max_new_tokens + 1)"),),
        ),
        Mutant(
            "calls model.eval() inside the function, changing the caller's model mode (and switching off dropout in train mode)",
            (("    for _ in range(max_new_tokens):\n", "    model.eval()\n    for _ in range(max_new_tokens):\n"),),
        ),
    ],
}

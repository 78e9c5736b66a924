"""Chapter 4 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch04.layer_norm
    Mutant(
        "ch04.layer_norm",
        "unbiased variance (divides by n - 1) instead of the biased one",
        (("unbiased=False", "unbiased=True"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "eps added outside the square root: (x - mean) / (sqrt(var) + eps)",
        (("torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "eps left out of the denominator, so a constant vector divides 0 by 0",
        (("torch.sqrt(var + self.eps)", "torch.sqrt(var)"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "eps = 1e-6 instead of 1e-5",
        (("self.eps = 1e-5\n", "self.eps = 1e-6\n"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "eps = 1e-12 (the BERT value) instead of 1e-5",
        (("self.eps = 1e-5\n", "self.eps = 1e-12\n"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "mean and variance over dim=1 (the token axis of a 3-d input) instead of the last dimension",
        (
            ("x.mean(dim=-1, keepdim=True)", "x.mean(dim=1, keepdim=True)"),
            ("x.var(dim=-1, keepdim=True", "x.var(dim=1, keepdim=True"),
        ),
    ),
    Mutant(
        "ch04.layer_norm",
        "mean and variance over dim=0 (the batch) instead of the last dimension",
        (
            ("x.mean(dim=-1, keepdim=True)", "x.mean(dim=0, keepdim=True)"),
            ("x.var(dim=-1, keepdim=True", "x.var(dim=0, keepdim=True"),
        ),
    ),
    Mutant(
        "ch04.layer_norm",
        "scale and shift swapped in forward: shift * norm_x + scale",
        (("return self.scale * norm_x + self.shift", "return self.shift * norm_x + self.scale"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "scale initialised to zeros and shift to ones",
        (
            ("self.scale = nn.Parameter(torch.ones(emb_dim))", "self.scale = nn.Parameter(torch.zeros(emb_dim))"),
            ("self.shift = nn.Parameter(torch.zeros(emb_dim))", "self.shift = nn.Parameter(torch.ones(emb_dim))"),
        ),
    ),
    Mutant(
        "ch04.layer_norm",
        "divides by torch.std (unbiased) plus eps instead of sqrt(biased variance + eps)",
        (
            (
                "var = x.var(dim=-1, keepdim=True, unbiased=False)\n"
                "        norm_x = (x - mean) / torch.sqrt(var + self.eps)",
                "std = x.std(dim=-1, keepdim=True)\n"
                "        norm_x = (x - mean) / (std + self.eps)",
            ),
        ),
    ),
    Mutant(
        "ch04.layer_norm",
        "mean not subtracted: x / sqrt(var + eps)",
        (("norm_x = (x - mean) / torch.sqrt", "norm_x = x / torch.sqrt"),),
    ),
    Mutant(
        "ch04.layer_norm",
        "scale is a plain tensor, not an nn.Parameter: it is neither trained nor in the state dict",
        (("self.scale = nn.Parameter(torch.ones(emb_dim))", "self.scale = torch.ones(emb_dim)"),),
    ),
    # ch04.gelu
    Mutant(
        "ch04.gelu",
        "exact erf GELU instead of the tanh approximation (differs by up to 5e-4 near |x| = 2.7)",
        (
            (
                "return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))",
                "return 0.5 * x * (1 + torch.erf(x / torch.sqrt(torch.tensor(2.0))))",
            ),
        ),
    ),
    Mutant(
        "ch04.gelu",
        "cubic coefficient 0.44715 instead of 0.044715",
        (("0.044715 * torch.pow", "0.44715 * torch.pow"),),
    ),
    Mutant(
        "ch04.gelu",
        "the factor 0.5 left out",
        (("return 0.5 * x * (1 +", "return x * (1 +"),),
    ),
    Mutant(
        "ch04.gelu",
        "sqrt(pi / 2) instead of sqrt(2 / pi)",
        (("torch.tensor(2.0 / torch.pi)", "torch.tensor(torch.pi / 2.0)"),),
    ),
    Mutant(
        "ch04.gelu",
        "x squared instead of cubed inside the tanh",
        (("torch.pow(x, 3)", "torch.pow(x, 2)"),),
    ),
    Mutant(
        "ch04.gelu",
        "the leading x left out: returns the gate 0.5 (1 + tanh(...)) itself",
        (("return 0.5 * x * (1 +", "return 0.5 * (1 +"),),
    ),
    Mutant(
        "ch04.gelu",
        "sigmoid in place of tanh",
        (("torch.tanh(", "torch.sigmoid("),),
    ),
    Mutant(
        "ch04.gelu",
        "ReLU instead of GELU",
        (
            (
                "return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))",
                "return torch.relu(x)",
            ),
        ),
    ),
    # ch04.feed_forward
    Mutant(
        "ch04.feed_forward",
        "no expansion: the hidden layer is emb_dim wide instead of 4 * emb_dim",
        (
            ('nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], cfg["emb_dim"]),'),
            ('nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], cfg["emb_dim"]),'),
        ),
    ),
    Mutant(
        "ch04.feed_forward",
        "2x expansion instead of 4x",
        (
            ('nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], 2 * cfg["emb_dim"]),'),
            ('nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),', 'nn.Linear(2 * cfg["emb_dim"], cfg["emb_dim"]),'),
        ),
    ),
    Mutant(
        "ch04.feed_forward",
        "ReLU between the linear layers instead of GELU",
        (("            GELU(),\n", "            nn.ReLU(),\n"),),
    ),
    Mutant(
        "ch04.feed_forward",
        "PyTorch's nn.GELU() (exact erf) instead of the chapter's tanh-approximation GELU",
        (("            GELU(),\n", "            nn.GELU(),\n"),),
    ),
    Mutant(
        "ch04.feed_forward",
        "no activation: two linear layers in a row",
        (("            GELU(),\n", ""),),
    ),
    Mutant(
        "ch04.feed_forward",
        "linear layers without bias",
        (
            ('nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),', 'nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"], bias=False),'),
            ('nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),', 'nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"], bias=False),'),
        ),
    ),
    Mutant(
        "ch04.feed_forward",
        "a shortcut added inside the feed-forward network: x + layers(x)",
        (("return self.layers(x)", "return x + self.layers(x)"),),
    ),
    # ch04.transformer_block
    Mutant(
        "ch04.transformer_block",
        "no shortcut around the attention sublayer",
        (("        x = x + shortcut\n", ""),),
    ),
    Mutant(
        "ch04.transformer_block",
        "no shortcut around the feed-forward sublayer",
        (("return x + shortcut", "return x"),),
    ),
    Mutant(
        "ch04.transformer_block",
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
        "ch04.transformer_block",
        "norm1 used before both sublayers; norm2 is never used (gets no gradient)",
        (("self.ff(self.norm2(x))", "self.ff(self.norm1(x))"),),
    ),
    Mutant(
        "ch04.transformer_block",
        "norm2 is the same module as norm1 (shared scale and shift)",
        (('self.norm2 = LayerNorm(cfg["emb_dim"])', "self.norm2 = self.norm1"),),
    ),
    Mutant(
        "ch04.transformer_block",
        "no dropout on the sublayer outputs (drop_shortcut created but never applied)",
        (
            ("x = self.drop_shortcut(self.att(self.norm1(x)))", "x = self.att(self.norm1(x))"),
            ("x = self.drop_shortcut(self.ff(self.norm2(x)))", "x = self.ff(self.norm2(x))"),
        ),
    ),
    Mutant(
        "ch04.transformer_block",
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
        "ch04.transformer_block",
        "feed-forward sublayer before the attention sublayer",
        (
            ("self.att(self.norm1(x))", "self.ff(self.norm1(x))"),
            ("self.ff(self.norm2(x))", "self.att(self.norm2(x))"),
        ),
    ),
    Mutant(
        "ch04.transformer_block",
        "qkv_bias not passed to MultiHeadAttention, so the query/key/value projections never have a bias",
        (('            qkv_bias=cfg["qkv_bias"],\n', ""),),
    ),
    Mutant(
        "ch04.transformer_block",
        "attention built without dropout (dropout=0.0 instead of drop_rate)",
        (('dropout=cfg["drop_rate"],', "dropout=0.0,"),),
    ),
    # ch04.gpt_model
    Mutant(
        "ch04.gpt_model",
        "position embeddings never added",
        (("x = self.tok_emb(in_idx) + self.pos_emb(positions)", "x = self.tok_emb(in_idx)"),),
    ),
    Mutant(
        "ch04.gpt_model",
        "positions counted from 1 instead of 0",
        (
            (
                "positions = torch.arange(num_tokens, device=in_idx.device)",
                "positions = torch.arange(1, num_tokens + 1, device=in_idx.device)",
            ),
        ),
    ),
    Mutant(
        "ch04.gpt_model",
        "position embedding table sized vocab_size instead of context_length",
        (
            (
                'self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])',
                'self.pos_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])',
            ),
        ),
    ),
    Mutant(
        "ch04.gpt_model",
        "final_norm created but not applied before the output head",
        (("        x = self.final_norm(x)\n", ""),),
    ),
    Mutant(
        "ch04.gpt_model",
        "output head with a bias",
        (('cfg["vocab_size"], bias=False)', 'cfg["vocab_size"], bias=True)'),),
    ),
    Mutant(
        "ch04.gpt_model",
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
        "ch04.gpt_model",
        "embedding dropout applied to the token embeddings before the position embeddings are added",
        (
            (
                "x = self.tok_emb(in_idx) + self.pos_emb(positions)\n        x = self.drop_emb(x)",
                "x = self.drop_emb(self.tok_emb(in_idx)) + self.pos_emb(positions)",
            ),
        ),
    ),
    Mutant(
        "ch04.gpt_model",
        "no dropout on the embeddings (drop_emb created but never applied)",
        (("        x = self.drop_emb(x)\n", ""),),
    ),
    Mutant(
        "ch04.gpt_model",
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
        "ch04.gpt_model",
        "one block repeated n_layers times: all layers share the same weights",
        (
            (
                'nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])',
                'nn.Sequential(*[TransformerBlock(cfg)] * cfg["n_layers"])',
            ),
        ),
    ),
    Mutant(
        "ch04.gpt_model",
        "one transformer block too few",
        (('range(cfg["n_layers"])', 'range(cfg["n_layers"] - 1)'),),
    ),
    Mutant(
        "ch04.gpt_model",
        "returns softmax probabilities instead of logits",
        (("return self.out_head(x)", "return torch.softmax(self.out_head(x), dim=-1)"),),
    ),
    # ch04.generate_text_simple
    Mutant(
        "ch04.generate_text_simple",
        "next token from the logits of the first position (logits[:, 0, :]) instead of the last",
        (("logits[:, -1, :]", "logits[:, 0, :]"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "context not cropped: the model sees the whole sequence",
        (("idx_cond = idx[:, -context_size:]", "idx_cond = idx"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "context cropped to the first context_size tokens instead of the last",
        (("idx[:, -context_size:]", "idx[:, :context_size]"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "new token concatenated along dim 0 (as a new row) instead of dim 1",
        (("torch.cat([idx, next_token], dim=1)", "torch.cat([idx, next_token], dim=0)"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "samples from the softmax instead of taking the argmax",
        (
            (
                "logits[:, -1, :].argmax(dim=-1, keepdim=True)",
                "torch.multinomial(torch.softmax(logits[:, -1, :], dim=-1), num_samples=1)",
            ),
        ),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "argmax over the batch dimension instead of the vocabulary",
        (("argmax(dim=-1, keepdim=True)", "argmax(dim=0, keepdim=True)"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "argmax without keepdim: a (batch,) tensor cannot be concatenated to (batch, num_tokens)",
        (("argmax(dim=-1, keepdim=True)", "argmax(dim=-1)"),),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "returns only the generated tokens, without the prompt",
        (
            ("    for _ in range(max_new_tokens):\n", "    prompt_length = idx.shape[1]\n    for _ in range(max_new_tokens):\n"),
            ("    return idx\n", "    return idx[:, prompt_length:]\n"),
        ),
    ),
    Mutant(
        "ch04.generate_text_simple",
        "one token too many: loops max_new_tokens + 1 times",
        (("range(max_new_tokens)", "range(max_new_tokens + 1)"),),
    ),
]

ALTERNATIVES: list[Alternative] = [
    # ch04.layer_norm
    Alternative(
        "ch04.layer_norm",
        "variance as the mean squared deviation, multiplied by torch.rsqrt",
        r'''
class LayerNorm(nn.Module):
    """Normalises the last dimension with the mean squared deviation, then scales and shifts."""

    def __init__(self, emb_dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))
        self.eps = 1e-5

    def forward(self, x):
        centered = x - x.mean(-1, keepdim=True)
        var = (centered ** 2).mean(-1, keepdim=True)
        return centered * torch.rsqrt(var + self.eps) * self.scale + self.shift
''',
    ),
    Alternative(
        "ch04.layer_norm",
        "torch.var_mean with correction=0 and addcmul for the affine step",
        r'''
import torch
from torch import nn


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension via torch.var_mean."""

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=x.dim() - 1, keepdim=True, correction=0)
        normed = (x - mean) / (var + self.eps).sqrt()
        return torch.addcmul(self.shift, normed, self.scale)
''',
    ),
    # ch04.gelu
    Alternative(
        "ch04.gelu",
        "math.sqrt(2 / math.pi) and x * x * x",
        r'''
import math


class GELU(nn.Module):
    """GELU, tanh approximation."""

    def forward(self, x):
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
''',
    ),
    Alternative(
        "ch04.gelu",
        "sigmoid identity 0.5 (1 + tanh(z)) = sigmoid(2 z)",
        r'''
import math

import torch
import torch.nn as nn

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELU(nn.Module):
    """x * sigmoid(2 z) with z = sqrt(2/pi) (x + 0.044715 x^3): the tanh approximation rewritten."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = _SQRT_2_OVER_PI * (x + 0.044715 * x.pow(3))
        return x * torch.sigmoid(2.0 * z)
''',
    ),
    # ch04.feed_forward
    Alternative(
        "ch04.feed_forward",
        "nn.Sequential built from a list; forward loops over the layers",
        r'''
class FeedForward(nn.Module):
    """Linear (4x) -> GELU -> Linear, built from a list."""

    def __init__(self, cfg):
        super().__init__()
        emb_dim = cfg["emb_dim"]
        hidden = emb_dim * 4
        modules = [nn.Linear(emb_dim, hidden), GELU(), nn.Linear(hidden, emb_dim)]
        self.layers = nn.Sequential(*modules)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
''',
    ),
    Alternative(
        "ch04.feed_forward",
        "empty nn.Sequential filled with append; named modules called explicitly in forward",
        r'''
class FeedForward(nn.Module):
    """The position-wise MLP, its three modules appended one by one."""

    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["emb_dim"]
        self.layers = nn.Sequential()
        self.layers.append(nn.Linear(in_features=d, out_features=4 * d, bias=True))
        self.layers.append(GELU())
        self.layers.append(nn.Linear(in_features=4 * d, out_features=d, bias=True))

    def forward(self, x):
        expand, act, project = self.layers
        return project(act(expand(x)))
''',
    ),
    # ch04.transformer_block
    Alternative(
        "ch04.transformer_block",
        "one line per sublayer; MultiHeadAttention with positional arguments",
        r'''
class TransformerBlock(nn.Module):
    """Pre-LN block: x + drop(att(norm1(x))), then + drop(ff(norm2(.)))."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg["emb_dim"]
        self.att = MultiHeadAttention(d, d, cfg["context_length"], cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(d)
        self.norm2 = LayerNorm(d)
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))
''',
    ),
    Alternative(
        "ch04.transformer_block",
        "modules created in data-flow order (norm1, att, norm2, ff) with a helper for the sublayers",
        r'''
class TransformerBlock(nn.Module):
    """Two residual sublayers, each normalised first."""

    def __init__(self, cfg):
        super().__init__()
        emb_dim, rate = cfg["emb_dim"], cfg["drop_rate"]
        self.norm1 = LayerNorm(emb_dim)
        self.att = MultiHeadAttention(
            d_in=emb_dim,
            d_out=emb_dim,
            context_length=cfg["context_length"],
            dropout=rate,
            num_heads=cfg["n_heads"],
            qkv_bias=cfg.get("qkv_bias", False),
        )
        self.norm2 = LayerNorm(emb_dim)
        self.ff = FeedForward(cfg)
        self.drop_shortcut = nn.Dropout(p=rate)

    def _residual(self, x, norm, sublayer):
        return x + self.drop_shortcut(sublayer(norm(x)))

    def forward(self, x):
        for norm, sublayer in ((self.norm1, self.att), (self.norm2, self.ff)):
            x = self._residual(x, norm, sublayer)
        return x
''',
    ),
    # ch04.gpt_model
    Alternative(
        "ch04.gpt_model",
        "positions via arange(...).unsqueeze(0), expanded over the batch; blocks passed as a generator",
        r'''
class GPTModel(nn.Module):
    """GPT-2 with the position ids made explicit per batch row."""

    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(num_embeddings=cfg["vocab_size"], embedding_dim=cfg["emb_dim"])
        self.pos_emb = nn.Embedding(num_embeddings=cfg["context_length"], embedding_dim=cfg["emb_dim"])
        self.drop_emb = nn.Dropout(p=cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*(TransformerBlock(cfg) for _ in range(cfg["n_layers"])))
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        pos_ids = torch.arange(in_idx.size(1), dtype=torch.long, device=in_idx.device).unsqueeze(0)
        pos_ids = pos_ids.expand_as(in_idx)
        hidden = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(pos_ids))
        hidden = self.trf_blocks(hidden)
        logits = self.out_head(self.final_norm(hidden))
        return logits
''',
    ),
    Alternative(
        "ch04.gpt_model",
        "blocks in an nn.ModuleList looped over in forward; position table sliced by weight",
        r'''
class GPTModel(nn.Module):
    """GPT-2 whose blocks sit in a ModuleList (same state-dict keys as an nn.Sequential)."""

    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            self.trf_blocks.append(TransformerBlock(cfg))
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        seq_len = in_idx.shape[-1]
        x = self.tok_emb(in_idx) + self.pos_emb.weight[:seq_len]
        x = self.drop_emb(x)
        for block in self.trf_blocks:
            x = block(x)
        return self.out_head(self.final_norm(x))
''',
    ),
    # ch04.generate_text_simple
    Alternative(
        "ch04.generate_text_simple",
        "while loop under a @torch.no_grad() decorator, next token via torch.max(...).indices",
        r'''
@torch.no_grad()
def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Greedy decoding until max_new_tokens tokens have been appended."""
    target = idx.shape[1] + max_new_tokens
    while idx.shape[1] < target:
        window = idx[:, -context_size:]
        last = model(window)[:, -1]
        next_id = torch.max(last, dim=-1, keepdim=True).indices
        idx = torch.cat((idx, next_id), dim=-1)
    return idx
''',
    ),
    Alternative(
        "ch04.generate_text_simple",
        "Python lists of token ids, model called under inference_mode, tensor rebuilt each step",
        r'''
import torch


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Greedy decoding that keeps the running sequences as Python lists."""
    rows = idx.tolist()
    for _ in range(max_new_tokens):
        window = torch.tensor([row[-context_size:] for row in rows], dtype=idx.dtype, device=idx.device)
        with torch.inference_mode():
            logits = model(window)
            best = torch.argmax(logits[:, -1, :], dim=-1).tolist()
        for row, token in zip(rows, best):
            row.append(token)
    return torch.tensor(rows, dtype=idx.dtype, device=idx.device)
''',
    ),
]

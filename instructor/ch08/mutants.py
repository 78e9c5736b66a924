"""Chapter 8's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch08.rms_norm": [
        Mutant(
            "the mean subtracted and x divided by its standard deviation (LayerNorm without a shift)",
            (
                (
                    "normed = x_float * torch.rsqrt(mean_square + self.eps)",
                    "centred = x_float - x_float.mean(dim=-1, keepdim=True)\n"
                    "        normed = centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + self.eps)",
                ),
            ),
        ),
        Mutant(
            "divided by the standard deviation (mean taken out of the variance) but x itself not centred",
            (
                (
                    "mean_square = x_float.pow(2).mean(dim=-1, keepdim=True)",
                    "mean_square = x_float.var(dim=-1, keepdim=True, unbiased=False)",
                ),
            ),
        ),
        Mutant(
            "eps added outside the square root: x / (sqrt(mean(x**2)) + eps)",
            (("x_float * torch.rsqrt(mean_square + self.eps)", "x_float / (torch.sqrt(mean_square) + self.eps)"),),
        ),
        Mutant(
            "eps left out: x / sqrt(mean(x**2))",
            (("torch.rsqrt(mean_square + self.eps)", "torch.rsqrt(mean_square)"),),
        ),
        Mutant(
            "the eps argument ignored: always 1e-6",
            (("self.eps = eps\n", "self.eps = 1e-6\n"),),
        ),
        Mutant(
            "the learned weight never applied",
            (("return (normed * self.weight.float()).to(x.dtype)", "return normed.to(x.dtype)"),),
        ),
        Mutant(
            "the mean square taken over dim=1 (the token axis of a 3-d input) instead of the last dimension",
            (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.pow(2).mean(dim=1, keepdim=True)"),),
        ),
        Mutant(
            "the sum of squares instead of their mean",
            (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.pow(2).sum(dim=-1, keepdim=True)"),),
        ),
        Mutant(
            "the square of the mean instead of the mean of the squares",
            (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.mean(dim=-1, keepdim=True).pow(2)"),),
        ),
        Mutant(
            "multiplies by the root mean square instead of dividing by it",
            (("torch.rsqrt(mean_square + self.eps)", "torch.sqrt(mean_square + self.eps)"),),
        ),
        Mutant(
            "no cast back: a bfloat16 input comes out float32",
            (("return (normed * self.weight.float()).to(x.dtype)", "return normed * self.weight.float()"),),
        ),
        Mutant(
            "the weight is a plain tensor, not an nn.Parameter",
            (("self.weight = nn.Parameter(torch.ones(emb_dim))", "self.weight = torch.ones(emb_dim)"),),
        ),
        Mutant(
            "the weight starts at zeros",
            (("nn.Parameter(torch.ones(emb_dim))", "nn.Parameter(torch.zeros(emb_dim))"),),
        ),
        Mutant(
            "a LayerNorm-style bias added as a second parameter",
            (
                (
                    "self.weight = nn.Parameter(torch.ones(emb_dim))",
                    "self.weight = nn.Parameter(torch.ones(emb_dim))\n        self.bias = nn.Parameter(torch.zeros(emb_dim))",
                ),
                ("(normed * self.weight.float())", "(normed * self.weight.float() + self.bias.float())"),
            ),
        ),
        Mutant(
            "squared before the upcast: x.pow(2).float() overflows in float16",
            (
                (
                    "mean_square = x_float.pow(2).mean(dim=-1, keepdim=True)",
                    "mean_square = x.pow(2).float().mean(dim=-1, keepdim=True)",
                ),
            ),
        ),
        Mutant(
            "no upcast to float32: the mean of squares computed in the input's dtype (overflows in float16)",
            (("x_float = x.float()", "x_float = x"),),
        ),
        Mutant(
            "the mean of squares computed in the input's dtype and only then cast to float32",
            (
                (
                    "mean_square = x_float.pow(2).mean(dim=-1, keepdim=True)",
                    "mean_square = x.pow(2).mean(dim=-1, keepdim=True).float()",
                ),
            ),
        ),
        Mutant(
            "mean(..., dtype=torch.float32) on x.pow(2): the squares are already taken in float16",
            (
                (
                    "mean_square = x_float.pow(2).mean(dim=-1, keepdim=True)",
                    "mean_square = x.pow(2).mean(dim=-1, keepdim=True, dtype=torch.float32)",
                ),
            ),
        ),
    ],
    "ch08.swiglu": [
        Mutant(
            "SiLU is the sigmoid alone",
            (("return x * torch.sigmoid(x)", "return torch.sigmoid(x)"),),
        ),
        Mutant(
            "SiLU is a ReLU",
            (("return x * torch.sigmoid(x)", "return torch.relu(x)"),),
        ),
        Mutant(
            "SiLU is GPT-2's GELU (tanh approximation)",
            (
                (
                    "return x * torch.sigmoid(x)",
                    "return 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))",
                ),
            ),
        ),
        Mutant(
            "the sigmoid written by hand with the sign of the exponent lost: x / (1 + exp(x))",
            (("return x * torch.sigmoid(x)", "return x / (1 + torch.exp(x))"),),
        ),
        Mutant(
            "SiLU calls PyTorch's own silu instead of being written out",
            (("return x * torch.sigmoid(x)", "return torch.nn.functional.silu(x)"),),
        ),
        Mutant(
            "SiLU applied to the wrong branch: fc1(x) * silu(fc2(x))",
            (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.fc1(x) * self.silu(self.fc2(x)))"),),
        ),
        Mutant(
            "SiLU applied to the product of both branches",
            (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x) * self.fc2(x)))"),),
        ),
        Mutant(
            "no gate: fc3(silu(fc1(x))), fc2 unused",
            (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x)))"),),
        ),
        Mutant(
            "the branches added instead of multiplied",
            (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x)) + self.fc2(x))"),),
        ),
        Mutant(
            "fc2 and fc3 swapped: fc2 is the output projection",
            (
                (
                    'self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc2 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc3 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])',
                ),
                ("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc2(self.silu(self.fc1(x)) * self.fc3(x))"),
            ),
        ),
        Mutant(
            "the linear layers keep their biases (nn.Linear's default)",
            (
                (
                    'self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], dtype=cfg["dtype"])',
                ),
                (
                    'self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], dtype=cfg["dtype"])',
                ),
                (
                    'self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], dtype=cfg["dtype"])',
                ),
            ),
        ),
        Mutant(
            "the hidden width is GPT-2's 4 * emb_dim instead of cfg['hidden_dim']",
            (
                (
                    'self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc1 = nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc2 = nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc3 = nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])',
                ),
            ),
        ),
        Mutant(
            "cfg['dtype'] ignored: the layers are float32 whatever the configuration",
            (
                (
                    'self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])\n'
                    '        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])',
                    'self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False)\n'
                    '        self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False)\n'
                    '        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False)',
                ),
            ),
        ),
    ],
    "ch08.rope": [
        Mutant(
            "apply_rope pairs neighbours (2i, 2i + 1), the interleaved layout, with tables in the rotate-half layout",
            (
                (
                    "x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2:]\n"
                    "    rotated = torch.cat([-x2, x1], dim=-1)",
                    "x1, x2 = x[..., 0::2], x[..., 1::2]\n    rotated = torch.stack([-x2, x1], dim=-1).flatten(-2)",
                ),
            ),
        ),
        Mutant(
            "the halves taken as the even and odd dimensions, then rotated as halves",
            (("x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2:]", "x1, x2 = x[..., 0::2], x[..., 1::2]"),),
        ),
        Mutant(
            "cos and sin not sliced to the sequence length",
            (("    cos, sin = cos[:num_tokens], sin[:num_tokens]\n", ""),),
        ),
        Mutant(
            "the last num_tokens rows of the tables instead of the first",
            (("cos, sin = cos[:num_tokens], sin[:num_tokens]", "cos, sin = cos[-num_tokens:], sin[-num_tokens:]"),),
        ),
        Mutant(
            "rotate_half with the sign on the wrong half: cat(x2, -x1) turns the other way",
            (("rotated = torch.cat([-x2, x1], dim=-1)", "rotated = torch.cat([x2, -x1], dim=-1)"),),
        ),
        Mutant(
            "cos and sin swapped in the rotation",
            (("return (x * cos + rotated * sin).to(x.dtype)", "return (x * sin + rotated * cos).to(x.dtype)"),),
        ),
        Mutant(
            "no cast back: a bfloat16 input comes out float32",
            (("return (x * cos + rotated * sin).to(x.dtype)", "return x * cos + rotated * sin"),),
        ),
        Mutant(
            "inverse frequencies theta ** (-i / head_dim) over i = 0 .. head_dim // 2 - 1 (the 2 dropped)",
            (
                (
                    "torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim",
                    "torch.arange(0, head_dim // 2, dtype=torch.float32) / head_dim",
                ),
            ),
        ),
        Mutant(
            "inverse frequencies from arange(head_dim) without the step of 2",
            (("torch.arange(0, head_dim, 2, dtype=torch.float32)", "torch.arange(0, head_dim, dtype=torch.float32)"),),
        ),
        Mutant(
            "frequencies theta ** (2i / head_dim) instead of their inverse",
            (
                (
                    "inv_freq = 1.0 / theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)",
                    "inv_freq = theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)",
                ),
            ),
        ),
        Mutant(
            "theta_base ignored: always 10,000",
            (("1.0 / theta_base ** (", "1.0 / 10_000 ** ("),),
        ),
        Mutant(
            "the angle table repeated interleaved (repeat_interleave) instead of as two halves",
            (("angles = torch.cat([angles, angles], dim=1)", "angles = angles.repeat_interleave(2, dim=1)"),),
        ),
        Mutant(
            "positions counted from 1",
            (
                (
                    "positions = torch.arange(context_length, dtype=torch.float32)",
                    "positions = torch.arange(1, context_length + 1, dtype=torch.float32)",
                ),
            ),
        ),
        Mutant(
            "tables in float64",
            (
                (
                    "inv_freq = 1.0 / theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)",
                    "inv_freq = 1.0 / theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)",
                ),
                (
                    "positions = torch.arange(context_length, dtype=torch.float32)",
                    "positions = torch.arange(context_length, dtype=torch.float64)",
                ),
            ),
        ),
        Mutant(
            "freq_config's scaled frequencies computed but never used",
            (
                (
                    "inv_freq = torch.where(medium, smoothed, scaled)",
                    "inv_freq_llama = torch.where(medium, smoothed, scaled)",
                ),
            ),
        ),
        Mutant(
            "the high frequencies slowed down instead of the low ones",
            (
                (
                    "scaled = torch.where(wavelen > original / low, inv_freq / factor, inv_freq)",
                    "scaled = torch.where(wavelen < original / high, inv_freq / factor, inv_freq)",
                ),
            ),
        ),
        Mutant(
            "the smooth band's bounds swapped, so that no wavelength falls in it",
            (
                (
                    "medium = (wavelen <= original / low) & (wavelen >= original / high)",
                    "medium = (wavelen <= original / high) & (wavelen >= original / low)",
                ),
            ),
        ),
        Mutant(
            "the scaled frequencies multiplied by factor instead of divided",
            (
                ("inv_freq / factor, inv_freq)", "inv_freq * factor, inv_freq)"),
                ("(1 - smooth) * inv_freq / factor", "(1 - smooth) * inv_freq * factor"),
            ),
        ),
        Mutant(
            "the smooth band blended the wrong way round",
            (
                (
                    "smoothed = (1 - smooth) * inv_freq / factor + smooth * inv_freq",
                    "smoothed = smooth * inv_freq / factor + (1 - smooth) * inv_freq",
                ),
            ),
        ),
        Mutant(
            "no smooth band: the middle frequencies keep their value",
            (("inv_freq = torch.where(medium, smoothed, scaled)", "inv_freq = scaled"),),
        ),
        Mutant(
            "the smoothing factor from wavelength / original context instead of original context / wavelength",
            (
                (
                    "smooth = (original / wavelen - low) / (high - low)",
                    "smooth = (wavelen / original - low) / (high - low)",
                ),
            ),
        ),
        Mutant(
            "the angle table built transposed: (head_dim // 2, context_length)",
            (("angles = positions[:, None] * inv_freq[None, :]", "angles = inv_freq[:, None] * positions[None, :]"),),
        ),
    ],
    "ch08.grouped_query_attention": [
        Mutant(
            "key and value heads not repeated for the query heads",
            (
                (
                    "        keys = keys.repeat_interleave(self.group_size, dim=1)  # (b, num_heads, num_tokens, head_dim)\n"
                    "        values = values.repeat_interleave(self.group_size, dim=1)  # (b, num_heads, num_tokens, head_dim)\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "key and value heads expanded to num_heads, which only works with one group",
            (
                (
                    "        keys = keys.repeat_interleave(self.group_size, dim=1)  # (b, num_heads, num_tokens, head_dim)\n"
                    "        values = values.repeat_interleave(self.group_size, dim=1)  # (b, num_heads, num_tokens, head_dim)\n",
                    "        keys = keys.expand(b, self.num_heads, num_tokens, self.head_dim)\n"
                    "        values = values.expand(b, self.num_heads, num_tokens, self.head_dim)\n",
                ),
            ),
        ),
        Mutant(
            "key and value heads repeated in the wrong order (.repeat tiles them: 0, 1, 0, 1, ...)",
            (
                (
                    "keys = keys.repeat_interleave(self.group_size, dim=1)",
                    "keys = keys.repeat(1, self.group_size, 1, 1)",
                ),
                (
                    "values = values.repeat_interleave(self.group_size, dim=1)",
                    "values = values.repeat(1, self.group_size, 1, 1)",
                ),
            ),
        ),
        Mutant(
            "group_size taken as num_kv_groups",
            (("self.group_size = num_heads // num_kv_groups", "self.group_size = num_kv_groups"),),
        ),
        Mutant(
            "RoPE applied to the values too",
            (
                (
                    "queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)",
                    "queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)\n"
                    "        values = apply_rope(values, cos, sin)",
                ),
            ),
        ),
        Mutant(
            "RoPE applied to the queries only",
            (
                (
                    "queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)",
                    "queries = apply_rope(queries, cos, sin)",
                ),
            ),
        ),
        Mutant(
            "no RoPE at all",
            (("        queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)\n", ""),),
        ),
        Mutant(
            "scores scaled by sqrt(d_out) instead of sqrt(head_dim)",
            (
                (
                    "torch.softmax(scores / self.head_dim**0.5, dim=-1)",
                    "torch.softmax(scores / self.d_out**0.5, dim=-1)",
                ),
            ),
        ),
        Mutant(
            "scores not scaled",
            (("torch.softmax(scores / self.head_dim**0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
        ),
        Mutant(
            "the mask ignored",
            (
                (
                    "scores = (queries @ keys.transpose(2, 3)).masked_fill(mask, -torch.inf)",
                    "scores = queries @ keys.transpose(2, 3)",
                ),
            ),
        ),
        Mutant(
            "the mask inverted: hides where it is False",
            (("masked_fill(mask, -torch.inf)", "masked_fill(~mask, -torch.inf)"),),
        ),
        Mutant(
            "masked scores set to 0 instead of -inf",
            (("masked_fill(mask, -torch.inf)", "masked_fill(mask, 0.0)"),),
        ),
        Mutant(
            "softmax over the query axis (dim=-2)",
            (
                (
                    "torch.softmax(scores / self.head_dim**0.5, dim=-1)",
                    "torch.softmax(scores / self.head_dim**0.5, dim=-2)",
                ),
            ),
        ),
        Mutant(
            "W_key and W_value sized d_out, as in multi-head attention",
            (
                ("self.W_key = nn.Linear(d_in, num_kv_groups * self.head_dim,", "self.W_key = nn.Linear(d_in, d_out,"),
                (
                    "self.W_value = nn.Linear(d_in, num_kv_groups * self.head_dim,",
                    "self.W_value = nn.Linear(d_in, d_out,",
                ),
            ),
        ),
        Mutant(
            "no check that num_heads is divisible by num_kv_groups",
            (
                (
                    "        if num_heads % num_kv_groups:\n"
                    '            raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups})")\n',
                    "",
                ),
            ),
        ),
        Mutant(
            "no check that d_out is divisible by num_heads",
            (
                (
                    "        if d_out % num_heads:\n"
                    '            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")\n',
                    "",
                ),
            ),
        ),
        Mutant(
            "the heads merged without moving them back next to each other (no transpose before reshape)",
            (
                (
                    "context = (weights @ values).transpose(1, 2).reshape(b, num_tokens, self.d_out)",
                    "context = (weights @ values).reshape(b, num_tokens, self.d_out)",
                ),
            ),
        ),
        Mutant(
            "queries split into heads with view(b, num_heads, num_tokens, head_dim), without the transpose",
            (
                (
                    "queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)",
                    "queries = self.W_query(x).view(b, self.num_heads, num_tokens, self.head_dim)",
                ),
            ),
        ),
        Mutant(
            "the output projection keeps its bias",
            (
                (
                    "self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)",
                    "self.out_proj = nn.Linear(d_out, d_out, dtype=dtype)",
                ),
            ),
        ),
        Mutant(
            "the output projection left out",
            (("return self.out_proj(context)", "return context"),),
        ),
        Mutant(
            "an assert instead of a ValueError when num_heads is not divisible by num_kv_groups",
            (
                (
                    "        if num_heads % num_kv_groups:\n"
                    '            raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups})")\n',
                    '        assert num_heads % num_kv_groups == 0, "num_heads must be divisible by num_kv_groups"\n',
                ),
            ),
        ),
        Mutant(
            "an assert instead of a ValueError when d_out is not divisible by num_heads",
            (
                (
                    "        if d_out % num_heads:\n"
                    '            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")\n',
                    '        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"\n',
                ),
            ),
        ),
        Mutant(
            "the configuration checked with assert instead of raising a ValueError",
            (
                (
                    "        if d_out % num_heads:\n"
                    '            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")\n'
                    "        if num_heads % num_kv_groups:\n"
                    '            raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups})")\n',
                    '        assert d_out % num_heads == 0, f"d_out ({d_out}) must be divisible by num_heads ({num_heads})"\n'
                    '        assert num_heads % num_kv_groups == 0, f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups})"\n',
                ),
            ),
        ),
        Mutant(
            "both checks joined with `and`: a ValueError only when both divisions fail",
            (
                (
                    "        if d_out % num_heads:\n"
                    '            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")\n'
                    "        if num_heads % num_kv_groups:\n"
                    '            raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups})")\n',
                    "        if d_out % num_heads and num_heads % num_kv_groups:\n"
                    '            raise ValueError("d_out must be divisible by num_heads and num_heads by num_kv_groups")\n',
                ),
            ),
        ),
        Mutant(
            "checks that there are no more key/value groups than heads instead of divisibility (6 heads, 4 groups passes)",
            (("        if num_heads % num_kv_groups:\n", "        if num_kv_groups > num_heads:\n"),),
        ),
        Mutant(
            "the head-size check made on d_in instead of d_out",
            (("        if d_out % num_heads:\n", "        if d_in % num_heads:\n"),),
        ),
    ],
    "ch08.llama_model": [
        Mutant(
            "post-norm blocks: norm(x + sublayer(x)) as in the original transformer",
            (
                (
                    "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                    "x = self.norm1(x + self.att(x, mask, cos, sin))\n        return self.norm2(x + self.ff(x))",
                ),
            ),
        ),
        Mutant(
            "norm1 and norm2 swapped",
            (
                (
                    "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                    "x = x + self.att(self.norm2(x), mask, cos, sin)\n        return x + self.ff(self.norm1(x))",
                ),
            ),
        ),
        Mutant(
            "no residual connection around the attention",
            (("x = x + self.att(self.norm1(x), mask, cos, sin)", "x = self.att(self.norm1(x), mask, cos, sin)"),),
        ),
        Mutant(
            "the residual adds the normalised input instead of x",
            (
                (
                    "x = x + self.att(self.norm1(x), mask, cos, sin)",
                    "x = self.norm1(x)\n        x = x + self.att(x, mask, cos, sin)",
                ),
            ),
        ),
        Mutant(
            "one RMSNorm shared by both sublayers",
            (
                ('        self.norm2 = RMSNorm(cfg["emb_dim"])\n', ""),
                ("return x + self.ff(self.norm2(x))", "return x + self.ff(self.norm1(x))"),
            ),
        ),
        Mutant(
            "attention and feed-forward in parallel on the same input (GPT-J style)",
            (
                (
                    "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                    "return x + self.att(self.norm1(x), mask, cos, sin) + self.ff(self.norm2(x))",
                ),
            ),
        ),
        Mutant(
            "final_norm never applied",
            (("return self.out_head(self.final_norm(x))", "return self.out_head(x)"),),
        ),
        Mutant(
            "RoPE tables of width emb_dim instead of head_dim",
            (('compute_rope_params(cfg["emb_dim"] // cfg["n_heads"],', 'compute_rope_params(cfg["emb_dim"],'),),
        ),
        Mutant(
            "head_dim for RoPE from the key/value groups: emb_dim // n_kv_groups",
            (
                (
                    'compute_rope_params(cfg["emb_dim"] // cfg["n_heads"],',
                    'compute_rope_params(cfg["emb_dim"] // cfg["n_kv_groups"],',
                ),
            ),
        ),
        Mutant(
            "cfg['rope_freq'] not passed on: no Llama 3.1 scaling",
            (
                (
                    'cfg["context_length"],\n                                       cfg["rope_freq"])',
                    'cfg["context_length"])',
                ),
            ),
        ),
        Mutant(
            "cfg['rope_base'] not passed on: compute_rope_params' default base",
            (
                (
                    'cos, sin = compute_rope_params(cfg["emb_dim"] // cfg["n_heads"], cfg["rope_base"], cfg["context_length"],',
                    'cos, sin = compute_rope_params(cfg["emb_dim"] // cfg["n_heads"], context_length=cfg["context_length"],\n'
                    "                                       freq_config=",
                ),
            ),
        ),
        Mutant(
            "the mask hides the diagonal too (diagonal=0): every token loses itself, the first sees nothing",
            (
                (
                    "dtype=torch.bool, device=in_idx.device), diagonal=1)",
                    "dtype=torch.bool, device=in_idx.device), diagonal=0)",
                ),
            ),
        ),
        Mutant(
            "the mask built with tril: True on and below the diagonal",
            (
                (
                    "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device), diagonal=1)",
                    "mask = torch.tril(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device))",
                ),
            ),
        ),
        Mutant(
            "no mask: every token sees the whole sequence",
            (
                (
                    "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device), diagonal=1)",
                    "mask = torch.zeros(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device)",
                ),
            ),
        ),
        Mutant(
            "cos and sin registered as persistent buffers: they land in the state dict",
            (
                (
                    'self.register_buffer("cos", cos, persistent=False)\n        self.register_buffer("sin", sin, persistent=False)',
                    'self.register_buffer("cos", cos)\n        self.register_buffer("sin", sin)',
                ),
            ),
        ),
        Mutant(
            "cfg['dtype'] ignored for the embedding and the output head",
            (
                (
                    'nn.Embedding(cfg["vocab_size"], cfg["emb_dim"], dtype=cfg["dtype"])',
                    'nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])',
                ),
                (
                    'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])',
                    'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)',
                ),
            ),
        ),
        Mutant(
            "the output head keeps its bias",
            (
                (
                    'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])',
                    'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], dtype=cfg["dtype"])',
                ),
            ),
        ),
        Mutant(
            "GPT-2's learned position embeddings kept next to RoPE",
            (
                (
                    "        self.trf_blocks = nn.ModuleList(",
                    '        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"], dtype=cfg["dtype"])\n'
                    "        self.trf_blocks = nn.ModuleList(",
                ),
                (
                    "x = self.tok_emb(in_idx)",
                    "x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(num_tokens, device=in_idx.device))",
                ),
            ),
        ),
        Mutant(
            "embeddings scaled by sqrt(emb_dim) as in Gemma",
            (("x = self.tok_emb(in_idx)", 'x = self.tok_emb(in_idx) * self.cfg["emb_dim"] ** 0.5'),),
        ),
        Mutant(
            "the blocks kept in a plain Python list: their parameters are not registered",
            (
                (
                    'self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))',
                    'self.trf_blocks = [TransformerBlock(cfg) for _ in range(cfg["n_layers"])]',
                ),
            ),
        ),
        Mutant(
            "the same block object repeated n_layers times: one set of weights",
            (
                (
                    'self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))',
                    'self.trf_blocks = nn.ModuleList([TransformerBlock(cfg)] * cfg["n_layers"])',
                ),
            ),
        ),
        Mutant(
            "the mask sized for the whole context, not the sequence",
            (
                (
                    "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool",
                    'mask = torch.triu(torch.ones(self.cfg["context_length"], self.cfg["context_length"], dtype=torch.bool',
                ),
            ),
        ),
        Mutant(
            "each block fed the embeddings instead of the previous block's output",
            (
                (
                    "            x = block(x, mask, self.cos, self.sin)\n        return self.out_head(self.final_norm(x))",
                    "            h = block(x, mask, self.cos, self.sin)\n        return self.out_head(self.final_norm(h))",
                ),
            ),
        ),
        Mutant(
            "the blocks kept as self.blocks, not trf_blocks",
            (
                ("self.trf_blocks = nn.ModuleList(", "self.blocks = nn.ModuleList("),
                ("for block in self.trf_blocks:", "for block in self.blocks:"),
            ),
        ),
        Mutant(
            "the final norm called norm, not final_norm",
            (
                ('self.final_norm = RMSNorm(cfg["emb_dim"])', 'self.norm = RMSNorm(cfg["emb_dim"])'),
                ("return self.out_head(self.final_norm(x))", "return self.out_head(self.norm(x))"),
            ),
        ),
    ],
    "ch08.kv_cache": [
        Mutant(
            "new tokens rotated from position 0 whatever the cache holds",
            (
                (
                    "cos, sin = model.cos[start:end], model.sin[start:end]",
                    "cos, sin = model.cos[:num_new], model.sin[:num_new]",
                ),
            ),
        ),
        Mutant(
            "the mask of a chunk not shifted by the cached tokens (diagonal=1)",
            (
                (
                    "dtype=torch.bool, device=in_idx.device), diagonal=start + 1)",
                    "dtype=torch.bool, device=in_idx.device), diagonal=1)",
                ),
            ),
        ),
        Mutant(
            "no mask for new tokens: a chunk's tokens see each other's future",
            (
                (
                    "mask = torch.triu(torch.ones(num_new, end, dtype=torch.bool, device=in_idx.device), diagonal=start + 1)",
                    "mask = torch.zeros(num_new, end, dtype=torch.bool, device=in_idx.device)",
                ),
            ),
        ),
        Mutant(
            "the cache's keys rotated again: all keys rotated after the concatenation and stored that way",
            (
                (
                    "x = x + _attention_with_cache(block.att, block.norm1(x), mask, cos, sin, cache, layer)",
                    "x = x + _attention_with_cache(block.att, block.norm1(x), mask, model.cos[:end], model.sin[:end], cache, layer)",
                ),
                (
                    "    queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)\n"
                    "    if cache.keys[layer] is not None:\n"
                    "        keys = torch.cat([cache.keys[layer], keys], dim=2)\n"
                    "        values = torch.cat([cache.values[layer], values], dim=2)\n",
                    "    queries = apply_rope(queries, cos[-num_new:], sin[-num_new:])\n"
                    "    if cache.keys[layer] is not None:\n"
                    "        keys = torch.cat([cache.keys[layer], keys], dim=2)\n"
                    "        values = torch.cat([cache.values[layer], values], dim=2)\n"
                    "    keys = apply_rope(keys, cos, sin)\n",
                ),
            ),
        ),
        Mutant(
            "tokens_seen read from the head axis (shape[1]) of the cached keys",
            (("self.keys[0].shape[2]", "self.keys[0].shape[1]"),),
        ),
        Mutant(
            "keys and values share one list",
            (
                (
                    "        self.keys: list[torch.Tensor | None] = [None] * n_layers\n"
                    "        self.values: list[torch.Tensor | None] = [None] * n_layers\n",
                    "        self.keys = self.values = [None] * n_layers\n",
                ),
            ),
        ),
        Mutant(
            "the cache keeps only the newest keys and values, not the concatenation",
            (
                (
                    "    if cache.keys[layer] is not None:\n"
                    "        keys = torch.cat([cache.keys[layer], keys], dim=2)\n"
                    "        values = torch.cat([cache.values[layer], values], dim=2)\n"
                    "    cache.keys[layer], cache.values[layer] = keys, values\n",
                    "    new_keys, new_values = keys, values\n"
                    "    if cache.keys[layer] is not None:\n"
                    "        keys = torch.cat([cache.keys[layer], keys], dim=2)\n"
                    "        values = torch.cat([cache.values[layer], values], dim=2)\n"
                    "    cache.keys[layer], cache.values[layer] = new_keys, new_values\n",
                ),
            ),
        ),
        Mutant(
            "cached key/value heads tiled with .repeat instead of repeat_interleave",
            (
                ("keys = keys.repeat_interleave(group_size, dim=1)", "keys = keys.repeat(1, group_size, 1, 1)"),
                ("values = values.repeat_interleave(group_size, dim=1)", "values = values.repeat(1, group_size, 1, 1)"),
            ),
        ),
        Mutant(
            "the feed-forward's residual taken from before the attention",
            (
                (
                    "        x = x + _attention_with_cache(block.att, block.norm1(x), mask, cos, sin, cache, layer)\n"
                    "        x = x + block.ff(block.norm2(x))\n",
                    "        h = x + _attention_with_cache(block.att, block.norm1(x), mask, cos, sin, cache, layer)\n"
                    "        x = h + block.ff(block.norm2(x))\n",
                ),
            ),
        ),
        Mutant(
            "final_norm skipped on the cached path",
            (
                (
                    "    return model.out_head(model.final_norm(x))\n\n\ndef _attention_with_cache",
                    "    return model.out_head(x)\n\n\ndef _attention_with_cache",
                ),
            ),
        ),
        Mutant(
            "one cache kept per model across calls, to reuse it",
            (
                (
                    "    cache = KVCache(len(model.trf_blocks)) if use_cache else None\n",
                    "    cache = _CACHES.setdefault(id(model), KVCache(len(model.trf_blocks))) if use_cache else None\n",
                ),
                (
                    "def generate_text_simple_cached(",
                    "_CACHES = {}\n\n\ndef generate_text_simple_cached(",
                ),
            ),
        ),
        Mutant(
            "the cache made once, as a default argument",
            (
                (
                    "eos_id: int | None = None) -> torch.Tensor:",
                    "eos_id: int | None = None, cache=KVCache(2)) -> torch.Tensor:",
                ),
                ("    cache = KVCache(len(model.trf_blocks)) if use_cache else None\n", ""),
            ),
        ),
        Mutant(
            "the whole sequence fed to the cache at every step, not just the new token",
            (("            new_tokens = next_token\n", "            new_tokens = idx\n"),),
        ),
        Mutant(
            "the next token taken from the first position's logits",
            (
                (
                    "next_token = logits[:, -1].argmax(dim=-1, keepdim=True)",
                    "next_token = logits[:, 0].argmax(dim=-1, keepdim=True)",
                ),
            ),
        ),
        Mutant(
            "without the cache, the model runs on the whole sequence instead of the last context_size tokens",
            (("logits = model(idx[:, -context_size:])", "logits = model(idx)"),),
        ),
        Mutant(
            "eos appended before stopping",
            (
                (
                    "            if eos_id is not None and (next_token == eos_id).all():\n"
                    "                break\n"
                    "            idx = torch.cat([idx, next_token], dim=1)\n",
                    "            idx = torch.cat([idx, next_token], dim=1)\n"
                    "            if eos_id is not None and (next_token == eos_id).all():\n"
                    "                break\n",
                ),
            ),
        ),
        Mutant(
            "eos_id ignored",
            (
                (
                    "            if eos_id is not None and (next_token == eos_id).all():\n                break\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "the model left in training mode",
            (("    model.eval()\n    context_size = context_size or", "    context_size = context_size or"),),
        ),
        Mutant(
            "generation builds gradient graphs (no torch.no_grad())",
            (
                (
                    "    with torch.no_grad():\n        for _ in range(max_new_tokens):",
                    "    if True:\n        for _ in range(max_new_tokens):",
                ),
            ),
        ),
        Mutant(
            "the cache stored on the model and reused by the next call",
            (
                (
                    "    cache = KVCache(len(model.trf_blocks)) if use_cache else None\n",
                    '    if use_cache and getattr(model, "kv_cache", None) is None:\n'
                    "        model.kv_cache = KVCache(len(model.trf_blocks))\n"
                    "    cache = model.kv_cache if use_cache else None\n",
                ),
            ),
        ),
        Mutant(
            "eos checked with `if eos_id:`, so an eos_id of 0 never stops generation",
            (
                (
                    "if eos_id is not None and (next_token == eos_id).all():",
                    "if eos_id and (next_token == eos_id).all():",
                ),
            ),
        ),
    ],
    "ch08.load_llama_weights": [
        Mutant(
            "gate_proj and up_proj swapped",
            (
                ('prefix + "mlp.gate_proj.weight")', 'prefix + "mlp.up_proj.weight")'),
                (
                    'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.up_proj.weight")',
                    'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.gate_proj.weight")',
                ),
            ),
        ),
        Mutant(
            "k_proj and v_proj swapped",
            (
                ('prefix + "self_attn.k_proj.weight")', 'prefix + "self_attn.v_proj.weight")'),
                (
                    'block.att.W_value.weight = assign(block.att.W_value.weight, prefix + "self_attn.v_proj.weight")',
                    'block.att.W_value.weight = assign(block.att.W_value.weight, prefix + "self_attn.k_proj.weight")',
                ),
            ),
        ),
        Mutant(
            "q_proj and o_proj swapped (both square)",
            (
                ('prefix + "self_attn.q_proj.weight")', 'prefix + "self_attn.o_proj.weight")'),
                (
                    'block.att.out_proj.weight = assign(block.att.out_proj.weight, prefix + "self_attn.o_proj.weight")',
                    'block.att.out_proj.weight = assign(block.att.out_proj.weight, prefix + "self_attn.q_proj.weight")',
                ),
            ),
        ),
        Mutant(
            "input_layernorm and post_attention_layernorm swapped",
            (
                ('prefix + "input_layernorm.weight")', 'prefix + "post_attention_layernorm.weight")'),
                (
                    'block.norm2.weight = assign(block.norm2.weight, prefix + "post_attention_layernorm.weight")',
                    'block.norm2.weight = assign(block.norm2.weight, prefix + "input_layernorm.weight")',
                ),
            ),
        ),
        Mutant(
            "down_proj and up_proj swapped (a shape error for the first)",
            (
                ('prefix + "mlp.down_proj.weight")', 'prefix + "mlp.up_proj.weight")'),
                (
                    'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.up_proj.weight")',
                    'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.down_proj.weight")',
                ),
            ),
        ),
        Mutant(
            "the output head left untied when lm_head.weight is absent",
            (
                (
                    '    if "lm_head.weight" in params:\n'
                    '        model.out_head.weight = assign(model.out_head.weight, "lm_head.weight")\n'
                    "    else:\n"
                    "        model.out_head.weight = model.tok_emb.weight\n",
                    '    if "lm_head.weight" in params:\n'
                    '        model.out_head.weight = assign(model.out_head.weight, "lm_head.weight")\n',
                ),
            ),
        ),
        Mutant(
            "the output head always tied to the embedding, lm_head.weight ignored",
            (
                (
                    '    if "lm_head.weight" in params:\n'
                    '        model.out_head.weight = assign(model.out_head.weight, "lm_head.weight")\n'
                    "    else:\n"
                    "        model.out_head.weight = model.tok_emb.weight\n",
                    "    model.out_head.weight = model.tok_emb.weight\n",
                ),
            ),
        ),
        Mutant(
            "tied the wrong way round: the embedding replaced by the untrained output head",
            (
                (
                    "        model.out_head.weight = model.tok_emb.weight\n",
                    "        model.tok_emb.weight = model.out_head.weight\n",
                ),
            ),
        ),
        Mutant(
            "every matrix transposed, as for GPT-2's Conv1D weights",
            (
                (
                    "        tensor = params[name]\n",
                    "        tensor = params[name].T if params[name].dim() == 2 else params[name]\n",
                ),
            ),
        ),
        Mutant(
            "no shape check: a tensor of the wrong shape replaces the parameter",
            (
                (
                    "        if parameter.shape != tensor.shape:\n"
                    '            raise ValueError(f"{name}: shape {tuple(tensor.shape)} does not match the model\'s {tuple(parameter.shape)}")\n',
                    "",
                ),
            ),
        ),
        Mutant(
            "the final norm not loaded",
            (('    model.final_norm.weight = assign(model.final_norm.weight, "model.norm.weight")\n', ""),),
        ),
        Mutant(
            "every block gets layer 0's weights",
            (
                (
                    'block, prefix = model.trf_blocks[i], f"model.layers.{i}."',
                    'block, prefix = model.trf_blocks[i], "model.layers.0."',
                ),
            ),
        ),
        Mutant(
            "a plain tensor assigned where a parameter was",
            (
                (
                    "        return nn.Parameter(tensor.detach().clone().to(parameter.dtype))\n",
                    "        return tensor.detach().clone().to(parameter.dtype)\n",
                ),
            ),
        ),
        Mutant(
            "the embedding not loaded",
            (('    model.tok_emb.weight = assign(model.tok_emb.weight, "model.embed_tokens.weight")\n', ""),),
        ),
        Mutant(
            "weights copied in place with copy_ and no shape check: a (1, n) tensor broadcasts, other mismatches raise RuntimeError",
            (
                (
                    "        tensor = params[name]\n"
                    "        if parameter.shape != tensor.shape:\n"
                    '            raise ValueError(f"{name}: shape {tuple(tensor.shape)} does not match the model\'s {tuple(parameter.shape)}")\n'
                    "        return nn.Parameter(tensor.detach().clone().to(parameter.dtype))\n",
                    "        tensor = params[name]\n"
                    "        with torch.no_grad():\n"
                    "            parameter.copy_(tensor)\n"
                    "        return parameter\n",
                ),
            ),
        ),
        Mutant(
            "copy_'s RuntimeError turned into a ValueError, relying on copy_ to notice mismatches (a (1, n) tensor broadcasts silently)",
            (
                (
                    "        tensor = params[name]\n"
                    "        if parameter.shape != tensor.shape:\n"
                    '            raise ValueError(f"{name}: shape {tuple(tensor.shape)} does not match the model\'s {tuple(parameter.shape)}")\n'
                    "        return nn.Parameter(tensor.detach().clone().to(parameter.dtype))\n",
                    "        tensor = params[name]\n"
                    "        try:\n"
                    "            with torch.no_grad():\n"
                    "                parameter.copy_(tensor)\n"
                    "        except RuntimeError as exc:\n"
                    '            raise ValueError(f"{name}: {exc}") from exc\n'
                    "        return parameter\n",
                ),
            ),
        ),
        Mutant(
            "the shape checked with assert instead of raising a ValueError",
            (
                (
                    '        if parameter.shape != tensor.shape:\n            raise ValueError(f"{name}: shape',
                    '        assert parameter.shape == tensor.shape, (f"{name}: shape',
                ),
            ),
        ),
        Mutant(
            "the ValueError does not say which tensor has the wrong shape",
            (
                (
                    'raise ValueError(f"{name}: shape {tuple(tensor.shape)}',
                    'raise ValueError(f"shape {tuple(tensor.shape)}',
                ),
            ),
        ),
        Mutant(
            "sizes compared with numel() instead of shapes: a transposed matrix passes",
            (("if parameter.shape != tensor.shape:", "if parameter.numel() != tensor.numel():"),),
        ),
    ],
    "ch08.llama3_tokenizer": [
        Mutant(
            "special ids fixed from 128000, Llama 3's vocabulary size, instead of after the ranks",
            (("self.special_tokens = {name: len(ranks) + i for", "self.special_tokens = {name: 128_000 + i for"),),
        ),
        Mutant(
            "special ids start one after the last rank",
            (
                (
                    "self.special_tokens = {name: len(ranks) + i for",
                    "self.special_tokens = {name: len(ranks) + 1 + i for",
                ),
            ),
        ),
        Mutant(
            "<|eot_id|> before <|reserved_special_token_4|>",
            (('"<|reserved_special_token_4|>", "<|eot_id|>"', '"<|eot_id|>", "<|reserved_special_token_4|>"'),),
        ),
        Mutant(
            "the header tokens right after <|end_of_text|>, before the reserved 0 ... 3",
            (
                (
                    '        names = ["<|begin_of_text|>", "<|end_of_text|>",\n'
                    '                 *(f"<|reserved_special_token_{i}|>" for i in range(4)),\n'
                    '                 "<|start_header_id|>", "<|end_header_id|>",',
                    '        names = ["<|begin_of_text|>", "<|end_of_text|>",\n'
                    '                 "<|start_header_id|>", "<|end_header_id|>",\n'
                    '                 *(f"<|reserved_special_token_{i}|>" for i in range(4)),',
                ),
            ),
        ),
        Mutant(
            "reserved tokens up to 249 only: 255 special tokens",
            (("for i in range(5, 251))]", "for i in range(5, 250))]"),),
        ),
        Mutant(
            "GPT-2's pre-tokenizer pattern instead of Llama 3's",
            (
                (
                    "pat_str=LLAMA3_PATTERN",
                    "pat_str=r\"\"\"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+\"\"\"",
                ),
            ),
        ),
        Mutant(
            "<|begin_of_text|> and <|end_of_text|> swapped in encode",
            (
                (
                    'ids = [self.special_tokens["<|begin_of_text|>"]] + ids',
                    'ids = [self.special_tokens["<|end_of_text|>"]] + ids',
                ),
                (
                    'ids = ids + [self.special_tokens["<|end_of_text|>"]]',
                    'ids = ids + [self.special_tokens["<|begin_of_text|>"]]',
                ),
            ),
        ),
        Mutant(
            "eos ends a text with <|eot_id|> instead of <|end_of_text|>",
            (
                (
                    'ids = ids + [self.special_tokens["<|end_of_text|>"]]',
                    'ids = ids + [self.special_tokens["<|eot_id|>"]]',
                ),
            ),
        ),
        Mutant(
            "allowed_special ignored: special tokens in the text are always plain text",
            (
                (
                    "self.model.encode(text, allowed_special=allowed_special, disallowed_special=())",
                    "self.model.encode(text, disallowed_special=())",
                ),
            ),
        ),
        Mutant(
            "every special token allowed, whatever allowed_special says",
            (
                (
                    "self.model.encode(text, allowed_special=allowed_special, disallowed_special=())",
                    'self.model.encode(text, allowed_special="all")',
                ),
            ),
        ),
        Mutant(
            "tiktoken's default disallowed_special kept: a special token in plain text raises",
            (
                (
                    "self.model.encode(text, allowed_special=allowed_special, disallowed_special=())",
                    "self.model.encode(text, allowed_special=allowed_special)",
                ),
            ),
        ),
        Mutant(
            'the chat header without the "\\n\\n" after <|end_header_id|>',
            (('special["<|end_header_id|>"], *self.tokenizer.encode("\\n\\n")]', 'special["<|end_header_id|>"]]'),),
        ),
        Mutant(
            "one newline after the header instead of two",
            (('*self.tokenizer.encode("\\n\\n")]', '*self.tokenizer.encode("\\n")]'),),
        ),
        Mutant(
            "the content not stripped",
            (('self.tokenizer.encode(message["content"].strip())', 'self.tokenizer.encode(message["content"])'),),
        ),
        Mutant(
            "a message without its closing <|eot_id|>",
            (
                (
                    '        return [*self.encode_header(message), *self.tokenizer.encode(message["content"].strip()),\n'
                    '                self.tokenizer.special_tokens["<|eot_id|>"]]',
                    '        return [*self.encode_header(message), *self.tokenizer.encode(message["content"].strip())]',
                ),
            ),
        ),
        Mutant(
            "a message closed with <|end_of_text|> instead of <|eot_id|>",
            (
                (
                    '                self.tokenizer.special_tokens["<|eot_id|>"]]',
                    '                self.tokenizer.special_tokens["<|end_of_text|>"]]',
                ),
            ),
        ),
        Mutant(
            "the dialog prompt without <|begin_of_text|>",
            (('tokens = [self.tokenizer.special_tokens["<|begin_of_text|>"]]', "tokens = []"),),
        ),
        Mutant(
            "the dialog prompt without the assistant's header at the end",
            (('return tokens + self.encode_header({"role": "assistant", "content": ""})', "return tokens"),),
        ),
        Mutant(
            "the assistant's turn added as a whole empty message, closed with <|eot_id|>",
            (
                (
                    'return tokens + self.encode_header({"role": "assistant", "content": ""})',
                    'return tokens + self.encode_message({"role": "assistant", "content": ""})',
                ),
            ),
        ),
        Mutant(
            "reserved tokens up to 251: 257 special tokens",
            (("for i in range(5, 251))]", "for i in range(5, 252))]"),),
        ),
    ],
}

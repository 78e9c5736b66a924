"""Chapter 8 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch08.rms_norm
    Mutant(
        "ch08.rms_norm",
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
        "ch08.rms_norm",
        "divided by the standard deviation (mean taken out of the variance) but x itself not centred",
        (
            (
                "mean_square = x_float.pow(2).mean(dim=-1, keepdim=True)",
                "mean_square = x_float.var(dim=-1, keepdim=True, unbiased=False)",
            ),
        ),
    ),
    Mutant(
        "ch08.rms_norm",
        "eps added outside the square root: x / (sqrt(mean(x**2)) + eps)",
        (("x_float * torch.rsqrt(mean_square + self.eps)", "x_float / (torch.sqrt(mean_square) + self.eps)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "eps left out: x / sqrt(mean(x**2))",
        (("torch.rsqrt(mean_square + self.eps)", "torch.rsqrt(mean_square)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the eps argument ignored: always 1e-6",
        (("self.eps = eps\n", "self.eps = 1e-6\n"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the learned weight never applied",
        (("return (normed * self.weight.float()).to(x.dtype)", "return normed.to(x.dtype)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the mean square taken over dim=1 (the token axis of a 3-d input) instead of the last dimension",
        (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.pow(2).mean(dim=1, keepdim=True)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the sum of squares instead of their mean",
        (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.pow(2).sum(dim=-1, keepdim=True)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the square of the mean instead of the mean of the squares",
        (("x_float.pow(2).mean(dim=-1, keepdim=True)", "x_float.mean(dim=-1, keepdim=True).pow(2)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "multiplies by the root mean square instead of dividing by it",
        (("torch.rsqrt(mean_square + self.eps)", "torch.sqrt(mean_square + self.eps)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "no cast back: a bfloat16 input comes out float32",
        (("return (normed * self.weight.float()).to(x.dtype)", "return normed * self.weight.float()"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the weight is a plain tensor, not an nn.Parameter",
        (("self.weight = nn.Parameter(torch.ones(emb_dim))", "self.weight = torch.ones(emb_dim)"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "the weight starts at zeros",
        (("nn.Parameter(torch.ones(emb_dim))", "nn.Parameter(torch.zeros(emb_dim))"),),
    ),
    Mutant(
        "ch08.rms_norm",
        "a LayerNorm-style bias added as a second parameter",
        (
            (
                "self.weight = nn.Parameter(torch.ones(emb_dim))",
                "self.weight = nn.Parameter(torch.ones(emb_dim))\n        self.bias = nn.Parameter(torch.zeros(emb_dim))",
            ),
            ("(normed * self.weight.float())", "(normed * self.weight.float() + self.bias.float())"),
        ),
    ),
    # ch08.swiglu
    Mutant(
        "ch08.swiglu",
        "SiLU is the sigmoid alone",
        (("return x * torch.sigmoid(x)", "return torch.sigmoid(x)"),),
    ),
    Mutant(
        "ch08.swiglu",
        "SiLU is a ReLU",
        (("return x * torch.sigmoid(x)", "return torch.relu(x)"),),
    ),
    Mutant(
        "ch08.swiglu",
        "SiLU is GPT-2's GELU (tanh approximation)",
        (
            (
                "return x * torch.sigmoid(x)",
                "return 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))",
            ),
        ),
    ),
    Mutant(
        "ch08.swiglu",
        "the sigmoid written by hand with the sign of the exponent lost: x / (1 + exp(x))",
        (("return x * torch.sigmoid(x)", "return x / (1 + torch.exp(x))"),),
    ),
    Mutant(
        "ch08.swiglu",
        "SiLU calls PyTorch's own silu instead of being written out",
        (("return x * torch.sigmoid(x)", "return torch.nn.functional.silu(x)"),),
    ),
    Mutant(
        "ch08.swiglu",
        "SiLU applied to the wrong branch: fc1(x) * silu(fc2(x))",
        (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.fc1(x) * self.silu(self.fc2(x)))"),),
    ),
    Mutant(
        "ch08.swiglu",
        "SiLU applied to the product of both branches",
        (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x) * self.fc2(x)))"),),
    ),
    Mutant(
        "ch08.swiglu",
        "no gate: fc3(silu(fc1(x))), fc2 unused",
        (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x)))"),),
    ),
    Mutant(
        "ch08.swiglu",
        "the branches added instead of multiplied",
        (("self.fc3(self.silu(self.fc1(x)) * self.fc2(x))", "self.fc3(self.silu(self.fc1(x)) + self.fc2(x))"),),
    ),
    Mutant(
        "ch08.swiglu",
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
        "ch08.swiglu",
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
        "ch08.swiglu",
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
        "ch08.swiglu",
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
    # ch08.rope
    Mutant(
        "ch08.rope",
        "apply_rope pairs neighbours (2i, 2i + 1), the interleaved layout, with tables in the rotate-half layout",
        (
            (
                "x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2:]\n"
                "    rotated = torch.cat([-x2, x1], dim=-1)",
                "x1, x2 = x[..., 0::2], x[..., 1::2]\n"
                "    rotated = torch.stack([-x2, x1], dim=-1).flatten(-2)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "the halves taken as the even and odd dimensions, then rotated as halves",
        (("x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2:]", "x1, x2 = x[..., 0::2], x[..., 1::2]"),),
    ),
    Mutant(
        "ch08.rope",
        "cos and sin not sliced to the sequence length",
        (("    cos, sin = cos[:num_tokens], sin[:num_tokens]\n", ""),),
    ),
    Mutant(
        "ch08.rope",
        "the last num_tokens rows of the tables instead of the first",
        (("cos, sin = cos[:num_tokens], sin[:num_tokens]", "cos, sin = cos[-num_tokens:], sin[-num_tokens:]"),),
    ),
    Mutant(
        "ch08.rope",
        "rotate_half with the sign on the wrong half: cat(x2, -x1) turns the other way",
        (("rotated = torch.cat([-x2, x1], dim=-1)", "rotated = torch.cat([x2, -x1], dim=-1)"),),
    ),
    Mutant(
        "ch08.rope",
        "cos and sin swapped in the rotation",
        (("return (x * cos + rotated * sin).to(x.dtype)", "return (x * sin + rotated * cos).to(x.dtype)"),),
    ),
    Mutant(
        "ch08.rope",
        "no cast back: a bfloat16 input comes out float32",
        (("return (x * cos + rotated * sin).to(x.dtype)", "return x * cos + rotated * sin"),),
    ),
    Mutant(
        "ch08.rope",
        "inverse frequencies theta ** (-i / head_dim) over i = 0 .. head_dim // 2 - 1 (the 2 dropped)",
        (
            (
                "torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim",
                "torch.arange(0, head_dim // 2, dtype=torch.float32) / head_dim",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "inverse frequencies from arange(head_dim) without the step of 2",
        (("torch.arange(0, head_dim, 2, dtype=torch.float32)", "torch.arange(0, head_dim, dtype=torch.float32)"),),
    ),
    Mutant(
        "ch08.rope",
        "frequencies theta ** (2i / head_dim) instead of their inverse",
        (
            (
                "inv_freq = 1.0 / theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)",
                "inv_freq = theta_base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "theta_base ignored: always 10,000",
        (("1.0 / theta_base ** (", "1.0 / 10_000 ** ("),),
    ),
    Mutant(
        "ch08.rope",
        "the angle table repeated interleaved (repeat_interleave) instead of as two halves",
        (("angles = torch.cat([angles, angles], dim=1)", "angles = angles.repeat_interleave(2, dim=1)"),),
    ),
    Mutant(
        "ch08.rope",
        "positions counted from 1",
        (
            (
                "positions = torch.arange(context_length, dtype=torch.float32)",
                "positions = torch.arange(1, context_length + 1, dtype=torch.float32)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
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
        "ch08.rope",
        "freq_config's scaled frequencies computed but never used",
        (("inv_freq = torch.where(medium, smoothed, scaled)", "inv_freq_llama = torch.where(medium, smoothed, scaled)"),),
    ),
    Mutant(
        "ch08.rope",
        "the high frequencies slowed down instead of the low ones",
        (
            (
                "scaled = torch.where(wavelen > original / low, inv_freq / factor, inv_freq)",
                "scaled = torch.where(wavelen < original / high, inv_freq / factor, inv_freq)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "the smooth band's bounds swapped, so that no wavelength falls in it",
        (
            (
                "medium = (wavelen <= original / low) & (wavelen >= original / high)",
                "medium = (wavelen <= original / high) & (wavelen >= original / low)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "the scaled frequencies multiplied by factor instead of divided",
        (
            ("inv_freq / factor, inv_freq)", "inv_freq * factor, inv_freq)"),
            ("(1 - smooth) * inv_freq / factor", "(1 - smooth) * inv_freq * factor"),
        ),
    ),
    Mutant(
        "ch08.rope",
        "the smooth band blended the wrong way round",
        (
            (
                "smoothed = (1 - smooth) * inv_freq / factor + smooth * inv_freq",
                "smoothed = smooth * inv_freq / factor + (1 - smooth) * inv_freq",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "no smooth band: the middle frequencies keep their value",
        (("inv_freq = torch.where(medium, smoothed, scaled)", "inv_freq = scaled"),),
    ),
    Mutant(
        "ch08.rope",
        "the smoothing factor from wavelength / original context instead of original context / wavelength",
        (
            (
                "smooth = (original / wavelen - low) / (high - low)",
                "smooth = (wavelen / original - low) / (high - low)",
            ),
        ),
    ),
    Mutant(
        "ch08.rope",
        "the angle table built transposed: (head_dim // 2, context_length)",
        (("angles = positions[:, None] * inv_freq[None, :]", "angles = inv_freq[:, None] * positions[None, :]"),),
    ),
    # ch08.grouped_query_attention
    Mutant(
        "ch08.grouped_query_attention",
        "key and value heads not repeated for the query heads",
        (
            (
                "        keys = keys.repeat_interleave(self.group_size, dim=1)\n"
                "        values = values.repeat_interleave(self.group_size, dim=1)\n",
                "",
            ),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "key and value heads expanded to num_heads, which only works with one group",
        (
            (
                "        keys = keys.repeat_interleave(self.group_size, dim=1)\n"
                "        values = values.repeat_interleave(self.group_size, dim=1)\n",
                "        keys = keys.expand(b, self.num_heads, num_tokens, self.head_dim)\n"
                "        values = values.expand(b, self.num_heads, num_tokens, self.head_dim)\n",
            ),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "key and value heads repeated in the wrong order (.repeat tiles them: 0, 1, 0, 1, ...)",
        (
            ("keys = keys.repeat_interleave(self.group_size, dim=1)", "keys = keys.repeat(1, self.group_size, 1, 1)"),
            ("values = values.repeat_interleave(self.group_size, dim=1)", "values = values.repeat(1, self.group_size, 1, 1)"),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "group_size taken as num_kv_groups",
        (("self.group_size = num_heads // num_kv_groups", "self.group_size = num_kv_groups"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
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
        "ch08.grouped_query_attention",
        "RoPE applied to the queries only",
        (("queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)", "queries = apply_rope(queries, cos, sin)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "no RoPE at all",
        (("        queries, keys = apply_rope(queries, cos, sin), apply_rope(keys, cos, sin)\n", ""),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "scores scaled by sqrt(d_out) instead of sqrt(head_dim)",
        (("torch.softmax(scores / self.head_dim**0.5, dim=-1)", "torch.softmax(scores / self.d_out**0.5, dim=-1)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "scores not scaled",
        (("torch.softmax(scores / self.head_dim**0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "the mask ignored",
        (("scores = (queries @ keys.transpose(2, 3)).masked_fill(mask, -torch.inf)", "scores = queries @ keys.transpose(2, 3)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "the mask inverted: hides where it is False",
        (("masked_fill(mask, -torch.inf)", "masked_fill(~mask, -torch.inf)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "masked scores set to 0 instead of -inf",
        (("masked_fill(mask, -torch.inf)", "masked_fill(mask, 0.0)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "softmax over the query axis (dim=-2)",
        (("torch.softmax(scores / self.head_dim**0.5, dim=-1)", "torch.softmax(scores / self.head_dim**0.5, dim=-2)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "W_key and W_value sized d_out, as in multi-head attention",
        (
            ("self.W_key = nn.Linear(d_in, num_kv_groups * self.head_dim,", "self.W_key = nn.Linear(d_in, d_out,"),
            ("self.W_value = nn.Linear(d_in, num_kv_groups * self.head_dim,", "self.W_value = nn.Linear(d_in, d_out,"),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
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
        "ch08.grouped_query_attention",
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
        "ch08.grouped_query_attention",
        "the heads merged without moving them back next to each other (no transpose before reshape)",
        (
            (
                "context = (weights @ values).transpose(1, 2).reshape(b, num_tokens, self.d_out)",
                "context = (weights @ values).reshape(b, num_tokens, self.d_out)",
            ),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "queries split into heads with view(b, num_heads, num_tokens, head_dim), without the transpose",
        (
            (
                "queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)",
                "queries = self.W_query(x).view(b, self.num_heads, num_tokens, self.head_dim)",
            ),
        ),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "the output projection keeps its bias",
        (("self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)", "self.out_proj = nn.Linear(d_out, d_out, dtype=dtype)"),),
    ),
    Mutant(
        "ch08.grouped_query_attention",
        "the output projection left out",
        (("return self.out_proj(context)", "return context"),),
    ),
    # ch08.llama_model
    Mutant(
        "ch08.llama_model",
        "post-norm blocks: norm(x + sublayer(x)) as in the original transformer",
        (
            (
                "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                "x = self.norm1(x + self.att(x, mask, cos, sin))\n        return self.norm2(x + self.ff(x))",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "norm1 and norm2 swapped",
        (
            (
                "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                "x = x + self.att(self.norm2(x), mask, cos, sin)\n        return x + self.ff(self.norm1(x))",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "no residual connection around the attention",
        (("x = x + self.att(self.norm1(x), mask, cos, sin)", "x = self.att(self.norm1(x), mask, cos, sin)"),),
    ),
    Mutant(
        "ch08.llama_model",
        "the residual adds the normalised input instead of x",
        (
            (
                "x = x + self.att(self.norm1(x), mask, cos, sin)",
                "x = self.norm1(x)\n        x = x + self.att(x, mask, cos, sin)",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "one RMSNorm shared by both sublayers",
        (
            ('        self.norm2 = RMSNorm(cfg["emb_dim"])\n', ""),
            ("return x + self.ff(self.norm2(x))", "return x + self.ff(self.norm1(x))"),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "attention and feed-forward in parallel on the same input (GPT-J style)",
        (
            (
                "x = x + self.att(self.norm1(x), mask, cos, sin)\n        return x + self.ff(self.norm2(x))",
                "return x + self.att(self.norm1(x), mask, cos, sin) + self.ff(self.norm2(x))",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "final_norm never applied",
        (("return self.out_head(self.final_norm(x))", "return self.out_head(x)"),),
    ),
    Mutant(
        "ch08.llama_model",
        "RoPE tables of width emb_dim instead of head_dim",
        (('compute_rope_params(cfg["emb_dim"] // cfg["n_heads"],', 'compute_rope_params(cfg["emb_dim"],'),),
    ),
    Mutant(
        "ch08.llama_model",
        "head_dim for RoPE from the key/value groups: emb_dim // n_kv_groups",
        (('compute_rope_params(cfg["emb_dim"] // cfg["n_heads"],', 'compute_rope_params(cfg["emb_dim"] // cfg["n_kv_groups"],'),),
    ),
    Mutant(
        "ch08.llama_model",
        "cfg['rope_freq'] not passed on: no Llama 3.1 scaling",
        (
            (
                'cfg["context_length"],\n                                       cfg["rope_freq"])',
                'cfg["context_length"])',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
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
        "ch08.llama_model",
        "the mask hides the diagonal too (diagonal=0): every token loses itself, the first sees nothing",
        (("dtype=torch.bool, device=in_idx.device), diagonal=1)", "dtype=torch.bool, device=in_idx.device), diagonal=0)"),),
    ),
    Mutant(
        "ch08.llama_model",
        "the mask built with tril: True on and below the diagonal",
        (
            (
                "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device), diagonal=1)",
                "mask = torch.tril(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device))",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "no mask: every token sees the whole sequence",
        (
            (
                "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device), diagonal=1)",
                "mask = torch.zeros(num_tokens, num_tokens, dtype=torch.bool, device=in_idx.device)",
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "cos and sin registered as persistent buffers: they land in the state dict",
        (
            (
                'self.register_buffer("cos", cos, persistent=False)\n        self.register_buffer("sin", sin, persistent=False)',
                'self.register_buffer("cos", cos)\n        self.register_buffer("sin", sin)',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "cfg['dtype'] ignored for the embedding and the output head",
        (
            ('nn.Embedding(cfg["vocab_size"], cfg["emb_dim"], dtype=cfg["dtype"])', 'nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])'),
            ('nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])', 'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)'),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "the output head keeps its bias",
        (
            (
                'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])',
                'nn.Linear(cfg["emb_dim"], cfg["vocab_size"], dtype=cfg["dtype"])',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "GPT-2's learned position embeddings kept next to RoPE",
        (
            (
                '        self.trf_blocks = nn.ModuleList(',
                '        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"], dtype=cfg["dtype"])\n'
                '        self.trf_blocks = nn.ModuleList(',
            ),
            ("x = self.tok_emb(in_idx)", "x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(num_tokens, device=in_idx.device))"),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "embeddings scaled by sqrt(emb_dim) as in Gemma",
        (("x = self.tok_emb(in_idx)", 'x = self.tok_emb(in_idx) * self.cfg["emb_dim"] ** 0.5'),),
    ),
    Mutant(
        "ch08.llama_model",
        "the blocks kept in a plain Python list: their parameters are not registered",
        (
            (
                'self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))',
                'self.trf_blocks = [TransformerBlock(cfg) for _ in range(cfg["n_layers"])]',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "the same block object repeated n_layers times: one set of weights",
        (
            (
                'self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))',
                'self.trf_blocks = nn.ModuleList([TransformerBlock(cfg)] * cfg["n_layers"])',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "the mask sized for the whole context, not the sequence",
        (
            (
                "mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool",
                'mask = torch.triu(torch.ones(self.cfg["context_length"], self.cfg["context_length"], dtype=torch.bool',
            ),
        ),
    ),
    Mutant(
        "ch08.llama_model",
        "each block fed the embeddings instead of the previous block's output",
        (("            x = block(x, mask, self.cos, self.sin)\n        return self.out_head(self.final_norm(x))",
          "            h = block(x, mask, self.cos, self.sin)\n        return self.out_head(self.final_norm(h))"),),
    ),
    # ch08.kv_cache
    Mutant(
        "ch08.kv_cache",
        "new tokens rotated from position 0 whatever the cache holds",
        (("cos, sin = model.cos[start:end], model.sin[start:end]", "cos, sin = model.cos[:num_new], model.sin[:num_new]"),),
    ),
    Mutant(
        "ch08.kv_cache",
        "the mask of a chunk not shifted by the cached tokens (diagonal=1)",
        (("dtype=torch.bool, device=in_idx.device), diagonal=start + 1)", "dtype=torch.bool, device=in_idx.device), diagonal=1)"),),
    ),
    Mutant(
        "ch08.kv_cache",
        "no mask for new tokens: a chunk's tokens see each other's future",
        (
            (
                "mask = torch.triu(torch.ones(num_new, end, dtype=torch.bool, device=in_idx.device), diagonal=start + 1)",
                "mask = torch.zeros(num_new, end, dtype=torch.bool, device=in_idx.device)",
            ),
        ),
    ),
    Mutant(
        "ch08.kv_cache",
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
        "ch08.kv_cache",
        "tokens_seen read from the head axis (shape[1]) of the cached keys",
        (("self.keys[0].shape[2]", "self.keys[0].shape[1]"),),
    ),
    Mutant(
        "ch08.kv_cache",
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
        "ch08.kv_cache",
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
        "ch08.kv_cache",
        "cached key/value heads tiled with .repeat instead of repeat_interleave",
        (
            ("keys = keys.repeat_interleave(group_size, dim=1)", "keys = keys.repeat(1, group_size, 1, 1)"),
            ("values = values.repeat_interleave(group_size, dim=1)", "values = values.repeat(1, group_size, 1, 1)"),
        ),
    ),
    Mutant(
        "ch08.kv_cache",
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
        "ch08.kv_cache",
        "final_norm skipped on the cached path",
        (("    return model.out_head(model.final_norm(x))\n\n\ndef _attention_with_cache", "    return model.out_head(x)\n\n\ndef _attention_with_cache"),),
    ),
    Mutant(
        "ch08.kv_cache",
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
        "ch08.kv_cache",
        "the cache made once, as a default argument",
        (
            ("eos_id: int | None = None) -> torch.Tensor:", "eos_id: int | None = None, cache=KVCache(2)) -> torch.Tensor:"),
            ("    cache = KVCache(len(model.trf_blocks)) if use_cache else None\n", ""),
        ),
    ),
    Mutant(
        "ch08.kv_cache",
        "the whole sequence fed to the cache at every step, not just the new token",
        (("            new_tokens = next_token\n", "            new_tokens = idx\n"),),
    ),
    Mutant(
        "ch08.kv_cache",
        "the next token taken from the first position's logits",
        (("next_token = logits[:, -1].argmax(dim=-1, keepdim=True)", "next_token = logits[:, 0].argmax(dim=-1, keepdim=True)"),),
    ),
    Mutant(
        "ch08.kv_cache",
        "without the cache, the model runs on the whole sequence instead of the last context_size tokens",
        (("logits = model(idx[:, -context_size:])", "logits = model(idx)"),),
    ),
    Mutant(
        "ch08.kv_cache",
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
        "ch08.kv_cache",
        "eos_id ignored",
        (
            (
                "            if eos_id is not None and (next_token == eos_id).all():\n"
                "                break\n",
                "",
            ),
        ),
    ),
    Mutant(
        "ch08.kv_cache",
        "the model left in training mode",
        (("    model.eval()\n    context_size = context_size or", "    context_size = context_size or"),),
    ),
    Mutant(
        "ch08.kv_cache",
        "generation builds gradient graphs (no torch.no_grad())",
        (("    with torch.no_grad():\n        for _ in range(max_new_tokens):", "    if True:\n        for _ in range(max_new_tokens):"),),
    ),
    # ch08.load_llama_weights
    Mutant(
        "ch08.load_llama_weights",
        "gate_proj and up_proj swapped",
        (
            ('prefix + "mlp.gate_proj.weight")', 'prefix + "mlp.up_proj.weight")'),
            ('block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.up_proj.weight")',
             'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.gate_proj.weight")'),
        ),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "k_proj and v_proj swapped",
        (
            ('prefix + "self_attn.k_proj.weight")', 'prefix + "self_attn.v_proj.weight")'),
            ('block.att.W_value.weight = assign(block.att.W_value.weight, prefix + "self_attn.v_proj.weight")',
             'block.att.W_value.weight = assign(block.att.W_value.weight, prefix + "self_attn.k_proj.weight")'),
        ),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "q_proj and o_proj swapped (both square)",
        (
            ('prefix + "self_attn.q_proj.weight")', 'prefix + "self_attn.o_proj.weight")'),
            ('block.att.out_proj.weight = assign(block.att.out_proj.weight, prefix + "self_attn.o_proj.weight")',
             'block.att.out_proj.weight = assign(block.att.out_proj.weight, prefix + "self_attn.q_proj.weight")'),
        ),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "input_layernorm and post_attention_layernorm swapped",
        (
            ('prefix + "input_layernorm.weight")', 'prefix + "post_attention_layernorm.weight")'),
            ('block.norm2.weight = assign(block.norm2.weight, prefix + "post_attention_layernorm.weight")',
             'block.norm2.weight = assign(block.norm2.weight, prefix + "input_layernorm.weight")'),
        ),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "down_proj and up_proj swapped (a shape error for the first)",
        (
            ('prefix + "mlp.down_proj.weight")', 'prefix + "mlp.up_proj.weight")'),
            ('block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.up_proj.weight")',
             'block.ff.fc2.weight = assign(block.ff.fc2.weight, prefix + "mlp.down_proj.weight")'),
        ),
    ),
    Mutant(
        "ch08.load_llama_weights",
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
        "ch08.load_llama_weights",
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
        "ch08.load_llama_weights",
        "tied the wrong way round: the embedding replaced by the untrained output head",
        (("        model.out_head.weight = model.tok_emb.weight\n", "        model.tok_emb.weight = model.out_head.weight\n"),),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "every matrix transposed, as for GPT-2's Conv1D weights",
        (("        tensor = params[name]\n", "        tensor = params[name].T if params[name].dim() == 2 else params[name]\n"),),
    ),
    Mutant(
        "ch08.load_llama_weights",
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
        "ch08.load_llama_weights",
        "the final norm not loaded",
        (('    model.final_norm.weight = assign(model.final_norm.weight, "model.norm.weight")\n', ""),),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "every block gets layer 0's weights",
        (('block, prefix = model.trf_blocks[i], f"model.layers.{i}."', 'block, prefix = model.trf_blocks[i], "model.layers.0."'),),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "a plain tensor assigned where a parameter was",
        (("        return nn.Parameter(tensor.detach().clone().to(parameter.dtype))\n", "        return tensor.detach().clone().to(parameter.dtype)\n"),),
    ),
    Mutant(
        "ch08.load_llama_weights",
        "the embedding not loaded",
        (('    model.tok_emb.weight = assign(model.tok_emb.weight, "model.embed_tokens.weight")\n', ""),),
    ),
    # ch08.llama3_tokenizer
    Mutant(
        "ch08.llama3_tokenizer",
        "special ids fixed from 128000, Llama 3's vocabulary size, instead of after the ranks",
        (("self.special_tokens = {name: len(ranks) + i for", "self.special_tokens = {name: 128_000 + i for"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "special ids start one after the last rank",
        (("self.special_tokens = {name: len(ranks) + i for", "self.special_tokens = {name: len(ranks) + 1 + i for"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "<|eot_id|> before <|reserved_special_token_4|>",
        (('"<|reserved_special_token_4|>", "<|eot_id|>"', '"<|eot_id|>", "<|reserved_special_token_4|>"'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
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
        "ch08.llama3_tokenizer",
        "reserved tokens up to 249 only: 255 special tokens",
        (('for i in range(5, 251))]', 'for i in range(5, 250))]'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "GPT-2's pre-tokenizer pattern instead of Llama 3's",
        (
            (
                "pat_str=LLAMA3_PATTERN",
                "pat_str=r\"\"\"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+\"\"\"",
            ),
        ),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "<|begin_of_text|> and <|end_of_text|> swapped in encode",
        (
            ('ids = [self.special_tokens["<|begin_of_text|>"]] + ids', 'ids = [self.special_tokens["<|end_of_text|>"]] + ids'),
            ('ids = ids + [self.special_tokens["<|end_of_text|>"]]', 'ids = ids + [self.special_tokens["<|begin_of_text|>"]]'),
        ),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "eos ends a text with <|eot_id|> instead of <|end_of_text|>",
        (('ids = ids + [self.special_tokens["<|end_of_text|>"]]', 'ids = ids + [self.special_tokens["<|eot_id|>"]]'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "allowed_special ignored: special tokens in the text are always plain text",
        (("self.model.encode(text, allowed_special=allowed_special, disallowed_special=())", "self.model.encode(text, disallowed_special=())"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "every special token allowed, whatever allowed_special says",
        (("self.model.encode(text, allowed_special=allowed_special, disallowed_special=())", 'self.model.encode(text, allowed_special="all")'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "tiktoken's default disallowed_special kept: a special token in plain text raises",
        (("self.model.encode(text, allowed_special=allowed_special, disallowed_special=())", "self.model.encode(text, allowed_special=allowed_special)"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "the chat header without the \"\\n\\n\" after <|end_header_id|>",
        (('special["<|end_header_id|>"], *self.tokenizer.encode("\\n\\n")]', 'special["<|end_header_id|>"]]'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "one newline after the header instead of two",
        (('*self.tokenizer.encode("\\n\\n")]', '*self.tokenizer.encode("\\n")]'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "the content not stripped",
        (('self.tokenizer.encode(message["content"].strip())', 'self.tokenizer.encode(message["content"])'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
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
        "ch08.llama3_tokenizer",
        "a message closed with <|end_of_text|> instead of <|eot_id|>",
        (('                self.tokenizer.special_tokens["<|eot_id|>"]]', '                self.tokenizer.special_tokens["<|end_of_text|>"]]'),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "the dialog prompt without <|begin_of_text|>",
        (('tokens = [self.tokenizer.special_tokens["<|begin_of_text|>"]]', "tokens = []"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "the dialog prompt without the assistant's header at the end",
        (('return tokens + self.encode_header({"role": "assistant", "content": ""})', "return tokens"),),
    ),
    Mutant(
        "ch08.llama3_tokenizer",
        "the assistant's turn added as a whole empty message, closed with <|eot_id|>",
        (
            (
                'return tokens + self.encode_header({"role": "assistant", "content": ""})',
                'return tokens + self.encode_message({"role": "assistant", "content": ""})',
            ),
        ),
    ),
]

ALTERNATIVES: list[Alternative] = [
    # ch08.rms_norm
    Alternative(
        "ch08.rms_norm",
        "divides by torch.sqrt, computed in the input's own dtype",
        r'''
class RMSNorm(nn.Module):
    """x / sqrt(mean(x**2) + eps) * weight over the last dimension, in x's dtype."""

    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(emb_dim))

    def forward(self, x):
        rms = torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x / rms * self.weight).to(x.dtype)
''',
    ),
    Alternative(
        "ch08.rms_norm",
        "the mean square from torch.linalg.vector_norm; type_as for the cast back",
        r'''
class RMSNorm(nn.Module):
    """Root-mean-square normalization with a learned scale."""

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(emb_dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.to(torch.float32)
        mean_square = torch.linalg.vector_norm(wide, dim=-1, keepdim=True).pow(2) / x.shape[-1]
        return (self.weight * (wide * (mean_square + self.variance_epsilon).rsqrt())).type_as(x)
''',
    ),
    # ch08.swiglu
    Alternative(
        "ch08.swiglu",
        "SiLU as x / (1 + exp(-x)); FeedForward calls PyTorch's silu (only SiLU itself is written from scratch)",
        r'''
import torch.nn.functional as F


class SiLU(nn.Module):
    def forward(self, x):
        return x / (1 + torch.exp(-x))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        emb_dim, hidden_dim, dtype = cfg["emb_dim"], cfg["hidden_dim"], cfg["dtype"]
        self.fc1 = nn.Linear(emb_dim, hidden_dim, bias=False, dtype=dtype)
        self.fc2 = nn.Linear(emb_dim, hidden_dim, bias=False, dtype=dtype)
        self.fc3 = nn.Linear(hidden_dim, emb_dim, bias=False, dtype=dtype)

    def forward(self, x):
        return self.fc3(F.silu(self.fc1(x)) * self.fc2(x))
''',
    ),
    Alternative(
        "ch08.swiglu",
        "SiLU through tanh, x * (1 + tanh(x / 2)) / 2; the output projection declared first",
        r'''
class SiLU(nn.Module):
    """sigmoid(x) = (1 + tanh(x / 2)) / 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(0.5 * x))


class FeedForward(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])
        self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])
        self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])
        self.activation = SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.activation(self.fc1(x))
        up = self.fc2(x)
        return self.fc3(gate * up)
''',
    ),
    # ch08.rope
    Alternative(
        "ch08.rope",
        "complex numbers in the rotate-half pairing; tables from torch.outer and torch.polar; Meta's loop for the scaling",
        r'''
import math


def _llama31_scaled(inv_freq, freq_config):
    """Meta's apply_scaling, one frequency at a time."""
    factor = freq_config["factor"]
    low, high = freq_config["low_freq_factor"], freq_config["high_freq_factor"]
    old_context = freq_config["original_context_length"]
    low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
    scaled = []
    for freq in inv_freq.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            scaled.append(freq)
        elif wavelen > low_freq_wavelen:
            scaled.append(freq / factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            scaled.append((1 - smooth) * freq / factor + smooth * freq)
    return torch.tensor(scaled, dtype=torch.float32)


def compute_rope_params(head_dim, theta_base=10_000, context_length=4096, freq_config=None):
    assert head_dim % 2 == 0, "head_dim must be even"
    inv_freq = 1.0 / (theta_base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    if freq_config is not None:
        inv_freq = _llama31_scaled(inv_freq, freq_config)
    angles = torch.outer(torch.arange(context_length, dtype=torch.float32), inv_freq)
    turns = torch.polar(torch.ones_like(angles), angles)
    cos, sin = turns.real, turns.imag
    return torch.cat([cos, cos], dim=-1), torch.cat([sin, sin], dim=-1)


def apply_rope(x, cos, sin):
    """Pair i is the complex number x[i] + 1j * x[i + head_dim // 2], turned by cos + 1j * sin."""
    num_tokens, half = x.shape[2], x.shape[3] // 2
    pairs = torch.complex(x[..., :half].float(), x[..., half:].float())
    turns = torch.complex(cos[:num_tokens, :half], sin[:num_tokens, :half])
    turned = pairs * turns
    return torch.cat([turned.real, turned.imag], dim=-1).to(x.dtype)
''',
    ),
    Alternative(
        "ch08.rope",
        "a 2x2 rotation matrix per pair through einsum; tables from einsum; the smooth band as a clamped blend",
        r'''
def compute_rope_params(head_dim: int, theta_base: float = 10_000, context_length: int = 4096,
                        freq_config: dict | None = None):
    if head_dim % 2 != 0:
        raise ValueError("head_dim must be even")
    exponents = torch.arange(head_dim // 2, dtype=torch.float32) * 2 / head_dim
    inv_freq = torch.pow(torch.tensor(float(theta_base)), -exponents)
    if freq_config:
        low, high = freq_config["low_freq_factor"], freq_config["high_freq_factor"]
        original = freq_config["original_context_length"]
        # 0 for long wavelengths (slowed by factor), 1 for short ones (kept), a straight blend in between.
        keep = ((original * inv_freq / (2 * torch.pi) - low) / (high - low)).clamp(0.0, 1.0)
        inv_freq = (1 - keep) * inv_freq / freq_config["factor"] + keep * inv_freq
    angles = torch.einsum("p,f->pf", torch.arange(context_length, dtype=torch.float32), inv_freq)
    return angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    num_tokens, half = x.shape[-2], x.shape[-1] // 2
    c, s = cos[:num_tokens, :half], sin[:num_tokens, :half]
    rotation = torch.stack([torch.stack([c, -s], dim=-1), torch.stack([s, c], dim=-1)], dim=-2)
    pairs = torch.stack([x[..., :half], x[..., half:]], dim=-1).float()
    turned = torch.einsum("nfij,bhnfj->bhnfi", rotation, pairs)
    return torch.cat([turned[..., 0], turned[..., 1]], dim=-1).to(x.dtype)
''',
    ),
    # ch08.grouped_query_attention
    Alternative(
        "ch08.grouped_query_attention",
        "einsum scores; key/value heads widened by expand + reshape; masked_fill with float('-inf')",
        r'''
import math


class GroupedQueryAttention(nn.Module):
    def __init__(self, d_in, d_out, num_heads, num_kv_groups, dtype=None):
        super().__init__()
        if d_out % num_heads != 0 or num_heads % num_kv_groups != 0:
            raise ValueError("d_out must be divisible by num_heads, and num_heads by num_kv_groups")
        self.num_heads, self.num_kv_groups = num_heads, num_kv_groups
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
        self.W_key = nn.Linear(d_in, num_kv_groups * self.head_dim, bias=False, dtype=dtype)
        self.W_value = nn.Linear(d_in, num_kv_groups * self.head_dim, bias=False, dtype=dtype)
        self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)

    def _heads(self, t, count):
        b, n, _ = t.shape
        return t.reshape(b, n, count, self.head_dim).permute(0, 2, 1, 3)

    def _widen(self, t):
        b, groups, n, d = t.shape
        group_size = self.num_heads // groups
        return t[:, :, None].expand(b, groups, group_size, n, d).reshape(b, self.num_heads, n, d)

    def forward(self, x, mask, cos, sin):
        b, n, _ = x.shape
        q = apply_rope(self._heads(self.W_query(x), self.num_heads), cos, sin)
        k = apply_rope(self._heads(self.W_key(x), self.num_kv_groups), cos, sin)
        v = self._heads(self.W_value(x), self.num_kv_groups)
        k, v = self._widen(k), self._widen(v)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(self.head_dim)
        weights = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
        context = torch.einsum("bhqk,bhkd->bqhd", weights, v).reshape(b, n, self.num_heads * self.head_dim)
        return self.out_proj(context)
''',
    ),
    Alternative(
        "ch08.grouped_query_attention",
        "queries grouped as (batch, groups, group_size, ...) against unrepeated keys; an additive -inf triangle",
        r'''
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_in: int, d_out: int, num_heads: int, num_kv_groups: int, dtype=None):
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        assert num_heads % num_kv_groups == 0, "num_heads must be divisible by num_kv_groups"
        self.num_heads = num_heads
        self.num_kv_groups = num_kv_groups
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
        self.W_key = nn.Linear(d_in, num_kv_groups * self.head_dim, bias=False, dtype=dtype)
        self.W_value = nn.Linear(d_in, num_kv_groups * self.head_dim, bias=False, dtype=dtype)
        self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)

    def forward(self, x, mask, cos, sin):
        b, n, d_in = x.shape
        groups, group_size = self.num_kv_groups, self.num_heads // self.num_kv_groups
        queries = self.W_query(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        keys = self.W_key(x).view(b, n, groups, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, n, groups, self.head_dim).transpose(1, 2)
        queries = apply_rope(queries, cos, sin).reshape(b, groups, group_size, n, self.head_dim)
        keys = apply_rope(keys, cos, sin).unsqueeze(2)
        bias = torch.zeros(mask.shape, dtype=queries.dtype, device=x.device).masked_fill(mask, -torch.inf)
        scores = queries @ keys.transpose(-1, -2) * self.head_dim**-0.5 + bias
        context = torch.softmax(scores, dim=-1) @ values.unsqueeze(2)
        context = context.reshape(b, self.num_heads, n, self.head_dim).transpose(1, 2).flatten(2)
        return self.out_proj(context)
''',
    ),
    Alternative(
        "ch08.grouped_query_attention",
        "a loop over the query heads, each picking its key/value head h // group_size",
        r'''
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_in, d_out, num_heads, num_kv_groups, dtype=None):
        super().__init__()
        if d_out % num_heads:
            raise ValueError("d_out must be divisible by num_heads")
        if num_heads % num_kv_groups:
            raise ValueError("num_heads must be divisible by num_kv_groups")
        self.num_heads, self.num_kv_groups, self.head_dim = num_heads, num_kv_groups, d_out // num_heads
        kv_dim = num_kv_groups * self.head_dim
        self.W_query = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
        self.W_key = nn.Linear(d_in, kv_dim, bias=False, dtype=dtype)
        self.W_value = nn.Linear(d_in, kv_dim, bias=False, dtype=dtype)
        self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)

    def forward(self, x, mask, cos, sin):
        b, n, _ = x.shape
        q = apply_rope(self.W_query(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2), cos, sin)
        k = apply_rope(self.W_key(x).view(b, n, self.num_kv_groups, self.head_dim).transpose(1, 2), cos, sin)
        v = self.W_value(x).view(b, n, self.num_kv_groups, self.head_dim).transpose(1, 2)
        group_size = self.num_heads // self.num_kv_groups
        outputs = []
        for head in range(self.num_heads):
            kv = head // group_size
            scores = q[:, head] @ k[:, kv].transpose(-1, -2) / self.head_dim**0.5
            weights = torch.softmax(scores.masked_fill(mask, -torch.inf), dim=-1)
            outputs.append(weights @ v[:, kv])
        return self.out_proj(torch.cat(outputs, dim=-1))
''',
    ),
    # ch08.llama_model
    Alternative(
        "ch08.llama_model",
        "named shortcuts in the block; the mask from comparing positions; blocks indexed in a range loop",
        r'''
class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = RMSNorm(cfg["emb_dim"], eps=1e-5)
        self.att = GroupedQueryAttention(d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], num_heads=cfg["n_heads"],
                                         num_kv_groups=cfg["n_kv_groups"], dtype=cfg["dtype"])
        self.norm2 = RMSNorm(cfg["emb_dim"], eps=1e-5)
        self.ff = FeedForward(cfg)

    def forward(self, x, mask, cos, sin):
        shortcut = x
        x = self.att(self.norm1(x), mask, cos, sin)
        x = x + shortcut
        shortcut = x
        x = self.ff(self.norm2(x))
        return x + shortcut


class Llama3Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"], dtype=cfg["dtype"])
        self.trf_blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = RMSNorm(cfg["emb_dim"], eps=1e-5)
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])
        cos, sin = compute_rope_params(head_dim=cfg["emb_dim"] // cfg["n_heads"], theta_base=cfg["rope_base"],
                                       context_length=cfg["context_length"], freq_config=cfg["rope_freq"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, in_idx):
        positions = torch.arange(in_idx.shape[-1], device=in_idx.device)
        mask = positions[None, :] > positions[:, None]
        h = self.tok_emb(in_idx)
        for i in range(len(self.trf_blocks)):
            h = self.trf_blocks[i](h, mask, self.cos, self.sin)
        h = self.final_norm(h)
        return self.out_head(h)
''',
    ),
    Alternative(
        "ch08.llama_model",
        "the two residual halves as methods; the tables sliced to the sequence before the blocks; functools.reduce",
        r'''
from functools import reduce


class TransformerBlock(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        emb_dim = cfg["emb_dim"]
        self.att = GroupedQueryAttention(emb_dim, emb_dim, cfg["n_heads"], cfg["n_kv_groups"], dtype=cfg["dtype"])
        self.ff = FeedForward(cfg)
        self.norm1, self.norm2 = RMSNorm(emb_dim), RMSNorm(emb_dim)

    def _attend(self, x, mask, cos, sin):
        return x + self.att(self.norm1(x), mask, cos, sin)

    def _feed_forward(self, x):
        return x + self.ff(self.norm2(x))

    def forward(self, x, mask, cos, sin):
        return self._feed_forward(self._attend(x, mask, cos, sin))


class Llama3Model(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"], dtype=cfg["dtype"])
        self.trf_blocks = nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            self.trf_blocks.append(TransformerBlock(cfg))
        self.final_norm = RMSNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])
        head_dim = cfg["emb_dim"] // cfg["n_heads"]
        tables = compute_rope_params(head_dim, cfg["rope_base"], cfg["context_length"], cfg["rope_freq"])
        for name, table in zip(("cos", "sin"), tables):
            self.register_buffer(name, table, persistent=False)

    def forward(self, in_idx):
        n = in_idx.shape[1]
        mask = torch.ones(n, n, device=in_idx.device).triu(1).bool()
        cos, sin = self.cos[:n], self.sin[:n]
        x = reduce(lambda h, block: block(h, mask, cos, sin), self.trf_blocks, self.tok_emb(in_idx))
        return self.out_head(self.final_norm(x))
''',
    ),
    # ch08.kv_cache
    Alternative(
        "ch08.kv_cache",
        "preallocated key/value buffers filled up to an index; PyTorch's attention with a keep-mask",
        r'''
import torch.nn.functional as F


class KVCache:
    """Per layer, key and value buffers with room for the model's context, filled up to `filled`."""

    def __init__(self, n_layers):
        self.key_buffers = [None] * n_layers
        self.value_buffers = [None] * n_layers
        self.filled = 0

    @property
    def keys(self):
        return [None if k is None else k[:, :, : self.filled] for k in self.key_buffers]

    @property
    def values(self):
        return [None if v is None else v[:, :, : self.filled] for v in self.value_buffers]

    def tokens_seen(self):
        return self.filled

    def store(self, layer, keys, values, capacity):
        """Writes the new keys and values after the filled part; returns every key and value so far."""
        if self.key_buffers[layer] is None:
            b, groups, _, head_dim = keys.shape
            self.key_buffers[layer] = keys.new_zeros(b, groups, capacity, head_dim)
            self.value_buffers[layer] = values.new_zeros(b, groups, capacity, head_dim)
        end = self.filled + keys.shape[2]
        self.key_buffers[layer][:, :, self.filled:end] = keys
        self.value_buffers[layer][:, :, self.filled:end] = values
        return self.key_buffers[layer][:, :, :end], self.value_buffers[layer][:, :, :end]


def forward_with_cache(model, in_idx, cache):
    b, n = in_idx.shape
    start = cache.tokens_seen()
    end = start + n
    cos, sin = model.cos[start:end], model.sin[start:end]
    # keep[t, s]: new token t (at position start + t) may look at key s.
    keep = torch.arange(end, device=in_idx.device)[None, :] <= torch.arange(start, end, device=in_idx.device)[:, None]
    x = model.tok_emb(in_idx)
    for layer, block in enumerate(model.trf_blocks):
        att, h = block.att, block.norm1(x)
        q = att.W_query(h).view(b, n, att.num_heads, att.head_dim).transpose(1, 2)
        k = att.W_key(h).view(b, n, att.num_kv_groups, att.head_dim).transpose(1, 2)
        v = att.W_value(h).view(b, n, att.num_kv_groups, att.head_dim).transpose(1, 2)
        k, v = cache.store(layer, apply_rope(k, cos, sin), v, model.cos.shape[0])
        context = F.scaled_dot_product_attention(apply_rope(q, cos, sin), k, v, attn_mask=keep, enable_gqa=True)
        x = x + att.out_proj(context.transpose(1, 2).reshape(b, n, att.num_heads * att.head_dim))
        x = x + block.ff(block.norm2(x))
    cache.filled = end
    return model.out_head(model.final_norm(x))


def generate_text_simple_cached(model, idx, max_new_tokens, context_size=None, use_cache=True, eos_id=None):
    model.eval()
    context_size = context_size if context_size is not None else model.cos.shape[0]
    idx = idx[:, -context_size:]
    cache = KVCache(len(model.trf_blocks))
    with torch.no_grad():
        logits = forward_with_cache(model, idx, cache) if use_cache else model(idx)
        for step in range(max_new_tokens):
            next_token = logits[:, -1].argmax(dim=-1, keepdim=True)
            if eos_id is not None and bool((next_token == eos_id).all()):
                break
            idx = torch.cat([idx, next_token], dim=1)
            if step + 1 < max_new_tokens:
                logits = forward_with_cache(model, next_token, cache) if use_cache else model(idx[:, -context_size:])
    return idx
''',
    ),
    Alternative(
        "ch08.kv_cache",
        "the cache as a list of (keys, values) tuples with a position counter; expand for the heads; inference_mode",
        r'''
class KVCache:
    def __init__(self, n_layers: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers
        self.position = 0

    @property
    def keys(self):
        return [None if entry is None else entry[0] for entry in self.layers]

    @property
    def values(self):
        return [None if entry is None else entry[1] for entry in self.layers]

    def tokens_seen(self) -> int:
        return self.position


def _cached_attention(att, x, mask, cos, sin, cache, layer):
    b, n, _ = x.shape

    def split(t, heads):
        return t.view(b, n, heads, att.head_dim).transpose(1, 2)

    q = apply_rope(split(att.W_query(x), att.num_heads), cos, sin)
    k = apply_rope(split(att.W_key(x), att.num_kv_groups), cos, sin)
    v = split(att.W_value(x), att.num_kv_groups)
    if cache.layers[layer] is not None:
        old_k, old_v = cache.layers[layer]
        k, v = torch.cat((old_k, k), dim=2), torch.cat((old_v, v), dim=2)
    cache.layers[layer] = (k, v)
    group, total = att.num_heads // att.num_kv_groups, k.shape[2]
    k = k.unsqueeze(2).expand(b, att.num_kv_groups, group, total, att.head_dim).reshape(b, att.num_heads, total, -1)
    v = v.unsqueeze(2).expand(b, att.num_kv_groups, group, total, att.head_dim).reshape(b, att.num_heads, total, -1)
    scores = (q @ k.transpose(-2, -1)) / att.head_dim**0.5
    weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    return att.out_proj((weights @ v).transpose(1, 2).flatten(2))


def forward_with_cache(model, in_idx, cache):
    first = cache.tokens_seen()
    n = in_idx.shape[1]
    positions = torch.arange(first, first + n, device=in_idx.device)
    mask = torch.arange(first + n, device=in_idx.device)[None, :] > positions[:, None]
    cos, sin = model.cos[positions], model.sin[positions]
    x = model.tok_emb(in_idx)
    for layer, block in enumerate(model.trf_blocks):
        x = x + _cached_attention(block.att, block.norm1(x), mask, cos, sin, cache, layer)
        x = x + block.ff(block.norm2(x))
    cache.position += n
    return model.out_head(model.final_norm(x))


def generate_text_simple_cached(model, idx, max_new_tokens, context_size=None, use_cache=True, eos_id=None):
    model.eval()
    window = context_size or model.cfg["context_length"]
    tokens = idx[:, -window:]
    target = tokens.shape[1] + max_new_tokens
    cache = KVCache(len(model.trf_blocks)) if use_cache else None
    pending = tokens
    with torch.inference_mode():
        while tokens.shape[1] < target:
            logits = forward_with_cache(model, pending, cache) if use_cache else model(tokens[:, -window:])
            next_token = logits[:, -1:].argmax(dim=-1)
            if eos_id is not None and torch.all(next_token == eos_id):
                break
            tokens = torch.cat((tokens, next_token), dim=1)
            pending = next_token
    return tokens
''',
    ),
    # ch08.load_llama_weights
    Alternative(
        "ch08.load_llama_weights",
        "a map from Hugging Face names to the model's, shapes checked, then load_state_dict; tied by hand",
        r'''
_PER_LAYER = {
    "self_attn.q_proj": "att.W_query", "self_attn.k_proj": "att.W_key", "self_attn.v_proj": "att.W_value",
    "self_attn.o_proj": "att.out_proj", "mlp.gate_proj": "ff.fc1", "mlp.up_proj": "ff.fc2", "mlp.down_proj": "ff.fc3",
    "input_layernorm": "norm1", "post_attention_layernorm": "norm2",
}


def load_weights_into_llama(model, param_config, params):
    names = {"model.embed_tokens.weight": "tok_emb.weight", "model.norm.weight": "final_norm.weight"}
    if "lm_head.weight" in params:
        names["lm_head.weight"] = "out_head.weight"
    for i in range(param_config["n_layers"]):
        for theirs, ours in _PER_LAYER.items():
            names[f"model.layers.{i}.{theirs}.weight"] = f"trf_blocks.{i}.{ours}.weight"
    own = dict(model.named_parameters())
    state = {}
    for theirs, ours in names.items():
        if params[theirs].shape != own[ours].shape:
            raise ValueError(f"{theirs} has shape {tuple(params[theirs].shape)}, {ours} {tuple(own[ours].shape)}")
        state[ours] = params[theirs]
    model.load_state_dict(state, strict=False)
    if "lm_head.weight" not in params:
        model.out_head.weight = model.tok_emb.weight
''',
    ),
    Alternative(
        "ch08.load_llama_weights",
        "copy_ into the existing parameters under torch.no_grad(), found with get_parameter",
        r'''
@torch.no_grad()
def load_weights_into_llama(model, param_config, params):
    def put(ours, theirs):
        target, source = model.get_parameter(ours), params[theirs]
        if target.shape != source.shape:
            raise ValueError(f"shape mismatch for {theirs}: {tuple(source.shape)} vs {tuple(target.shape)}")
        target.copy_(source)

    put("tok_emb.weight", "model.embed_tokens.weight")
    for i in range(param_config["n_layers"]):
        ours, theirs = f"trf_blocks.{i}", f"model.layers.{i}"
        for a, b in (("att.W_query", "self_attn.q_proj"), ("att.W_key", "self_attn.k_proj"),
                     ("att.W_value", "self_attn.v_proj"), ("att.out_proj", "self_attn.o_proj"),
                     ("ff.fc1", "mlp.gate_proj"), ("ff.fc2", "mlp.up_proj"), ("ff.fc3", "mlp.down_proj"),
                     ("norm1", "input_layernorm"), ("norm2", "post_attention_layernorm")):
            put(f"{ours}.{a}.weight", f"{theirs}.{b}.weight")
    put("final_norm.weight", "model.norm.weight")
    if "lm_head.weight" in params:
        put("out_head.weight", "lm_head.weight")
    else:
        model.out_head.weight = model.tok_emb.weight
''',
    ),
    # ch08.llama3_tokenizer
    Alternative(
        "ch08.llama3_tokenizer",
        "special ids in an explicit dict; encode_ordinary when nothing is allowed; one helper builds every chat list",
        r'''
class Tokenizer:
    def __init__(self, model_path):
        mergeable = load_tiktoken_bpe(str(model_path))
        n = len(mergeable)
        special = {"<|begin_of_text|>": n, "<|end_of_text|>": n + 1}
        for i in range(4):
            special[f"<|reserved_special_token_{i}|>"] = n + 2 + i
        special["<|start_header_id|>"] = n + 6
        special["<|end_header_id|>"] = n + 7
        special["<|reserved_special_token_4|>"] = n + 8
        special["<|eot_id|>"] = n + 9
        for i in range(5, 251):
            special[f"<|reserved_special_token_{i}|>"] = n + 5 + i
        self.special_tokens = special
        self.model = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=mergeable,
                                       special_tokens=special)

    def encode(self, text, bos=False, eos=False, allowed_special=frozenset()):
        if allowed_special:
            ids = self.model.encode(text, allowed_special=allowed_special, disallowed_special=())
        else:
            ids = self.model.encode_ordinary(text)
        return [self.special_tokens["<|begin_of_text|>"]] * bos + ids + [self.special_tokens["<|end_of_text|>"]] * eos

    def decode(self, ids):
        return self.model.decode(list(ids))


class ChatFormat:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def _build(self, messages, header_only=False):
        special, encode = self.tokenizer.special_tokens, self.tokenizer.encode
        tokens = []
        for message in messages:
            tokens += [special["<|start_header_id|>"], *encode(message["role"]), special["<|end_header_id|>"]]
            tokens += encode("\n\n")
            if not header_only:
                tokens += [*encode(message["content"].strip()), special["<|eot_id|>"]]
        return tokens

    def encode_header(self, message):
        return self._build([message], header_only=True)

    def encode_message(self, message):
        return self._build([message])

    def encode_dialog_prompt(self, dialog):
        opening = [self.tokenizer.special_tokens["<|begin_of_text|>"]]
        return opening + self._build(dialog) + self._build([{"role": "assistant"}], header_only=True)
''',
    ),
    Alternative(
        "ch08.llama3_tokenizer",
        "the names in order, numbered with enumerate from len(ranks); the header encoded as one string with its specials allowed",
        r'''
SPECIAL_NAMES = (["<|begin_of_text|>", "<|end_of_text|>"]
                 + [f"<|reserved_special_token_{i}|>" for i in range(4)]
                 + ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
                 + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)])


class Tokenizer:
    def __init__(self, model_path):
        ranks = load_tiktoken_bpe(str(model_path))
        self.special_tokens = {name: id_ for id_, name in enumerate(SPECIAL_NAMES, start=len(ranks))}
        self.model = tiktoken.Encoding(name="llama-3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks,
                                       special_tokens=self.special_tokens)

    def encode(self, text, bos=False, eos=False, allowed_special=frozenset()):
        ids = []
        if bos:
            ids.append(self.special_tokens["<|begin_of_text|>"])
        ids.extend(self.model.encode(text, allowed_special=allowed_special, disallowed_special=()))
        if eos:
            ids.append(self.special_tokens["<|end_of_text|>"])
        return ids

    def decode(self, ids):
        return self.model.decode([int(i) for i in ids])


class ChatFormat:
    HEADER_TOKENS = {"<|start_header_id|>", "<|end_header_id|>"}

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def encode_header(self, message):
        text = f"<|start_header_id|>{message['role']}<|end_header_id|>\n\n"
        return self.tokenizer.encode(text, allowed_special=self.HEADER_TOKENS)

    def encode_message(self, message):
        body = self.tokenizer.encode(message["content"].strip())
        return self.encode_header(message) + body + [self.tokenizer.special_tokens["<|eot_id|>"]]

    def encode_dialog_prompt(self, dialog):
        tokens = self.tokenizer.encode("", bos=True)
        for message in dialog:
            tokens += self.encode_message(message)
        tokens += self.encode_header({"role": "assistant", "content": ""})
        return tokens
''',
    ),
]

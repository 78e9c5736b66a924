"""Chapter 3's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_V1_PARAMS = (
    "self.W_query = nn.Parameter(torch.rand(d_in, d_out))",
    "self.W_key = nn.Parameter(torch.rand(d_in, d_out))",
    "self.W_value = nn.Parameter(torch.rand(d_in, d_out))",
)
_LINEARS = (
    "self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)",
    "self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)",
    "self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)",
)
_MASK_FILL = "scores = scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)\n"
_CAUSAL_SOFTMAX = "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)\n"
_MHA_SPLITS = tuple(
    f"self.{name}(x).view(batch, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)"
    for name in ("W_query", "W_key", "W_value")
)
_MHA_MERGE = "context = (weights @ values).transpose(1, 2).contiguous().view(batch, num_tokens, self.d_out)"

MUTANTS: dict[str, list[Mutant]] = {
    "ch03.attention_weights": [
        Mutant(
            "softmax over dim=0: the columns sum to 1 instead of the rows",
            (("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=0)"),),
        ),
        Mutant(
            "scores normalised by their row sum instead of a softmax",
            (("return torch.softmax(scores, dim=-1)", "return scores / scores.sum(dim=-1, keepdim=True)"),),
        ),
        Mutant(
            "naive softmax exp(s) / sum(exp(s)) without subtracting the row maximum: overflows to nan on large inputs",
            (
                (
                    "return torch.softmax(scores, dim=-1)",
                    "return torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)",
                ),
            ),
        ),
        Mutant(
            "raw dot products returned without any normalisation",
            (("return torch.softmax(scores, dim=-1)", "return scores"),),
        ),
        Mutant(
            "scores scaled by sqrt(d) (a later section's scaled attention) in the simplified version",
            (("torch.softmax(scores, dim=-1)", "torch.softmax(scores / inputs.shape[-1] ** 0.5, dim=-1)"),),
        ),
        Mutant(
            "scores inputs.T @ inputs: a (d, d) matrix of feature products instead of token products",
            (("scores = inputs @ inputs.T", "scores = inputs.T @ inputs"),),
        ),
        Mutant(
            "context_vectors multiplies the weights by inputs.T",
            (("return attention_weights(inputs) @ inputs\n", "return attention_weights(inputs) @ inputs.T\n"),),
        ),
        Mutant(
            "context_vectors uses the transposed weights (column j of the weights for token j)",
            (("return attention_weights(inputs) @ inputs\n", "return attention_weights(inputs).T @ inputs\n"),),
        ),
    ],
    "ch03.self_attention_v1": [
        Mutant(
            "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
            (("scores / keys.shape[-1] ** 0.5", "scores / x.shape[-1] ** 0.5"),),
        ),
        Mutant(
            "scores not scaled at all",
            (("torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
        ),
        Mutant(
            "scores scaled by d_out instead of sqrt(d_out)",
            (("scores / keys.shape[-1] ** 0.5", "scores / keys.shape[-1]"),),
        ),
        Mutant(
            "scaling applied after the softmax, so the weights no longer sum to 1",
            (
                (
                    "torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
                    "torch.softmax(scores, dim=-1) / keys.shape[-1] ** 0.5",
                ),
            ),
        ),
        Mutant(
            "softmax over dim=0 (over the queries) instead of the last dimension",
            (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=0)"),),
        ),
        Mutant(
            "queries and keys swapped: scores = keys @ queries.T (the transposed score matrix)",
            (("scores = queries @ keys.T", "scores = keys @ queries.T"),),
        ),
        Mutant(
            "values projected with W_key: W_value is never used",
            (("values = x @ self.W_value", "values = x @ self.W_key"),),
        ),
        Mutant(
            "weight matrices are plain tensors, not nn.Parameter: not in parameters() or the state dict",
            tuple(
                (line, line.replace("nn.Parameter(torch.rand(d_in, d_out))", "torch.rand(d_in, d_out)"))
                for line in _V1_PARAMS
            ),
        ),
        Mutant(
            "weight matrices created with requires_grad=False: no gradient reaches them",
            tuple(
                (line, line.replace("torch.rand(d_in, d_out))", "torch.rand(d_in, d_out), requires_grad=False)"))
                for line in _V1_PARAMS
            ),
        ),
        Mutant(
            "attention weights detached (as for plotting them), so no gradient reaches W_query and W_key",
            (("return weights @ values", "return weights.detach() @ values"),),
        ),
    ],
    "ch03.self_attention_v2": [
        Mutant(
            "qkv_bias ignored: nn.Linear(d_in, d_out) always has a bias",
            tuple((line, line.replace(", bias=qkv_bias)", ")")) for line in _LINEARS),
        ),
        Mutant(
            "qkv_bias ignored: bias=False hard-coded",
            tuple((line, line.replace("bias=qkv_bias", "bias=False")) for line in _LINEARS),
        ),
        Mutant(
            "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
            (("scores / keys.shape[-1] ** 0.5", "scores / x.shape[-1] ** 0.5"),),
        ),
        Mutant(
            "scores scaled by d_out instead of sqrt(d_out)",
            (("scores / keys.shape[-1] ** 0.5", "scores / keys.shape[-1]"),),
        ),
        Mutant(
            "softmax over dim=0 (over the queries) instead of the last dimension",
            (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=0)"),),
        ),
        Mutant(
            "queries and keys swapped: scores = keys @ queries.T",
            (("scores = queries @ keys.T", "scores = keys @ queries.T"),),
        ),
        Mutant(
            "values projected with W_key: W_value is never used",
            (("values = self.W_value(x)", "values = self.W_key(x)"),),
        ),
        Mutant(
            "keys detached in forward, so no gradient reaches W_key",
            (("keys = self.W_key(x)", "keys = self.W_key(x).detach()"),),
        ),
    ],
    "ch03.causal_attention": [
        Mutant(
            "mask not applied: the result of masked_fill (not in place) is thrown away",
            ((_MASK_FILL, _MASK_FILL.replace("scores = scores.masked_fill", "scores.masked_fill")),),
        ),
        Mutant(
            "mask applied after the softmax: future weights zeroed but the rows not renormalised",
            (
                (
                    _MASK_FILL + "        " + _CAUSAL_SOFTMAX,
                    _CAUSAL_SOFTMAX
                    + "        weights = weights.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], 0.0)\n",
                ),
            ),
        ),
        Mutant(
            "mask applied after the softmax and the dropout, then renormalised: in train() the renormalisation "
            "undoes dropout's 1/(1-p) scaling, and a row whose kept weights were all dropped becomes 0/0 = nan",
            (
                (
                    _MASK_FILL + "        " + _CAUSAL_SOFTMAX + "        weights = self.dropout(weights)\n",
                    _CAUSAL_SOFTMAX
                    + "        weights = self.dropout(weights)\n"
                    + "        weights = weights.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], 0.0)\n"
                    + "        weights = weights / weights.sum(dim=-1, keepdim=True)\n",
                ),
            ),
        ),
        Mutant(
            "mask with diagonal=0: each token is masked from itself too (the first row becomes all -inf, nan)",
            (("diagonal=1))", "diagonal=0))"),),
        ),
        Mutant(
            "mask with diagonal=2: each token also sees the next token",
            (("diagonal=1))", "diagonal=2))"),),
        ),
        Mutant(
            "mask not sliced to num_tokens: fails on inputs shorter than context_length",
            (("self.mask.bool()[:num_tokens, :num_tokens]", "self.mask.bool()"),),
        ),
        Mutant(
            "masked positions filled with 0 instead of -inf, so the future still gets weight",
            (("[:num_tokens, :num_tokens], -torch.inf)", "[:num_tokens, :num_tokens], 0.0)"),),
        ),
        Mutant(
            "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
            (("scores / keys.shape[-1] ** 0.5", "scores / d_in ** 0.5"),),
        ),
        Mutant(
            "scores not scaled at all",
            (("torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
        ),
        Mutant(
            "softmax over dim=1 (over the queries of a batched input) instead of the last dimension",
            (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=1)"),),
        ),
        Mutant(
            "queries and keys swapped: scores = keys @ queries^T, so the mask hides the past instead of the future",
            (("scores = queries @ keys.transpose(1, 2)", "scores = keys @ queries.transpose(1, 2)"),),
        ),
        Mutant(
            "dropout applied in eval too: F.dropout(..., training=True) instead of the module",
            (
                (
                    "weights = self.dropout(weights)",
                    "weights = torch.nn.functional.dropout(weights, self.dropout.p, training=True)",
                ),
            ),
        ),
        Mutant(
            "dropout applied to the scores before the mask and softmax instead of to the weights",
            (
                ("scores = queries @ keys.transpose(1, 2)", "scores = self.dropout(queries @ keys.transpose(1, 2))"),
                ("        weights = self.dropout(weights)\n", ""),
            ),
        ),
        Mutant(
            "dropout applied to the context vectors instead of the attention weights",
            (
                (
                    "weights = self.dropout(weights)\n        return weights @ values",
                    "return self.dropout(weights @ values)",
                ),
            ),
        ),
        Mutant(
            "qkv_bias ignored: nn.Linear(d_in, d_out) always has a bias",
            tuple((line, line.replace(", bias=qkv_bias)", ")")) for line in _LINEARS),
        ),
    ],
    "ch03.multihead_wrapper": [
        Mutant(
            "head outputs concatenated along dim=1 (the tokens) instead of the last dimension",
            (("for head in self.heads], dim=-1)", "for head in self.heads], dim=1)"),),
        ),
        Mutant(
            "head outputs concatenated along dim=0 (the batch)",
            (("for head in self.heads], dim=-1)", "for head in self.heads], dim=0)"),),
        ),
        Mutant(
            "one CausalAttention repeated num_heads times ([head] * num_heads): all heads share their weights",
            (
                (
                    "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]",
                    "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)] * num_heads",
                ),
            ),
        ),
        Mutant(
            "forward runs heads[0] num_heads times: the other heads are never used",
            (("[head(x) for head in self.heads]", "[self.heads[0](x) for head in self.heads]"),),
        ),
        Mutant(
            "heads kept in a plain Python list: their parameters are not registered and train()/eval() do not reach them",
            (("self.heads = nn.ModuleList(", "self.heads = list("),),
        ),
        Mutant(
            "each head given d_out // num_heads outputs (as in MultiHeadAttention): "
            "output width d_out, not d_out * num_heads",
            (
                (
                    "CausalAttention(d_in, d_out, context_length",
                    "CausalAttention(d_in, d_out // num_heads, context_length",
                ),
            ),
        ),
        Mutant(
            "head outputs summed instead of concatenated",
            (
                (
                    "torch.cat([head(x) for head in self.heads], dim=-1)",
                    "torch.stack([head(x) for head in self.heads]).sum(dim=0)",
                ),
            ),
        ),
        Mutant(
            "heads concatenated last one first",
            (("for head in self.heads]", "for head in reversed(self.heads)]"),),
        ),
        Mutant(
            "qkv_bias not passed on to the heads",
            (("context_length, dropout, qkv_bias)", "context_length, dropout)"),),
        ),
    ],
    "ch03.multihead_attention": [
        Mutant(
            "divisibility check removed: d_out % num_heads != 0 constructs and fails obscurely in forward",
            (
                (
                    "        if d_out % num_heads != 0:\n"
                    '            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")\n',
                    "",
                ),
            ),
        ),
        Mutant(
            "projections viewed as (batch, num_heads, num_tokens, head_dim) directly, without the transpose",
            tuple(
                (
                    split,
                    split.replace(
                        "view(batch, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)",
                        "view(batch, self.num_heads, num_tokens, self.head_dim)",
                    ),
                )
                for split in _MHA_SPLITS
            ),
        ),
        Mutant(
            "heads merged without transposing back: (batch, num_heads, num_tokens, head_dim) "
            "viewed as (batch, num_tokens, d_out)",
            ((_MHA_MERGE, _MHA_MERGE.replace(".transpose(1, 2).contiguous()", ".contiguous()")),),
        ),
        Mutant(
            "heads merged with .view after the transpose without .contiguous() (fails at run time)",
            ((_MHA_MERGE, _MHA_MERGE.replace(".transpose(1, 2).contiguous().view(", ".transpose(1, 2).view(")),),
        ),
        Mutant(
            "out_proj created but never applied",
            (("return self.out_proj(context)", "return context"),),
        ),
        Mutant(
            "out_proj built with bias=qkv_bias (no bias by default) instead of always having one",
            (("self.out_proj = nn.Linear(d_out, d_out)", "self.out_proj = nn.Linear(d_out, d_out, bias=qkv_bias)"),),
        ),
        Mutant(
            "scores scaled by sqrt(d_out) instead of sqrt(head_dim)",
            (("scores / self.head_dim ** 0.5", "scores / self.d_out ** 0.5"),),
        ),
        Mutant(
            "scores scaled by sqrt(d_in) instead of sqrt(head_dim)",
            (("scores / self.head_dim ** 0.5", "scores / d_in ** 0.5"),),
        ),
        Mutant(
            "scores scaled by head_dim instead of sqrt(head_dim)",
            (("scores / self.head_dim ** 0.5", "scores / self.head_dim"),),
        ),
        Mutant(
            "softmax over dim=1 (the heads) instead of the last dimension",
            (("self.head_dim ** 0.5, dim=-1)", "self.head_dim ** 0.5, dim=1)"),),
        ),
        Mutant(
            "keys transposed with transpose(1, 2) (copied from CausalAttention) instead of transpose(2, 3)",
            (("scores = queries @ keys.transpose(2, 3)", "scores = queries @ keys.transpose(1, 2)"),),
        ),
        Mutant(
            "queries and keys swapped: scores = keys @ queries^T",
            (("scores = queries @ keys.transpose(2, 3)", "scores = keys @ queries.transpose(2, 3)"),),
        ),
        Mutant(
            "mask not applied: the result of masked_fill (not in place) is thrown away",
            ((_MASK_FILL, _MASK_FILL.replace("scores = scores.masked_fill", "scores.masked_fill")),),
        ),
        Mutant(
            "mask not sliced to num_tokens: fails on inputs shorter than context_length",
            (("self.mask.bool()[:num_tokens, :num_tokens]", "self.mask.bool()"),),
        ),
        Mutant(
            "mask with diagonal=2: each token also sees the next token",
            (("diagonal=1))", "diagonal=2))"),),
        ),
        Mutant(
            "dropout applied in eval too: F.dropout(..., training=True) instead of the module",
            (
                (
                    "weights = self.dropout(weights)",
                    "weights = torch.nn.functional.dropout(weights, self.dropout.p, training=True)",
                ),
            ),
        ),
        Mutant(
            "dropout applied to the output of out_proj instead of the attention weights",
            (
                ("        weights = self.dropout(weights)\n", ""),
                ("return self.out_proj(context)", "return self.dropout(self.out_proj(context))"),
            ),
        ),
        Mutant(
            "merged context detached, so only out_proj gets gradients",
            ((_MHA_MERGE, _MHA_MERGE + ".detach()"),),
        ),
    ],
}

"""Chapter 3 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

# Lines of the reference cells that several mutants rewrite.
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

MUTANTS: list[Mutant] = [
    # ch03.attention_weights
    Mutant(
        "ch03.attention_weights",
        "softmax over dim=0: the columns sum to 1 instead of the rows",
        (("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=0)"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "scores normalised by their row sum instead of a softmax",
        (("return torch.softmax(scores, dim=-1)", "return scores / scores.sum(dim=-1, keepdim=True)"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "naive softmax exp(s) / sum(exp(s)) without subtracting the row maximum: overflows to nan on large inputs",
        (
            (
                "return torch.softmax(scores, dim=-1)",
                "return torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)",
            ),
        ),
    ),
    Mutant(
        "ch03.attention_weights",
        "raw dot products returned without any normalisation",
        (("return torch.softmax(scores, dim=-1)", "return scores"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "scores scaled by sqrt(d) (a later section's scaled attention) in the simplified version",
        (("torch.softmax(scores, dim=-1)", "torch.softmax(scores / inputs.shape[-1] ** 0.5, dim=-1)"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "scores inputs.T @ inputs: a (d, d) matrix of feature products instead of token products",
        (("scores = inputs @ inputs.T", "scores = inputs.T @ inputs"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "context_vectors multiplies the weights by inputs.T",
        (("return attention_weights(inputs) @ inputs\n", "return attention_weights(inputs) @ inputs.T\n"),),
    ),
    Mutant(
        "ch03.attention_weights",
        "context_vectors uses the transposed weights (column j of the weights for token j)",
        (("return attention_weights(inputs) @ inputs\n", "return attention_weights(inputs).T @ inputs\n"),),
    ),
    # ch03.self_attention_v1
    Mutant(
        "ch03.self_attention_v1",
        "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
        (("scores / keys.shape[-1] ** 0.5", "scores / x.shape[-1] ** 0.5"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "scores not scaled at all",
        (("torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "scores scaled by d_out instead of sqrt(d_out)",
        (("scores / keys.shape[-1] ** 0.5", "scores / keys.shape[-1]"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "scaling applied after the softmax, so the weights no longer sum to 1",
        (
            (
                "torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
                "torch.softmax(scores, dim=-1) / keys.shape[-1] ** 0.5",
            ),
        ),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "softmax over dim=0 (over the queries) instead of the last dimension",
        (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=0)"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "queries and keys swapped: scores = keys @ queries.T (the transposed score matrix)",
        (("scores = queries @ keys.T", "scores = keys @ queries.T"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "values projected with W_key: W_value is never used",
        (("values = x @ self.W_value", "values = x @ self.W_key"),),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "weight matrices are plain tensors, not nn.Parameter: not in parameters() or the state dict",
        tuple(
            (line, line.replace("nn.Parameter(torch.rand(d_in, d_out))", "torch.rand(d_in, d_out)"))
            for line in _V1_PARAMS
        ),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "weight matrices created with requires_grad=False: no gradient reaches them",
        tuple(
            (line, line.replace("torch.rand(d_in, d_out))", "torch.rand(d_in, d_out), requires_grad=False)"))
            for line in _V1_PARAMS
        ),
    ),
    Mutant(
        "ch03.self_attention_v1",
        "attention weights detached (as for plotting them), so no gradient reaches W_query and W_key",
        (("return weights @ values", "return weights.detach() @ values"),),
    ),
    # ch03.self_attention_v2
    Mutant(
        "ch03.self_attention_v2",
        "qkv_bias ignored: nn.Linear(d_in, d_out) always has a bias",
        tuple((line, line.replace(", bias=qkv_bias)", ")")) for line in _LINEARS),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "qkv_bias ignored: bias=False hard-coded",
        tuple((line, line.replace("bias=qkv_bias", "bias=False")) for line in _LINEARS),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
        (("scores / keys.shape[-1] ** 0.5", "scores / x.shape[-1] ** 0.5"),),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "scores scaled by d_out instead of sqrt(d_out)",
        (("scores / keys.shape[-1] ** 0.5", "scores / keys.shape[-1]"),),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "softmax over dim=0 (over the queries) instead of the last dimension",
        (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=0)"),),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "queries and keys swapped: scores = keys @ queries.T",
        (("scores = queries @ keys.T", "scores = keys @ queries.T"),),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "values projected with W_key: W_value is never used",
        (("values = self.W_value(x)", "values = self.W_key(x)"),),
    ),
    Mutant(
        "ch03.self_attention_v2",
        "keys detached in forward, so no gradient reaches W_key",
        (("keys = self.W_key(x)", "keys = self.W_key(x).detach()"),),
    ),
    # ch03.causal_attention
    Mutant(
        "ch03.causal_attention",
        "mask not applied: the result of masked_fill (not in place) is thrown away",
        ((_MASK_FILL, _MASK_FILL.replace("scores = scores.masked_fill", "scores.masked_fill")),),
    ),
    Mutant(
        "ch03.causal_attention",
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
        "ch03.causal_attention",
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
        "ch03.causal_attention",
        "mask with diagonal=0: each token is masked from itself too (the first row becomes all -inf, nan)",
        (("diagonal=1))", "diagonal=0))"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "mask with diagonal=2: each token also sees the next token",
        (("diagonal=1))", "diagonal=2))"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "mask not sliced to num_tokens: fails on inputs shorter than context_length",
        (("self.mask.bool()[:num_tokens, :num_tokens]", "self.mask.bool()"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "masked positions filled with 0 instead of -inf, so the future still gets weight",
        (("[:num_tokens, :num_tokens], -torch.inf)", "[:num_tokens, :num_tokens], 0.0)"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "scores scaled by sqrt(d_in) instead of sqrt(d_out)",
        (("scores / keys.shape[-1] ** 0.5", "scores / d_in ** 0.5"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "scores not scaled at all",
        (("torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)", "torch.softmax(scores, dim=-1)"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "softmax over dim=1 (over the queries of a batched input) instead of the last dimension",
        (("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=1)"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "queries and keys swapped: scores = keys @ queries^T, so the mask hides the past instead of the future",
        (("scores = queries @ keys.transpose(1, 2)", "scores = keys @ queries.transpose(1, 2)"),),
    ),
    Mutant(
        "ch03.causal_attention",
        "dropout applied in eval too: F.dropout(..., training=True) instead of the module",
        (
            (
                "weights = self.dropout(weights)",
                "weights = torch.nn.functional.dropout(weights, self.dropout.p, training=True)",
            ),
        ),
    ),
    Mutant(
        "ch03.causal_attention",
        "dropout applied to the scores before the mask and softmax instead of to the weights",
        (
            ("scores = queries @ keys.transpose(1, 2)", "scores = self.dropout(queries @ keys.transpose(1, 2))"),
            ("        weights = self.dropout(weights)\n", ""),
        ),
    ),
    Mutant(
        "ch03.causal_attention",
        "dropout applied to the context vectors instead of the attention weights",
        (
            (
                "weights = self.dropout(weights)\n        return weights @ values",
                "return self.dropout(weights @ values)",
            ),
        ),
    ),
    Mutant(
        "ch03.causal_attention",
        "qkv_bias ignored: nn.Linear(d_in, d_out) always has a bias",
        tuple((line, line.replace(", bias=qkv_bias)", ")")) for line in _LINEARS),
    ),
    # ch03.multihead_wrapper
    Mutant(
        "ch03.multihead_wrapper",
        "head outputs concatenated along dim=1 (the tokens) instead of the last dimension",
        (("for head in self.heads], dim=-1)", "for head in self.heads], dim=1)"),),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "head outputs concatenated along dim=0 (the batch)",
        (("for head in self.heads], dim=-1)", "for head in self.heads], dim=0)"),),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "one CausalAttention repeated num_heads times ([head] * num_heads): all heads share their weights",
        (
            (
                "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]",
                "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)] * num_heads",
            ),
        ),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "forward runs heads[0] num_heads times: the other heads are never used",
        (("[head(x) for head in self.heads]", "[self.heads[0](x) for head in self.heads]"),),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "heads kept in a plain Python list: their parameters are not registered and train()/eval() do not reach them",
        (("self.heads = nn.ModuleList(", "self.heads = list("),),
    ),
    Mutant(
        "ch03.multihead_wrapper",
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
        "ch03.multihead_wrapper",
        "head outputs summed instead of concatenated",
        (
            (
                "torch.cat([head(x) for head in self.heads], dim=-1)",
                "torch.stack([head(x) for head in self.heads]).sum(dim=0)",
            ),
        ),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "heads concatenated last one first",
        (("for head in self.heads]", "for head in reversed(self.heads)]"),),
    ),
    Mutant(
        "ch03.multihead_wrapper",
        "qkv_bias not passed on to the heads",
        (("context_length, dropout, qkv_bias)", "context_length, dropout)"),),
    ),
    # ch03.multihead_attention
    Mutant(
        "ch03.multihead_attention",
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
        "ch03.multihead_attention",
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
        "ch03.multihead_attention",
        "heads merged without transposing back: (batch, num_heads, num_tokens, head_dim) "
        "viewed as (batch, num_tokens, d_out)",
        ((_MHA_MERGE, _MHA_MERGE.replace(".transpose(1, 2).contiguous()", ".contiguous()")),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "heads merged with .view after the transpose without .contiguous() (fails at run time)",
        ((_MHA_MERGE, _MHA_MERGE.replace(".transpose(1, 2).contiguous().view(", ".transpose(1, 2).view(")),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "out_proj created but never applied",
        (("return self.out_proj(context)", "return context"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "out_proj built with bias=qkv_bias (no bias by default) instead of always having one",
        (("self.out_proj = nn.Linear(d_out, d_out)", "self.out_proj = nn.Linear(d_out, d_out, bias=qkv_bias)"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "scores scaled by sqrt(d_out) instead of sqrt(head_dim)",
        (("scores / self.head_dim ** 0.5", "scores / self.d_out ** 0.5"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "scores scaled by sqrt(d_in) instead of sqrt(head_dim)",
        (("scores / self.head_dim ** 0.5", "scores / d_in ** 0.5"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "scores scaled by head_dim instead of sqrt(head_dim)",
        (("scores / self.head_dim ** 0.5", "scores / self.head_dim"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "softmax over dim=1 (the heads) instead of the last dimension",
        (("self.head_dim ** 0.5, dim=-1)", "self.head_dim ** 0.5, dim=1)"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "keys transposed with transpose(1, 2) (copied from CausalAttention) instead of transpose(2, 3)",
        (("scores = queries @ keys.transpose(2, 3)", "scores = queries @ keys.transpose(1, 2)"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "queries and keys swapped: scores = keys @ queries^T",
        (("scores = queries @ keys.transpose(2, 3)", "scores = keys @ queries.transpose(2, 3)"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "mask not applied: the result of masked_fill (not in place) is thrown away",
        ((_MASK_FILL, _MASK_FILL.replace("scores = scores.masked_fill", "scores.masked_fill")),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "mask not sliced to num_tokens: fails on inputs shorter than context_length",
        (("self.mask.bool()[:num_tokens, :num_tokens]", "self.mask.bool()"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "mask with diagonal=2: each token also sees the next token",
        (("diagonal=1))", "diagonal=2))"),),
    ),
    Mutant(
        "ch03.multihead_attention",
        "dropout applied in eval too: F.dropout(..., training=True) instead of the module",
        (
            (
                "weights = self.dropout(weights)",
                "weights = torch.nn.functional.dropout(weights, self.dropout.p, training=True)",
            ),
        ),
    ),
    Mutant(
        "ch03.multihead_attention",
        "dropout applied to the output of out_proj instead of the attention weights",
        (
            ("        weights = self.dropout(weights)\n", ""),
            ("return self.out_proj(context)", "return self.dropout(self.out_proj(context))"),
        ),
    ),
    Mutant(
        "ch03.multihead_attention",
        "merged context detached, so only out_proj gets gradients",
        ((_MHA_MERGE, _MHA_MERGE + ".detach()"),),
    ),
]

ALTERNATIVES: list[Alternative] = [
    # ch03.attention_weights
    Alternative(
        "ch03.attention_weights",
        "einsum for both products, a numerically stable softmax written by hand",
        r'''
import torch


def attention_weights(inputs):
    """Row-wise softmax of the token dot products, written out as exp(s - max) / sum."""
    scores = torch.einsum("id,jd->ij", inputs, inputs)
    shifted = scores - scores.max(dim=1, keepdim=True).values
    exps = torch.exp(shifted)
    return exps / exps.sum(dim=1, keepdim=True)


def context_vectors(inputs):
    """Weighted sums of the input vectors."""
    return torch.einsum("ij,jd->id", attention_weights(inputs), inputs)
''',
    ),
    Alternative(
        "ch03.attention_weights",
        "explicit Python loops over the tokens with torch.dot and F.softmax",
        r'''
import torch
import torch.nn.functional as F


def attention_weights(inputs):
    """One query token at a time: dot products with every token, then a softmax."""
    n = inputs.shape[0]
    rows = []
    for i in range(n):
        scores = torch.stack([torch.dot(inputs[i], inputs[j]) for j in range(n)])
        rows.append(F.softmax(scores, dim=0))
    return torch.stack(rows)


def context_vectors(inputs):
    """Row i = sum over j of weights[i, j] * inputs[j], summed term by term."""
    weights = attention_weights(inputs)
    out = []
    for i in range(inputs.shape[0]):
        total = torch.zeros_like(inputs[0])
        for j in range(inputs.shape[0]):
            total = total + weights[i, j] * inputs[j]
        out.append(total)
    return torch.stack(out)
''',
    ),
    # ch03.self_attention_v1
    Alternative(
        "ch03.self_attention_v1",
        "einsum throughout; the queries scaled by 1/sqrt(d_out) before the dot product",
        r'''
import math

import torch
import torch.nn as nn


class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))
        self.scale = 1.0 / math.sqrt(d_out)

    def forward(self, x):
        queries = torch.einsum("ti,io->to", x, self.W_query) * self.scale
        keys = torch.einsum("ti,io->to", x, self.W_key)
        values = torch.einsum("ti,io->to", x, self.W_value)
        weights = torch.einsum("to,so->ts", queries, keys).softmax(dim=-1)
        return torch.einsum("ts,so->to", weights, values)
''',
    ),
    Alternative(
        "ch03.self_attention_v1",
        "torch.matmul and F.softmax, one query token at a time",
        r'''
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        keys = torch.matmul(x, self.W_key)
        values = torch.matmul(x, self.W_value)
        rows = []
        for token in x:
            query = torch.matmul(token, self.W_query)
            weights = F.softmax(torch.matmul(keys, query) / math.sqrt(self.d_out), dim=0)
            rows.append(torch.matmul(weights, values))
        return torch.stack(rows)
''',
    ),
    # ch03.self_attention_v2
    Alternative(
        "ch03.self_attention_v2",
        "projections as x @ weight.T (+ bias), scores with torch.mm, softmax via logsumexp",
        r'''
import math

import torch
import torch.nn as nn


class SelfAttention_v2(nn.Module):
    def __init__(self, d_in, d_out, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)

    @staticmethod
    def _project(layer, x):
        out = x @ layer.weight.T
        return out if layer.bias is None else out + layer.bias

    def forward(self, x):
        q = self._project(self.W_query, x)
        k = self._project(self.W_key, x)
        v = self._project(self.W_value, x)
        scores = torch.mm(q, k.T) / math.sqrt(k.shape[1])
        weights = torch.exp(scores - torch.logsumexp(scores, dim=1, keepdim=True))
        return torch.mm(weights, v)
''',
    ),
    Alternative(
        "ch03.self_attention_v2",
        "F.linear on the layers' weights, einsum, and a hand-written stable softmax",
        r'''
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention_v2(nn.Module):
    def __init__(self, d_in, d_out, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)

    def forward(self, x):
        q = F.linear(x, self.W_query.weight, self.W_query.bias)
        k = F.linear(x, self.W_key.weight, self.W_key.bias)
        v = F.linear(x, self.W_value.weight, self.W_value.bias)
        scores = torch.einsum("qd,kd->qk", q, k) / math.sqrt(k.shape[-1])
        exps = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        weights = exps / exps.sum(dim=-1, keepdim=True)
        return torch.einsum("qk,kd->qd", weights, v)
''',
    ),
    # ch03.causal_attention
    Alternative(
        "ch03.causal_attention",
        "einsum; future scores replaced with torch.finfo(dtype).min via torch.where",
        r'''
import math

import torch
import torch.nn as nn


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.ones(context_length, context_length).triu(diagonal=1))

    def forward(self, x):
        n = x.shape[1]
        q, k, v = self.W_query(x), self.W_key(x), self.W_value(x)
        scores = torch.einsum("bqd,bkd->bqk", q, k) / math.sqrt(self.d_out)
        future = self.mask[:n, :n] != 0
        scores = torch.where(future, torch.finfo(scores.dtype).min, scores)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return torch.einsum("bqk,bkd->bqd", weights, v)
''',
    ),
    Alternative(
        "ch03.causal_attention",
        "no buffer: an additive -inf upper triangle built in forward on x's device; queries pre-scaled; "
        "softmax by hand",
        r'''
import torch
import torch.nn as nn


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.context_length = context_length
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        n = x.shape[1]
        queries = self.W_query(x) * self.W_query.out_features ** -0.5
        keys = self.W_key(x)
        values = self.W_value(x)
        causal = torch.full((n, n), float("-inf"), dtype=x.dtype, device=x.device).triu(1)
        scores = torch.matmul(queries, keys.mT) + causal
        exps = (scores - scores.amax(dim=-1, keepdim=True)).exp()
        weights = exps / exps.sum(dim=-1, keepdim=True)
        return torch.matmul(self.dropout(weights), values)
''',
    ),
    Alternative(
        "ch03.causal_attention",
        "non-persistent bool mask built with torch.tril; a Python loop over the batch with torch.mm",
        r'''
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        allowed = torch.tril(torch.ones(context_length, context_length, dtype=torch.bool))
        self.register_buffer("mask", ~allowed, persistent=False)

    def forward(self, x):
        n = x.shape[1]
        out = []
        for seq in x:
            q, k, v = self.W_query(seq), self.W_key(seq), self.W_value(seq)
            scores = torch.mm(q, k.t()) / math.sqrt(k.shape[1])
            scores = scores.masked_fill(self.mask[:n, :n], float("-inf"))
            weights = self.dropout(F.softmax(scores, dim=1))
            out.append(torch.mm(weights, v))
        return torch.stack(out)
''',
    ),
    Alternative(
        "ch03.causal_attention",
        "the book's equivalent of section 3.5.1: softmax over all tokens, zero the future, renormalise "
        "the rows, then dropout",
        r'''
import torch
import torch.nn as nn


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        n = x.shape[1]
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        weights = torch.softmax(queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
        weights = weights * (1 - self.mask[:n, :n])
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return self.dropout(weights) @ values
''',
    ),
    # ch03.multihead_wrapper
    Alternative(
        "ch03.multihead_wrapper",
        "heads appended one by one; forward fills slices of a preallocated output",
        r'''
import torch
import torch.nn as nn


class MultiHeadAttentionWrapper(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.heads = nn.ModuleList()
        for _ in range(num_heads):
            self.heads.append(CausalAttention(d_in, d_out, context_length, dropout, qkv_bias=qkv_bias))

    def forward(self, x):
        batch, num_tokens, _ = x.shape
        out = x.new_zeros(batch, num_tokens, self.d_out * len(self.heads))
        for i, head in enumerate(self.heads):
            out[:, :, i * self.d_out:(i + 1) * self.d_out] = head(x)
        return out
''',
    ),
    Alternative(
        "ch03.multihead_wrapper",
        "heads stacked on a new axis before the features, then flattened",
        r'''
import torch
import torch.nn as nn


class MultiHeadAttentionWrapper(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.heads = nn.ModuleList(
            CausalAttention(
                d_in=d_in, d_out=d_out, context_length=context_length, dropout=dropout, qkv_bias=qkv_bias
            )
            for _ in range(num_heads)
        )

    def forward(self, x):
        stacked = torch.stack([head(x) for head in self.heads], dim=-2)  # (batch, tokens, heads, d_out)
        return stacked.flatten(start_dim=-2)
''',
    ),
    # ch03.multihead_attention
    Alternative(
        "ch03.multihead_attention",
        "reshape + permute to split and merge the heads; non-persistent bool mask from torch.tril; "
        "the divisibility check as an assert",
        r'''
import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0, f"d_out={d_out} is not divisible by num_heads={num_heads}"
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        causal = ~torch.tril(torch.ones(context_length, context_length, dtype=torch.bool))
        self.register_buffer("mask", causal, persistent=False)

    def _split(self, t):
        b, n, _ = t.shape
        return t.reshape(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x):
        b, n, _ = x.shape
        q = self._split(self.W_query(x))
        k = self._split(self.W_key(x))
        v = self._split(self.W_value(x))
        scores = torch.matmul(q, k.permute(0, 1, 3, 2)) / self.head_dim ** 0.5
        scores = scores.masked_fill(self.mask[:n, :n], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(weights, v).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.out_proj(context)
''',
    ),
    Alternative(
        "ch03.multihead_attention",
        "explicit loop over the heads on column slices of the projections; the mask built in forward",
        r'''
import math

import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads:
            raise ValueError("d_out must be a multiple of num_heads")
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        n = x.shape[1]
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        heads = []
        for h in range(self.num_heads):
            cols = slice(h * self.head_dim, (h + 1) * self.head_dim)
            q, k, v = queries[..., cols], keys[..., cols], values[..., cols]
            scores = (q @ k.transpose(-2, -1)).masked_fill(future, -math.inf) / math.sqrt(self.head_dim)
            heads.append(self.dropout(scores.softmax(dim=-1)) @ v)
        return self.out_proj(torch.cat(heads, dim=-1))
''',
    ),
    Alternative(
        "ch03.multihead_attention",
        "einsum over unflattened (batch, tokens, heads, head_dim) projections; queries pre-scaled; "
        "masked_fill with torch.finfo(dtype).min",
        r'''
import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} does not divide d_out={d_out}")
        self.num_heads = num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        n = x.shape[1]
        q = self.W_query(x).unflatten(-1, (self.num_heads, -1))
        k = self.W_key(x).unflatten(-1, (self.num_heads, -1))
        v = self.W_value(x).unflatten(-1, (self.num_heads, -1))
        q = q / q.shape[-1] ** 0.5
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k)
        scores = scores.masked_fill(self.mask[:n, :n].bool(), torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))
        context = torch.einsum("bhqk,bkhd->bqhd", weights, v).flatten(start_dim=2)
        return self.out_proj(context)
''',
    ),
]

"""Chapter 14's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_RENORM = "weights = weights / weights.sum(dim=-1, keepdim=True)\n"
_TOPK = "weights, indices = torch.topk(probs, top_k, dim=-1)"
_ADD = "out.index_add_(0, token_ids, (expert_out * flat_weights[chosen, None]).to(out.dtype))"
_FRACTION = "fraction = counts / num_tokens"
_BALANCE = "return num_experts * (fraction * probs.mean(dim=0)).sum()"
_Z = "return (torch.logsumexp(router_logits.float(), dim=-1) ** 2).mean()"
_CAPACITY = "return math.ceil(capacity_factor * num_tokens * top_k / num_experts)"
_POSITION = "position = one_hot.flatten(0, 1).cumsum(dim=0).view_as(one_hot)"

MUTANTS: dict[str, list[Mutant]] = {
    "ch14.router": [
        Mutant(
            "the top-k probabilities are not renormalised (Switch's raw probabilities)",
            ((_RENORM, "\n"),),
        ),
        Mutant(
            "softmax over the tokens (dim=0) instead of over the experts",
            (("torch.softmax(router_logits.float(), dim=-1)", "torch.softmax(router_logits.float(), dim=0)"),),
        ),
        Mutant(
            "keeps the top-k logits as weights, renormalised by their sum, without a softmax",
            (("probs = torch.softmax(router_logits.float(), dim=-1)", "probs = router_logits.float()"),),
        ),
        Mutant(
            "picks the experts with argsort, which gives them in ascending order",
            (
                (
                    _TOPK,
                    "indices = probs.argsort(dim=-1)[..., -top_k:]\n    weights = probs.gather(-1, indices)",
                ),
            ),
        ),
        Mutant(
            "picks the top-k smallest probabilities (largest=False)",
            ((_TOPK, "weights, indices = torch.topk(probs, top_k, dim=-1, largest=False)"),),
        ),
        Mutant(
            "softmax in the logits' dtype (bfloat16 weights for bfloat16 logits)",
            (("torch.softmax(router_logits.float(), dim=-1)", "torch.softmax(router_logits, dim=-1)"),),
        ),
    ],
    "ch14.moe_layer": [
        Mutant(
            "the expert outputs are summed without their routing weights",
            ((_ADD, "out.index_add_(0, token_ids, expert_out.to(out.dtype))"),),
        ),
        Mutant(
            "the routing weights are detached: no gradient reaches the gate",
            (("flat_weights = weights.flatten()", "flat_weights = weights.flatten().detach()"),),
        ),
        Mutant(
            "expert rows are written with index_copy_, so a token's second expert overwrites its first",
            ((_ADD, "out.index_copy_(0, token_ids, (expert_out * flat_weights[chosen, None]).to(out.dtype))"),),
        ),
        Mutant(
            "the gate has a bias",
            (
                (
                    'nn.Linear(cfg["emb_dim"], self.num_experts, bias=False',
                    'nn.Linear(cfg["emb_dim"], self.num_experts, bias=True',
                ),
            ),
        ),
        Mutant(
            "the token index of each choice is repeated with repeat instead of repeat_interleave",
            (
                (
                    "torch.arange(tokens.shape[0], device=x.device).repeat_interleave(self.top_k)",
                    "torch.arange(tokens.shape[0], device=x.device).repeat(self.top_k)",
                ),
            ),
        ),
        Mutant(
            "every token uses the weight of its first choice for all of its experts",
            (("flat_weights = weights.flatten()", "flat_weights = weights[:, :1].expand_as(weights).flatten()"),),
        ),
        Mutant(
            "a Python loop over tokens: each expert runs once per token",
            (
                (
                    "            token_ids = flat_tokens[chosen]\n"
                    "            expert_out = expert(tokens.index_select(0, token_ids))\n"
                    f"            {_ADD}\n",
                    "            for c in chosen.tolist():\n"
                    "                t = int(flat_tokens[c])\n"
                    "                out[t] = out[t] + flat_weights[c] * expert(tokens[t : t + 1])[0]\n",
                ),
            ),
        ),
    ],
    "ch14.balancing_losses": [
        Mutant(
            "the balancing loss is not multiplied by the number of experts",
            ((_BALANCE, "return (fraction * probs.mean(dim=0)).sum()"),),
        ),
        Mutant(
            "the fractions are divided by top_k as well (they sum to 1, the loss is 1 under even routing)",
            ((_FRACTION, "fraction = counts / (num_tokens * top_k)"),),
        ),
        Mutant(
            "only each token's first choice is counted",
            (
                (
                    "chosen = torch.topk(probs, top_k, dim=-1).indices",
                    "chosen = torch.topk(probs, top_k, dim=-1).indices[:, :1]",
                ),
            ),
        ),
        Mutant(
            "the mean router probability is replaced by the mean logit",
            ((_BALANCE, "return num_experts * (fraction * logits.mean(dim=0)).sum()"),),
        ),
        Mutant(
            "soft fractions: the mean probabilities are used for f as well (P squared)",
            ((_BALANCE, "return num_experts * (probs.mean(dim=0) ** 2).sum()"),),
        ),
        Mutant(
            "the z-loss is not squared",
            ((_Z, "return torch.logsumexp(router_logits.float(), dim=-1).mean()"),),
        ),
        Mutant(
            "the z-loss uses the largest logit instead of logsumexp",
            ((_Z, "return (router_logits.float().amax(dim=-1) ** 2).mean()"),),
        ),
        Mutant(
            "the z-loss sums over tokens instead of averaging",
            ((_Z, "return (torch.logsumexp(router_logits.float(), dim=-1) ** 2).sum()"),),
        ),
    ],
    "ch14.capacity": [
        Mutant(
            "the capacity is rounded down (int) instead of up",
            ((_CAPACITY, "return int(capacity_factor * num_tokens * top_k / num_experts)"),),
        ),
        Mutant(
            "the capacity leaves out top_k",
            ((_CAPACITY, "return math.ceil(capacity_factor * num_tokens / num_experts)"),),
        ),
        Mutant(
            "off by one: a choice is kept only while its slot is below the capacity",
            (("return slot <= capacity", "return slot < capacity"),),
        ),
        Mutant(
            "last come, first served: the latest tokens keep their slots",
            ((_POSITION, "position = one_hot.flatten(0, 1).flip(0).cumsum(dim=0).flip(0).view_as(one_hot)"),),
        ),
        Mutant(
            "all first choices are served before any second choice (priority by choice, then position)",
            (
                (
                    _POSITION,
                    "position = one_hot.transpose(0, 1).flatten(0, 1).cumsum(dim=0)"
                    ".view(one_hot.shape[1], one_hot.shape[0], -1).transpose(0, 1)",
                ),
            ),
        ),
        Mutant(
            "one count over all experts: the first `capacity` choices are kept, whatever their expert",
            (
                (
                    "slot = (position * one_hot).sum(dim=-1)",
                    "slot = torch.arange(1, indices.numel() + 1).view_as(indices)",
                ),
            ),
        ),
    ],
    "ch14.parameter_counts": [
        Mutant(
            "the active count leaves out the embedding and the output head",
            (
                (
                    "active = shared + config",
                    "active = shared - embeddings - head + config",
                ),
            ),
        ),
        Mutant(
            "the gate (router) is not counted",
            (
                (
                    "per_layer_shared = attention + 2 * hidden + hidden * experts",
                    "per_layer_shared = attention + 2 * hidden",
                ),
            ),
        ),
        Mutant(
            "the output head is counted even when it is tied to the embedding",
            (
                (
                    'head = 0 if config.get("tie_word_embeddings", False) else config["vocab_size"] * hidden',
                    'head = config["vocab_size"] * hidden',
                ),
            ),
        ),
        Mutant(
            "k and v are counted with num_attention_heads instead of num_key_value_heads",
            (
                (
                    "attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim",
                    "attention = 4 * hidden * heads * head_dim",
                ),
            ),
        ),
        Mutant(
            "an expert is counted as two matrices, as in GPT-2's feed-forward",
            (("expert = 3 * hidden * inter", "expert = 2 * hidden * inter"),),
        ),
        Mutant(
            "the norms are not counted",
            (
                (
                    "per_layer_shared = attention + 2 * hidden + hidden * experts",
                    "per_layer_shared = attention + hidden * experts",
                ),
                ("embeddings + hidden + head", "embeddings + head"),
            ),
        ),
        Mutant(
            "head_dim ignored: the attention is counted as hidden_size wide",
            (('head_dim = config.get("head_dim") or hidden // heads', "head_dim = hidden // heads"),),
        ),
    ],
}

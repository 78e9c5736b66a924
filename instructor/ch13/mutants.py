"""Chapter 13's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch13.online_softmax": [
        Mutant(
            "the normaliser is not rescaled when the running max grows",
            (("normaliser = rescale * normaliser + p.sum(dim=-1)", "normaliser = normaliser + p.sum(dim=-1)"),),
        ),
        Mutant(
            "the running weighted sum is not rescaled when the running max grows",
            (
                (
                    "weighted = rescale[..., None] * weighted + (p[..., None, :] @ block_values).squeeze(-2)",
                    "weighted = weighted + (p[..., None, :] @ block_values).squeeze(-2)",
                ),
            ),
        ),
        Mutant(
            "no guard for rows whose blocks so far are all -inf: -inf - (-inf) gives nan",
            (("shift = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)", "shift = new_max"),),
        ),
        Mutant(
            "the log-sum-exp leaves out the running max (log of the normaliser only)",
            (
                (
                    "return weighted / normaliser[..., None], running_max + torch.log(normaliser)",
                    "return weighted / normaliser[..., None], torch.log(normaliser)",
                ),
            ),
        ),
        Mutant(
            "two passes: the max of the whole row is taken first, then the blocks are summed",
            (("new_max = torch.maximum(running_max, block.amax(dim=-1))", "new_max = scores.amax(dim=-1)"),),
        ),
        Mutant(
            "the block size is fixed at 16 whatever block_size says",
            (("rows = scores.shape[:-1]\n", "rows = scores.shape[:-1]\n    block_size = 16\n"),),
        ),
        Mutant(
            "the running max is never updated, so every block is rescaled to nothing",
            (("        running_max = new_max\n", ""),),
        ),
        Mutant(
            "the rescale factor has its sign flipped: exp(m_new - m_old)",
            (("rescale = torch.exp(running_max - shift)", "rescale = torch.exp(shift - running_max)"),),
        ),
        Mutant(
            "the block's exponentials subtract the old running max instead of the new one (overflow at +1000)",
            (
                (
                    "p = torch.exp(block - shift[..., None])",
                    "p = torch.exp(block - torch.where(torch.isinf(running_max), torch.zeros_like(running_max), running_max)[..., None])",
                ),
            ),
        ),
        Mutant(
            "off-by-one block slices: each block takes block_size - 1 columns (the last column of every block is skipped)",
            (
                (
                    "block = scores[..., start : start + block_size]",
                    "block = scores[..., start : start + block_size - 1]",
                ),
                (
                    "block_values = values[..., start : start + block_size, :]",
                    "block_values = values[..., start : start + block_size - 1, :]",
                ),
            ),
        ),
        Mutant(
            "the exponential is taken of the whole row at once and then sliced to the block",
            (
                (
                    "p = torch.exp(block - shift[..., None])",
                    "p = torch.exp(scores - shift[..., None])[..., start : start + block_size]",
                ),
            ),
        ),
    ],
    "ch13.flash_forward": [
        Mutant(
            "causal only skips the future key blocks: no -inf mask inside the diagonal tiles",
            (
                (
                    "                S = S.masked_fill(cols > rows, -torch.inf)\n            # The first key block",
                    "                pass\n            # The first key block",
                ),
            ),
        ),
        Mutant(
            "the scores are not scaled by 1/sqrt(d)",
            (
                (
                    "S = Q_i @ K[..., k_start:k_end, :].transpose(-2, -1) * scale  # (..., Bq, Bk)",
                    "S = Q_i @ K[..., k_start:k_end, :].transpose(-2, -1)  # (..., Bq, Bk)",
                ),
            ),
        ),
        Mutant(
            "the causal mask also hides the diagonal (key == query)",
            (("S = S.masked_fill(cols > rows, -torch.inf)", "S = S.masked_fill(cols >= rows, -torch.inf)"),),
        ),
        Mutant(
            "L is the log of the normaliser only, without the running max",
            (("L[..., q_start:q_end] = m + torch.log(l)", "L[..., q_start:q_end] = torch.log(l)"),),
        ),
        Mutant(
            "the query and key block sizes are swapped",
            (
                (
                    "for q_start in range(0, n_queries, q_block_size):\n        q_end = min(q_start + q_block_size, n_queries)",
                    "for q_start in range(0, n_queries, k_block_size):\n        q_end = min(q_start + k_block_size, n_queries)",
                ),
                (
                    "for k_start in range(0, k_stop, k_block_size):\n            k_end = min(k_start + k_block_size, n_keys)",
                    "for k_start in range(0, k_stop, q_block_size):\n            k_end = min(k_start + q_block_size, n_keys)",
                ),
            ),
        ),
        Mutant(
            "the running output is not rescaled when the running max grows",
            (
                (
                    "acc = rescale[..., None] * acc + P @ V[..., k_start:k_end, :]",
                    "acc = acc + P @ V[..., k_start:k_end, :]",
                ),
            ),
        ),
        Mutant(
            "the causal mask is built once for the whole (n, n) matrix and sliced per tile",
            (
                (
                    "rows = torch.arange(q_start, q_end, device=Q.device)[:, None]\n                cols = torch.arange(k_start, k_end, device=Q.device)[None, :]\n                S = S.masked_fill(cols > rows, -torch.inf)",
                    "future = torch.ones(n_queries, n_keys, dtype=torch.bool, device=Q.device).triu(1)\n                S = S.masked_fill(future[q_start:q_end, k_start:k_end], -torch.inf)",
                ),
            ),
        ),
        Mutant(
            "each query block takes all keys at once instead of streaming over key blocks",
            (
                (
                    "for k_start in range(0, k_stop, k_block_size):\n            k_end = min(k_start + k_block_size, n_keys)",
                    "for k_start in range(0, 1):\n            k_end = n_keys",
                ),
            ),
        ),
        Mutant(
            "the causal loop stops before the diagonal key block",
            (
                (
                    "k_stop = min(n_keys, q_end) if is_causal else n_keys",
                    "k_stop = min(n_keys, q_start) if is_causal else n_keys",
                ),
            ),
        ),
        Mutant(
            "the output is not divided by the normaliser",
            (("O[..., q_start:q_end, :] = acc / l[..., None]", "O[..., q_start:q_end, :] = acc"),),
        ),
        Mutant(
            "scores scaled by 1/d instead of 1/sqrt(d)",
            (
                (
                    "    scale = 1.0 / math.sqrt(Q.shape[-1])\n    O = torch.empty_like(Q)",
                    "    scale = 1.0 / Q.shape[-1]\n    O = torch.empty_like(Q)",
                ),
            ),
        ),
        Mutant(
            "causal mask off by one: the diagonal is masked too (cols >= rows), query 0 sees nothing",
            (
                (
                    "                S = S.masked_fill(cols > rows, -torch.inf)\n            # The first key block",
                    "                S = S.masked_fill(cols >= rows, -torch.inf)\n            # The first key block",
                ),
            ),
        ),
        Mutant(
            "the causal mask of a tile uses positions inside the tile (0..Bq-1, 0..Bk-1), not absolute positions",
            (
                (
                    "                rows = torch.arange(q_start, q_end, device=Q.device)[:, None]\n                cols = torch.arange(k_start, k_end, device=Q.device)[None, :]\n                S = S.masked_fill(cols > rows, -torch.inf)\n            # The first key block",
                    "                rows = torch.arange(0, q_end - q_start, device=Q.device)[:, None]\n                cols = torch.arange(0, k_end - k_start, device=Q.device)[None, :]\n                S = S.masked_fill(cols > rows, -torch.inf)\n            # The first key block",
                ),
            ),
        ),
        Mutant(
            "L stores the running max only, without + log(l)",
            (("L[..., q_start:q_end] = m + torch.log(l)", "L[..., q_start:q_end] = m"),),
        ),
        Mutant(
            "the query blocks use k_block_size (the two block sizes mixed up)",
            (
                (
                    "for q_start in range(0, n_queries, q_block_size):",
                    "for q_start in range(0, n_queries, k_block_size):",
                ),
                ("q_end = min(q_start + q_block_size, n_queries)", "q_end = min(q_start + k_block_size, n_queries)"),
            ),
        ),
        Mutant(
            "the causal mask is built once as a full (n, n) boolean matrix and sliced per tile",
            (
                (
                    "                rows = torch.arange(q_start, q_end, device=Q.device)[:, None]\n                cols = torch.arange(k_start, k_end, device=Q.device)[None, :]\n                S = S.masked_fill(cols > rows, -torch.inf)\n            # The first key block",
                    "                future = torch.ones(n_queries, n_keys, dtype=torch.bool, device=Q.device).triu(1)\n                S = S.masked_fill(future[q_start:q_end, k_start:k_end], -torch.inf)\n            # The first key block",
                ),
            ),
        ),
    ],
    "ch13.flash_backward": [
        Mutant(
            "dS leaves out the softmax correction D = rowsum(dO * O)",
            (("dS = P * (dP - D[..., q_start:q_end, None])", "dS = P * dP"),),
        ),
        Mutant(
            "dQ is not scaled by 1/sqrt(d)",
            (("dQ[..., q_start:q_end, :] += dS @ K_j * scale", "dQ[..., q_start:q_end, :] += dS @ K_j"),),
        ),
        Mutant(
            "dK is not scaled by 1/sqrt(d)",
            (("dK_j += dS.transpose(-2, -1) @ Q_i * scale", "dK_j += dS.transpose(-2, -1) @ Q_i"),),
        ),
        Mutant(
            "P is recomputed as exp(S) without subtracting L",
            (("P = torch.exp(S - L[..., q_start:q_end, None])", "P = torch.exp(S)"),),
        ),
        Mutant(
            "D is the row sum of dO alone, not of dO * O",
            (("D = (dO * O).sum(dim=-1)", "D = dO.sum(dim=-1)"),),
        ),
        Mutant(
            "causal: the query blocks on the diagonal of a key block are skipped",
            (
                (
                    "q_first = (k_start // q_block_size) * q_block_size if is_causal else 0",
                    "q_first = (k_end // q_block_size) * q_block_size if is_causal else 0",
                ),
            ),
        ),
        Mutant(
            "L is kept as a ctx attribute instead of being saved with save_for_backward",
            (
                ("ctx.save_for_backward(Q, K, V, O, L)", "ctx.save_for_backward(Q, K, V, O)\n        ctx.L = L"),
                ("Q, K, V, O, L = ctx.saved_tensors", "Q, K, V, O = ctx.saved_tensors\n        L = ctx.L"),
            ),
        ),
        Mutant(
            "the causal flag is not passed on to the backward pass",
            (
                (
                    "flash_attention_backward(Q, K, V, O, L, dO, ctx.is_causal, *ctx.block_sizes)",
                    "flash_attention_backward(Q, K, V, O, L, dO, False, *ctx.block_sizes)",
                ),
            ),
        ),
        Mutant(
            "dV_j is overwritten by each query block instead of accumulated (= instead of +=)",
            (("dV_j += P.transpose(-2, -1) @ dO_i", "dV_j = P.transpose(-2, -1) @ dO_i"),),
        ),
        Mutant(
            "the backward forgets the causal mask (future keys get probability and gradient)",
            (
                (
                    "                S = S.masked_fill(cols > rows, -torch.inf)\n            P = torch.exp",
                    "                pass\n            P = torch.exp",
                ),
            ),
        ),
        Mutant(
            "causal skipping off by one: the query block holding the key block's first key is skipped",
            (
                (
                    "q_first = (k_start // q_block_size) * q_block_size if is_causal else 0",
                    "q_first = (k_start // q_block_size + 1) * q_block_size if is_causal else 0",
                ),
            ),
        ),
        Mutant(
            "saves only Q, K, V and reruns the forward in backward to get O and L",
            (
                ("ctx.save_for_backward(Q, K, V, O, L)", "ctx.save_for_backward(Q, K, V)"),
                (
                    "Q, K, V, O, L = ctx.saved_tensors",
                    "Q, K, V = ctx.saved_tensors\n        O, L = flash_attention_forward(Q, K, V, ctx.is_causal, *ctx.block_sizes)",
                ),
            ),
        ),
        Mutant(
            "the Function's backward does not pass the block sizes on (backward runs with the 16/16 defaults)",
            (
                (
                    "flash_attention_backward(Q, K, V, O, L, dO, ctx.is_causal, *ctx.block_sizes)",
                    "flash_attention_backward(Q, K, V, O, L, dO, ctx.is_causal)",
                ),
            ),
        ),
        Mutant(
            "backward returns only (dQ, dK, dV), no None for the three non-tensor inputs",
            (("return dQ, dK, dV, None, None, None", "return dQ, dK, dV"),),
        ),
    ],
    "ch13.sliding_window": [
        Mutant(
            "sliding_window_mask lets a query see window_size + 1 keys (<= instead of <)",
            (
                (
                    "return (distance >= 0) & (distance < window_size)",
                    "return (distance >= 0) & (distance <= window_size)",
                ),
            ),
        ),
        Mutant(
            "sliding_window_mask is a band around the diagonal: not causal",
            (("return (distance >= 0) & (distance < window_size)", "return distance.abs() < window_size"),),
        ),
        Mutant(
            "sliding_window_mask is True where attention is masked out",
            (
                (
                    "return (distance >= 0) & (distance < window_size)",
                    "return ~((distance >= 0) & (distance < window_size))",
                ),
            ),
        ),
        Mutant(
            "the layer's window lets a query see window_size + 1 keys",
            (
                (
                    "allowed = (distance >= 0) & (distance < self.window_size)",
                    "allowed = (distance >= 0) & (distance <= self.window_size)",
                ),
            ),
        ),
        Mutant(
            "the cache keeps every position instead of only the window",
            (
                (
                    "self.cache_k = keys[:, :, -self.window_size :].detach()\n            self.cache_v = values[:, :, -self.window_size :].detach()",
                    "self.cache_k = keys.detach()\n            self.cache_v = values.detach()",
                ),
            ),
        ),
        Mutant(
            "cached tokens are placed at positions 0, 1, ... again instead of after tokens_seen",
            (("start = self.tokens_seen if use_cache else 0", "start = 0"),),
        ),
        Mutant(
            "tokens_seen counts only the latest chunk",
            (("self.tokens_seen = start + num_new", "self.tokens_seen = num_new"),),
        ),
        Mutant(
            "the cache is filled on every call, also without use_cache",
            (("        if use_cache:\n            self.cache_k", "        if True:\n            self.cache_k"),),
        ),
        Mutant(
            "the scores are not scaled by 1/sqrt(head_dim)",
            (
                (
                    "scores = queries @ keys.transpose(2, 3) / self.head_dim**0.5",
                    "scores = queries @ keys.transpose(2, 3)",
                ),
            ),
        ),
        Mutant(
            "the cache is never trimmed: it keeps every position seen",
            (
                ("self.cache_k = keys[:, :, -self.window_size :].detach()", "self.cache_k = keys.detach()"),
                ("self.cache_v = values[:, :, -self.window_size :].detach()", "self.cache_v = values.detach()"),
            ),
        ),
        Mutant(
            "the cache keeps window_size - 1 positions (the newest key is the only one of its step it expects to add)",
            (
                (
                    "self.cache_k = keys[:, :, -self.window_size :].detach()",
                    "self.cache_k = keys[:, :, keys.shape[2] - self.window_size + 1 :].detach()",
                ),
                (
                    "self.cache_v = values[:, :, -self.window_size :].detach()",
                    "self.cache_v = values[:, :, values.shape[2] - self.window_size + 1 :].detach()",
                ),
            ),
        ),
        Mutant(
            "the new keys are put before the cached ones (torch.cat in the wrong order)",
            (
                ("keys = torch.cat([self.cache_k, keys], dim=2)", "keys = torch.cat([keys, self.cache_k], dim=2)"),
                (
                    "values = torch.cat([self.cache_v, values], dim=2)",
                    "values = torch.cat([values, self.cache_v], dim=2)",
                ),
            ),
        ),
        Mutant(
            "scores scaled by 1/sqrt(d_out) instead of 1/sqrt(head_dim)",
            (
                (
                    "scores = queries @ keys.transpose(2, 3) / self.head_dim**0.5",
                    "scores = queries @ keys.transpose(2, 3) / self.d_out**0.5",
                ),
            ),
        ),
        Mutant(
            "no dropout on the attention weights",
            (
                (
                    "weights = self.dropout(torch.softmax(scores.masked_fill(~allowed, -torch.inf), dim=-1))",
                    "weights = torch.softmax(scores.masked_fill(~allowed, -torch.inf), dim=-1)",
                ),
            ),
        ),
        Mutant(
            "reset_cache empties the tensors but leaves tokens_seen",
            (
                (
                    "        self.reset_cache()\n",
                    "        self.cache_k, self.cache_v, self.tokens_seen = None, None, 0\n",
                ),
                (
                    "        self.cache_k, self.cache_v = None, None\n        self.tokens_seen = 0\n",
                    "        self.cache_k, self.cache_v = None, None\n",
                ),
            ),
        ),
    ],
    "ch13.rope_scaling": [
        Mutant(
            "position interpolation multiplies the frequencies by the factor",
            (
                (
                    "return rope_inv_freq(head_dim, theta_base) / factor",
                    "return rope_inv_freq(head_dim, theta_base) * factor",
                ),
            ),
        ),
        Mutant(
            "NTK-aware scaling multiplies the base by the factor alone (no d / (d - 2) exponent)",
            (
                (
                    "return rope_inv_freq(head_dim, theta_base * factor ** (head_dim / (head_dim - 2)))",
                    "return rope_inv_freq(head_dim, theta_base * factor)",
                ),
            ),
        ),
        Mutant(
            "NTK-aware scaling uses the exponent (d - 2) / d",
            (
                (
                    "return rope_inv_freq(head_dim, theta_base * factor ** (head_dim / (head_dim - 2)))",
                    "return rope_inv_freq(head_dim, theta_base * factor ** ((head_dim - 2) / head_dim))",
                ),
            ),
        ),
        Mutant(
            "YaRN's ramp is reversed: the fast pairs are interpolated and the slow ones kept",
            (
                (
                    "scaled = inv_freq / factor * ramp + inv_freq * (1 - ramp)",
                    "scaled = inv_freq * ramp + inv_freq / factor * (1 - ramp)",
                ),
            ),
        ),
        Mutant(
            "YaRN's ramp bounds are not floored and ceiled",
            (
                (
                    "low = max(math.floor(pair_index(beta_fast)), 0)\n    high = min(math.ceil(pair_index(beta_slow)), head_dim - 1)",
                    "low = max(pair_index(beta_fast), 0)\n    high = min(pair_index(beta_slow), head_dim - 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN's attention factor leaves out the + 1",
            (
                (
                    "attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0",
                    "attention_factor = 0.1 * math.log(factor) if factor > 1 else 1.0",
                ),
            ),
        ),
        Mutant(
            "YaRN's rotation count leaves out the 2 pi (turns measured in radians)",
            (
                (
                    "math.log(original_context_length / (2 * math.pi * rotations))",
                    "math.log(original_context_length / rotations)",
                ),
            ),
        ),
        Mutant(
            "YaRN's beta_fast and beta_slow are swapped",
            (
                (
                    "low = max(math.floor(pair_index(beta_fast)), 0)\n    high = min(math.ceil(pair_index(beta_slow)), head_dim - 1)",
                    "low = max(math.floor(pair_index(beta_slow)), 0)\n    high = min(math.ceil(pair_index(beta_fast)), head_dim - 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN's bounds neither floored nor ceiled (transformers' truncate=False)",
            (
                ("low = max(math.floor(pair_index(beta_fast)), 0)", "low = max(pair_index(beta_fast), 0)"),
                (
                    "high = min(math.ceil(pair_index(beta_slow)), head_dim - 1)",
                    "high = min(pair_index(beta_slow), head_dim - 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN with beta_fast and beta_slow swapped",
            (
                ("low = max(math.floor(pair_index(beta_fast)), 0)", "low = max(math.floor(pair_index(beta_slow)), 0)"),
                (
                    "high = min(math.ceil(pair_index(beta_slow)), head_dim - 1)",
                    "high = min(math.ceil(pair_index(beta_fast)), head_dim - 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN's high bound clamped to the last pair (head_dim // 2 - 1) instead of head_dim - 1",
            (
                (
                    "high = min(math.ceil(pair_index(beta_slow)), head_dim - 1)",
                    "high = min(math.ceil(pair_index(beta_slow)), head_dim // 2 - 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN's ramp indexed by the even dimension 2i instead of the pair index i",
            (
                (
                    "ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)",
                    "ramp = ((torch.arange(0, head_dim, 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)",
                ),
            ),
        ),
        Mutant(
            "YaRN's attention factor squared (the logits' 1/t instead of the cos/sin mscale)",
            (
                (
                    "attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0",
                    "attention_factor = (0.1 * math.log(factor) + 1.0) ** 2 if factor > 1 else 1.0",
                ),
            ),
        ),
    ],
    "ch13.alibi": [
        Mutant(
            "the slopes start at 2 ** 0 = 1 (h instead of h + 1)",
            (
                (
                    "return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]",
                    "return [2.0 ** (-8.0 * h / n) for h in range(n)]",
                ),
            ),
        ),
        Mutant(
            "the extra slopes come from the odd positions of the larger power of two (already used ones)",
            (
                (
                    "slopes += geometric(2 * power)[0::2][: num_heads - power]",
                    "slopes += geometric(2 * power)[1::2][: num_heads - power]",
                ),
            ),
        ),
        Mutant(
            "the extra slopes are the first ones of the larger power of two, not every other one",
            (
                (
                    "slopes += geometric(2 * power)[0::2][: num_heads - power]",
                    "slopes += geometric(2 * power)[: num_heads - power]",
                ),
            ),
        ),
        Mutant(
            "the geometric formula with num_heads even when it is not a power of two",
            (("power = 2 ** math.floor(math.log2(num_heads))", "power = num_heads"),),
        ),
        Mutant(
            "the bias has the wrong sign: distant keys are favoured",
            (
                (
                    "distance = positions[None, :] - positions[:, None]",
                    "distance = positions[:, None] - positions[None, :]",
                ),
            ),
        ),
        Mutant(
            "the heads get their slopes in reverse order",
            (
                (
                    "return alibi_slopes(num_heads)[:, None, None] * distance",
                    "return alibi_slopes(num_heads).flip(0)[:, None, None] * distance",
                ),
            ),
        ),
        Mutant(
            "the extra slopes taken from the same power of two (repeats slopes) instead of twice it",
            (
                (
                    "slopes += geometric(2 * power)[0::2][: num_heads - power]",
                    "slopes += geometric(power)[0::2][: num_heads - power]",
                ),
            ),
        ),
        Mutant(
            "non-power-of-two: the first num_heads slopes of the next power of two",
            (
                ("power = 2 ** math.floor(math.log2(num_heads))", "power = 2 ** math.ceil(math.log2(num_heads))"),
                ("    slopes = geometric(power)\n", "    slopes = geometric(power)[:num_heads]\n"),
            ),
        ),
        Mutant(
            "BLOOM's shift-equivalent bias slope * j (key position only), not 0 on the diagonal",
            (
                (
                    "distance = positions[None, :] - positions[:, None]",
                    "distance = positions[None, :].expand(num_tokens, num_tokens)",
                ),
            ),
        ),
    ],
}

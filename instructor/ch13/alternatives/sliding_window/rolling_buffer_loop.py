"""the mask from a Python double loop; the cache appended one position at a time and popped from the
front while longer than the window; exp-normalise by hand instead of torch.softmax"""

import torch


def sliding_window_mask(num_tokens, window_size, device=None):
    mask = torch.zeros(num_tokens, num_tokens, dtype=torch.bool, device=device)
    for i in range(num_tokens):
        for j in range(max(0, i - window_size + 1), i + 1):
            mask[i, j] = True
    return mask


class SlidingWindowAttention(MultiHeadAttention):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, window_size, qkv_bias=False):
        super().__init__(d_in, d_out, context_length, dropout, num_heads, qkv_bias)
        self.window_size = window_size
        self.reset_cache()

    def reset_cache(self):
        self.cache_k = self.cache_v = None
        self.tokens_seen = 0

    def forward(self, x, use_cache=False):
        b, n, _ = x.shape
        split = lambda t: t.reshape(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
        q, k_new, v_new = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        if use_cache:
            offset = self.tokens_seen
            old_k = [] if self.cache_k is None else list(self.cache_k.unbind(2))
            old_v = [] if self.cache_v is None else list(self.cache_v.unbind(2))
            k = torch.stack(old_k + list(k_new.unbind(2)), dim=2)
            v = torch.stack(old_v + list(v_new.unbind(2)), dim=2)
            kept_k, kept_v = old_k + list(k_new.unbind(2)), old_v + list(v_new.unbind(2))
            while len(kept_k) > self.window_size:
                kept_k.pop(0)
                kept_v.pop(0)
            self.cache_k = torch.stack(kept_k, dim=2).detach()
            self.cache_v = torch.stack(kept_v, dim=2).detach()
            self.tokens_seen = offset + n
        else:
            offset, k, v = 0, k_new, v_new
        num_keys = k.shape[2]
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / self.head_dim**0.5
        q_pos = offset + torch.arange(n)
        k_pos = offset + n - num_keys + torch.arange(num_keys)
        gap = q_pos[:, None] - k_pos[None, :]
        visible = (gap >= 0) & (gap < self.window_size)
        scores = scores.masked_fill(~visible, float("-inf"))
        weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        weights = self.dropout(weights / weights.sum(dim=-1, keepdim=True))
        context = torch.einsum("bhqk,bhkd->bqhd", weights, v).reshape(b, n, self.d_out)
        return self.out_proj(context)

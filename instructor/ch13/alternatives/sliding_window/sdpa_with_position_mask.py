"""PyTorch's scaled_dot_product_attention with a boolean mask from absolute positions; the mask
function from two triangles (tril minus a shifted tril); the cache trimmed with narrow"""

import torch
import torch.nn.functional as F


def sliding_window_mask(num_tokens, window_size, device=None):
    ones = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=device)
    return torch.tril(ones) & ~torch.tril(ones, diagonal=-window_size)


class SlidingWindowAttention(MultiHeadAttention):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, window_size, qkv_bias=False):
        super().__init__(d_in, d_out, context_length, dropout, num_heads, qkv_bias)
        self.window_size = window_size
        self.cache_k = None
        self.cache_v = None
        self.tokens_seen = 0

    def reset_cache(self):
        self.cache_k = None
        self.cache_v = None
        self.tokens_seen = 0

    def _heads(self, t):
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, use_cache=False):
        b, n, _ = x.shape
        q, k, v = self._heads(self.W_query(x)), self._heads(self.W_key(x)), self._heads(self.W_value(x))
        first = 0
        if use_cache:
            first = self.tokens_seen
            if self.cache_k is not None:
                k = torch.cat((self.cache_k, k), dim=2)
                v = torch.cat((self.cache_v, v), dim=2)
            keep = min(self.window_size, k.shape[2])
            self.cache_k = k.narrow(2, k.shape[2] - keep, keep).detach()
            self.cache_v = v.narrow(2, v.shape[2] - keep, keep).detach()
            self.tokens_seen += n
        q_pos = torch.arange(first, first + n).unsqueeze(1)
        k_pos = torch.arange(first + n - k.shape[2], first + n).unsqueeze(0)
        mask = (k_pos <= q_pos) & (k_pos > q_pos - self.window_size)
        p = self.dropout.p if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(context.transpose(1, 2).reshape(b, n, self.d_out))

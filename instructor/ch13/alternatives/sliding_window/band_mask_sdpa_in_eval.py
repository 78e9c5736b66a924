"""the mask as a causal band: a lower-triangular ones matrix with everything at or below diagonal -window_size
removed (tril() & ~tril(-window_size)); the module computes its scores with
scaled_dot_product_attention and the boolean window mask when not training (dropout off), and the explicit
softmax + self.dropout otherwise; the cache trimmed by slicing without detaching"""


def sliding_window_mask(num_tokens: int, window_size: int, device=None) -> torch.Tensor:
    ones = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=device)
    return ones.tril() & ~ones.tril(-window_size)


class SlidingWindowAttention(MultiHeadAttention):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, window_size, qkv_bias=False):
        super().__init__(d_in, d_out, context_length, dropout, num_heads, qkv_bias=qkv_bias)
        self.window_size = window_size
        self.reset_cache()

    def reset_cache(self) -> None:
        self.cache_k = None
        self.cache_v = None
        self.tokens_seen = 0

    def forward(self, x: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        b, n, _ = x.shape
        split = lambda t: t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        first = self.tokens_seen if use_cache else 0
        if use_cache and self.cache_k is not None:
            k = torch.cat([self.cache_k, k], dim=2)
            v = torch.cat([self.cache_v, v], dim=2)
        q_pos = torch.arange(first, first + n, device=x.device).unsqueeze(1)
        k_pos = torch.arange(first + n - k.shape[2], first + n, device=x.device).unsqueeze(0)
        allowed = (k_pos <= q_pos) & (k_pos > q_pos - self.window_size)
        if self.training and self.dropout.p > 0:
            scores = (q @ k.transpose(2, 3)) / math.sqrt(self.head_dim)
            weights = self.dropout(torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1))
            context = weights @ v
        else:
            context = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        if use_cache:
            self.cache_k = k[:, :, -self.window_size :]
            self.cache_v = v[:, :, -self.window_size :]
            self.tokens_seen += n
        return self.out_proj(context.transpose(1, 2).contiguous().view(b, n, self.d_out))

"""the mask as a causal tril minus everything below the window (torch.tril(ones) & torch.triu(ones,
-(window_size - 1))); the module slices the rows and columns it needs out of sliding_window_mask over all
positions seen so far, uses masked_fill with -inf like chapter 3, and trims the cache with narrow"""


def sliding_window_mask(num_tokens: int, window_size: int, device=None) -> torch.Tensor:
    ones = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=device)
    return torch.tril(ones) & torch.triu(ones, diagonal=-(window_size - 1))


class SlidingWindowAttention(MultiHeadAttention):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, window_size, qkv_bias=False):
        super().__init__(d_in, d_out, context_length, dropout, num_heads, qkv_bias)
        self.window_size = window_size
        self.cache_k, self.cache_v, self.tokens_seen = None, None, 0

    def reset_cache(self) -> None:
        self.cache_k, self.cache_v, self.tokens_seen = None, None, 0

    def _heads(self, t, b, n):
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        b, n, _ = x.shape
        queries = self._heads(self.W_query(x), b, n)
        keys = self._heads(self.W_key(x), b, n)
        values = self._heads(self.W_value(x), b, n)
        past = self.tokens_seen if use_cache else 0
        cached = 0
        if use_cache and self.cache_k is not None:
            cached = self.cache_k.shape[2]
            keys = torch.cat((self.cache_k, keys), dim=2)
            values = torch.cat((self.cache_v, values), dim=2)
        total = past + n
        allowed = sliding_window_mask(total, self.window_size, device=x.device)[past:, past - cached :]
        scores = queries @ keys.transpose(2, 3)
        scores = scores.masked_fill(~allowed, -torch.inf)
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        weights = self.dropout(weights)
        context = (weights @ values).transpose(1, 2).reshape(b, n, self.d_out)
        if use_cache:
            keep = min(self.window_size, keys.shape[2])
            self.cache_k = keys.narrow(2, keys.shape[2] - keep, keep)
            self.cache_v = values.narrow(2, values.shape[2] - keep, keep)
            self.tokens_seen = total
        return self.out_proj(context)

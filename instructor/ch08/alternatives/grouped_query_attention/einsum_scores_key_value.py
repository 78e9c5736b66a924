"""einsum scores; key/value heads widened by expand + reshape; masked_fill with float('-inf')"""

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

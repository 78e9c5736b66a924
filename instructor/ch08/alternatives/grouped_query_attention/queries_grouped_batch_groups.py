"""queries grouped as (batch, groups, group_size, ...) against unrepeated keys; an additive -inf triangle; sizes checked in a loop"""


class GroupedQueryAttention(nn.Module):
    def __init__(self, d_in: int, d_out: int, num_heads: int, num_kv_groups: int, dtype=None):
        super().__init__()
        for total, parts, what in (
            (d_out, num_heads, "d_out by num_heads"),
            (num_heads, num_kv_groups, "num_heads by num_kv_groups"),
        ):
            if total % parts != 0:
                raise ValueError(f"{what}: {total} is not divisible by {parts}")
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

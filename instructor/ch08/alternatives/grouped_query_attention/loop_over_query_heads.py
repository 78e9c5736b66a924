"""a loop over the query heads, each picking its key/value head h // group_size"""


class GroupedQueryAttention(nn.Module):
    def __init__(self, d_in, d_out, num_heads, num_kv_groups, dtype=None):
        super().__init__()
        if d_out % num_heads:
            raise ValueError("d_out must be divisible by num_heads")
        if num_heads % num_kv_groups:
            raise ValueError("num_heads must be divisible by num_kv_groups")
        self.num_heads, self.num_kv_groups, self.head_dim = num_heads, num_kv_groups, d_out // num_heads
        kv_dim = num_kv_groups * self.head_dim
        self.W_query = nn.Linear(d_in, d_out, bias=False, dtype=dtype)
        self.W_key = nn.Linear(d_in, kv_dim, bias=False, dtype=dtype)
        self.W_value = nn.Linear(d_in, kv_dim, bias=False, dtype=dtype)
        self.out_proj = nn.Linear(d_out, d_out, bias=False, dtype=dtype)

    def forward(self, x, mask, cos, sin):
        b, n, _ = x.shape
        q = apply_rope(self.W_query(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2), cos, sin)
        k = apply_rope(self.W_key(x).view(b, n, self.num_kv_groups, self.head_dim).transpose(1, 2), cos, sin)
        v = self.W_value(x).view(b, n, self.num_kv_groups, self.head_dim).transpose(1, 2)
        group_size = self.num_heads // self.num_kv_groups
        outputs = []
        for head in range(self.num_heads):
            kv = head // group_size
            scores = q[:, head] @ k[:, kv].transpose(-1, -2) / self.head_dim**0.5
            weights = torch.softmax(scores.masked_fill(mask, -torch.inf), dim=-1)
            outputs.append(weights @ v[:, kv])
        return self.out_proj(torch.cat(outputs, dim=-1))

"""the cache as a list of (keys, values) tuples with a position counter; expand for the heads; inference_mode"""


class KVCache:
    def __init__(self, n_layers: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers
        self.position = 0

    @property
    def keys(self):
        return [None if entry is None else entry[0] for entry in self.layers]

    @property
    def values(self):
        return [None if entry is None else entry[1] for entry in self.layers]

    def tokens_seen(self) -> int:
        return self.position


def _cached_attention(att, x, mask, cos, sin, cache, layer):
    b, n, _ = x.shape

    def split(t, heads):
        return t.view(b, n, heads, att.head_dim).transpose(1, 2)

    q = apply_rope(split(att.W_query(x), att.num_heads), cos, sin)
    k = apply_rope(split(att.W_key(x), att.num_kv_groups), cos, sin)
    v = split(att.W_value(x), att.num_kv_groups)
    if cache.layers[layer] is not None:
        old_k, old_v = cache.layers[layer]
        k, v = torch.cat((old_k, k), dim=2), torch.cat((old_v, v), dim=2)
    cache.layers[layer] = (k, v)
    group, total = att.num_heads // att.num_kv_groups, k.shape[2]
    k = k.unsqueeze(2).expand(b, att.num_kv_groups, group, total, att.head_dim).reshape(b, att.num_heads, total, -1)
    v = v.unsqueeze(2).expand(b, att.num_kv_groups, group, total, att.head_dim).reshape(b, att.num_heads, total, -1)
    scores = (q @ k.transpose(-2, -1)) / att.head_dim**0.5
    weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    return att.out_proj((weights @ v).transpose(1, 2).flatten(2))


def forward_with_cache(model, in_idx, cache):
    first = cache.tokens_seen()
    n = in_idx.shape[1]
    positions = torch.arange(first, first + n, device=in_idx.device)
    mask = torch.arange(first + n, device=in_idx.device)[None, :] > positions[:, None]
    cos, sin = model.cos[positions], model.sin[positions]
    x = model.tok_emb(in_idx)
    for layer, block in enumerate(model.trf_blocks):
        x = x + _cached_attention(block.att, block.norm1(x), mask, cos, sin, cache, layer)
        x = x + block.ff(block.norm2(x))
    cache.position += n
    return model.out_head(model.final_norm(x))


def generate_text_simple_cached(model, idx, max_new_tokens, context_size=None, use_cache=True, eos_id=None):
    model.eval()
    window = context_size or model.cfg["context_length"]
    tokens = idx[:, -window:]
    target = tokens.shape[1] + max_new_tokens
    cache = KVCache(len(model.trf_blocks)) if use_cache else None
    pending = tokens
    with torch.inference_mode():
        while tokens.shape[1] < target:
            logits = forward_with_cache(model, pending, cache) if use_cache else model(tokens[:, -window:])
            next_token = logits[:, -1:].argmax(dim=-1)
            if eos_id is not None and torch.all(next_token == eos_id):
                break
            tokens = torch.cat((tokens, next_token), dim=1)
            pending = next_token
    return tokens

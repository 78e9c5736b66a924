"""preallocated key/value buffers filled up to an index; PyTorch's attention with a keep-mask"""

import torch.nn.functional as F


class KVCache:
    """Per layer, key and value buffers with room for the model's context, filled up to `filled`."""

    def __init__(self, n_layers):
        self.key_buffers = [None] * n_layers
        self.value_buffers = [None] * n_layers
        self.filled = 0

    @property
    def keys(self):
        return [None if k is None else k[:, :, : self.filled] for k in self.key_buffers]

    @property
    def values(self):
        return [None if v is None else v[:, :, : self.filled] for v in self.value_buffers]

    def tokens_seen(self):
        return self.filled

    def store(self, layer, keys, values, capacity):
        """Writes the new keys and values after the filled part; returns every key and value so far."""
        if self.key_buffers[layer] is None:
            b, groups, _, head_dim = keys.shape
            self.key_buffers[layer] = keys.new_zeros(b, groups, capacity, head_dim)
            self.value_buffers[layer] = values.new_zeros(b, groups, capacity, head_dim)
        end = self.filled + keys.shape[2]
        self.key_buffers[layer][:, :, self.filled : end] = keys
        self.value_buffers[layer][:, :, self.filled : end] = values
        return self.key_buffers[layer][:, :, :end], self.value_buffers[layer][:, :, :end]


def forward_with_cache(model, in_idx, cache):
    b, n = in_idx.shape
    start = cache.tokens_seen()
    end = start + n
    cos, sin = model.cos[start:end], model.sin[start:end]
    # keep[t, s]: new token t (at position start + t) may look at key s.
    keep = torch.arange(end, device=in_idx.device)[None, :] <= torch.arange(start, end, device=in_idx.device)[:, None]
    x = model.tok_emb(in_idx)
    for layer, block in enumerate(model.trf_blocks):
        att, h = block.att, block.norm1(x)
        q = att.W_query(h).view(b, n, att.num_heads, att.head_dim).transpose(1, 2)
        k = att.W_key(h).view(b, n, att.num_kv_groups, att.head_dim).transpose(1, 2)
        v = att.W_value(h).view(b, n, att.num_kv_groups, att.head_dim).transpose(1, 2)
        k, v = cache.store(layer, apply_rope(k, cos, sin), v, model.cos.shape[0])
        context = F.scaled_dot_product_attention(apply_rope(q, cos, sin), k, v, attn_mask=keep, enable_gqa=True)
        x = x + att.out_proj(context.transpose(1, 2).reshape(b, n, att.num_heads * att.head_dim))
        x = x + block.ff(block.norm2(x))
    cache.filled = end
    return model.out_head(model.final_norm(x))


def generate_text_simple_cached(model, idx, max_new_tokens, context_size=None, use_cache=True, eos_id=None):
    model.eval()
    context_size = context_size if context_size is not None else model.cos.shape[0]
    idx = idx[:, -context_size:]
    cache = KVCache(len(model.trf_blocks))
    with torch.no_grad():
        logits = forward_with_cache(model, idx, cache) if use_cache else model(idx)
        for step in range(max_new_tokens):
            next_token = logits[:, -1].argmax(dim=-1, keepdim=True)
            if eos_id is not None and bool((next_token == eos_id).all()):
                break
            idx = torch.cat([idx, next_token], dim=1)
            if step + 1 < max_new_tokens:
                logits = forward_with_cache(model, next_token, cache) if use_cache else model(idx[:, -context_size:])
    return idx

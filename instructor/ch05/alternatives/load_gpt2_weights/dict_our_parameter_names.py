"""a dict from our parameter names to translated tensors, checked and then copied"""


def load_weights_into_gpt(gpt, params):
    """Translates every name first, checks every shape, then copies."""
    translated = {
        "tok_emb.weight": params["wte.weight"],
        "pos_emb.weight": params["wpe.weight"],
        "final_norm.scale": params["ln_f.weight"],
        "final_norm.shift": params["ln_f.bias"],
        "out_head.weight": params["wte.weight"],
    }
    for i in range(len(gpt.trf_blocks)):
        theirs, ours = f"h.{i}.", f"trf_blocks.{i}."
        qkv_w, qkv_b = params[theirs + "attn.c_attn.weight"], params[theirs + "attn.c_attn.bias"]
        width = qkv_w.shape[-1] // 3
        for j, projection in enumerate(("W_query", "W_key", "W_value")):
            translated[f"{ours}att.{projection}.weight"] = qkv_w[:, j * width : (j + 1) * width].T
            translated[f"{ours}att.{projection}.bias"] = qkv_b[j * width : (j + 1) * width]
        for hf_name, our_name in (
            ("attn.c_proj", "att.out_proj"),
            ("mlp.c_fc", "ff.layers.0"),
            ("mlp.c_proj", "ff.layers.2"),
        ):
            translated[ours + our_name + ".weight"] = params[theirs + hf_name + ".weight"].T
            translated[ours + our_name + ".bias"] = params[theirs + hf_name + ".bias"]
        for hf_name, our_name in (("ln_1", "norm1"), ("ln_2", "norm2")):
            translated[ours + our_name + ".scale"] = params[theirs + hf_name + ".weight"]
            translated[ours + our_name + ".shift"] = params[theirs + hf_name + ".bias"]
    own = dict(gpt.named_parameters())
    for name, tensor in translated.items():
        if own[name].shape != tensor.shape:
            raise ValueError(f"{name}: checkpoint shape {tuple(tensor.shape)} != model shape {tuple(own[name].shape)}")
    with torch.no_grad():
        for name, tensor in translated.items():
            own[name].copy_(tensor)

"""the model's state dict updated with translated tensors (torch.split) and loaded with load_state_dict"""


def load_weights_into_gpt(gpt: GPTModel, params: dict[str, torch.Tensor]) -> None:
    """load_state_dict checks every shape and names the tensor that does not fit."""
    state = gpt.state_dict()
    state["tok_emb.weight"] = params["wte.weight"]
    state["pos_emb.weight"] = params["wpe.weight"]
    state["out_head.weight"] = params["wte.weight"]
    state["final_norm.scale"], state["final_norm.shift"] = params["ln_f.weight"], params["ln_f.bias"]
    for i, block in enumerate(gpt.trf_blocks):
        get = lambda key: params[f"h.{i}.{key}"]
        put = lambda key, value: state.__setitem__(f"trf_blocks.{i}.{key}", value)
        emb_dim = get("attn.c_attn.weight").shape[0]
        weights = torch.split(get("attn.c_attn.weight"), emb_dim, dim=1)
        biases = torch.split(get("attn.c_attn.bias"), emb_dim, dim=0)
        for name, weight, bias in zip(("W_query", "W_key", "W_value"), weights, biases):
            put(f"att.{name}.weight", weight.t())
            put(f"att.{name}.bias", bias)
        put("att.out_proj.weight", get("attn.c_proj.weight").t())
        put("att.out_proj.bias", get("attn.c_proj.bias"))
        put("ff.layers.0.weight", get("mlp.c_fc.weight").t())
        put("ff.layers.0.bias", get("mlp.c_fc.bias"))
        put("ff.layers.2.weight", get("mlp.c_proj.weight").t())
        put("ff.layers.2.bias", get("mlp.c_proj.bias"))
        put("norm1.scale", get("ln_1.weight"))
        put("norm1.shift", get("ln_1.bias"))
        put("norm2.scale", get("ln_2.weight"))
        put("norm2.shift", get("ln_2.bias"))
    gpt.load_state_dict(state)

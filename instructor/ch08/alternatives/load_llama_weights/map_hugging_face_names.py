"""a map from Hugging Face names to the model's, shapes checked, then load_state_dict; tied by hand"""

_PER_LAYER = {
    "self_attn.q_proj": "att.W_query",
    "self_attn.k_proj": "att.W_key",
    "self_attn.v_proj": "att.W_value",
    "self_attn.o_proj": "att.out_proj",
    "mlp.gate_proj": "ff.fc1",
    "mlp.up_proj": "ff.fc2",
    "mlp.down_proj": "ff.fc3",
    "input_layernorm": "norm1",
    "post_attention_layernorm": "norm2",
}


def load_weights_into_llama(model, param_config, params):
    names = {"model.embed_tokens.weight": "tok_emb.weight", "model.norm.weight": "final_norm.weight"}
    if "lm_head.weight" in params:
        names["lm_head.weight"] = "out_head.weight"
    for i in range(param_config["n_layers"]):
        for theirs, ours in _PER_LAYER.items():
            names[f"model.layers.{i}.{theirs}.weight"] = f"trf_blocks.{i}.{ours}.weight"
    own = dict(model.named_parameters())
    state = {}
    for theirs, ours in names.items():
        if params[theirs].shape != own[ours].shape:
            raise ValueError(f"{theirs} has shape {tuple(params[theirs].shape)}, {ours} {tuple(own[ours].shape)}")
        state[ours] = params[theirs]
    model.load_state_dict(state, strict=False)
    if "lm_head.weight" not in params:
        model.out_head.weight = model.tok_emb.weight

"""copy_ into the existing parameters under torch.no_grad(), found with get_parameter"""


@torch.no_grad()
def load_weights_into_llama(model, param_config, params):
    def put(ours, theirs):
        target, source = model.get_parameter(ours), params[theirs]
        if target.shape != source.shape:
            raise ValueError(f"shape mismatch for {theirs}: {tuple(source.shape)} vs {tuple(target.shape)}")
        target.copy_(source)

    put("tok_emb.weight", "model.embed_tokens.weight")
    for i in range(param_config["n_layers"]):
        ours, theirs = f"trf_blocks.{i}", f"model.layers.{i}"
        for a, b in (
            ("att.W_query", "self_attn.q_proj"),
            ("att.W_key", "self_attn.k_proj"),
            ("att.W_value", "self_attn.v_proj"),
            ("att.out_proj", "self_attn.o_proj"),
            ("ff.fc1", "mlp.gate_proj"),
            ("ff.fc2", "mlp.up_proj"),
            ("ff.fc3", "mlp.down_proj"),
            ("norm1", "input_layernorm"),
            ("norm2", "post_attention_layernorm"),
        ):
            put(f"{ours}.{a}.weight", f"{theirs}.{b}.weight")
    put("final_norm.weight", "model.norm.weight")
    if "lm_head.weight" in params:
        put("out_head.weight", "lm_head.weight")
    else:
        model.out_head.weight = model.tok_emb.weight

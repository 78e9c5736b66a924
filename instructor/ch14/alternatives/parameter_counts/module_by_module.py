"""counted as the sum of the shapes of the named weight matrices of one layer"""


def moe_parameter_counts(config):
    d = config["hidden_size"]
    hd = config.get("head_dim") or d // config["num_attention_heads"]
    shapes = {
        "q_proj": (d, config["num_attention_heads"] * hd),
        "k_proj": (d, config["num_key_value_heads"] * hd),
        "v_proj": (d, config["num_key_value_heads"] * hd),
        "o_proj": (config["num_attention_heads"] * hd, d),
        "gate": (d, config["num_local_experts"]),
    }
    layer = sum(a * b for a, b in shapes.values()) + 2 * d
    one_expert = 3 * d * config["intermediate_size"]
    outside = config["vocab_size"] * d * (1 if config.get("tie_word_embeddings") else 2) + d
    layers = config["num_hidden_layers"]
    total = outside + layers * (layer + config["num_local_experts"] * one_expert)
    active = outside + layers * (layer + config["num_experts_per_tok"] * one_expert)
    return total, active

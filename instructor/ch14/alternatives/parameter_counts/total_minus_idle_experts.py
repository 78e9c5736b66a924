"""active as the total minus the experts a token does not visit"""


def moe_parameter_counts(config):
    h, n_layers = config["hidden_size"], config["num_hidden_layers"]
    n_heads, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config["head_dim"] if config.get("head_dim") else h // n_heads
    per_layer = (
        h * n_heads * head_dim * 2
        + h * n_kv * head_dim * 2
        + 2 * h
        + h * config["num_local_experts"]
        + config["num_local_experts"] * 3 * h * config["intermediate_size"]
    )
    total = n_layers * per_layer + config["vocab_size"] * h + h
    if not config.get("tie_word_embeddings", False):
        total += config["vocab_size"] * h
    idle = config["num_local_experts"] - config["num_experts_per_tok"]
    return total, total - n_layers * idle * 3 * h * config["intermediate_size"]

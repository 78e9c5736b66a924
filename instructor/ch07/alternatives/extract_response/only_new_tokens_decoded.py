"""only the new tokens decoded"""


def generate_response(model, tokenizer, entry, context_size, max_new_tokens=256, eos_id=50256, device="cpu"):
    """Decodes what the model added after the prompt's tokens."""
    prompt_ids = text_to_token_ids(format_input(entry), tokenizer).to(device)
    out = generate(model, prompt_ids, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=eos_id)
    new_text = tokenizer.decode(out[0, prompt_ids.shape[1] :].tolist())
    return new_text.replace("### Response:", "").strip()

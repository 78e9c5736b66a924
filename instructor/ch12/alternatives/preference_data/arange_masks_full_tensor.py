"""Tokenizes in a list comprehension; the collate preallocates one torch.full tensor per side at the
common length and copies each row in, and builds the masks by comparing torch.arange with the prompt
and sequence lengths; truncation by slicing the stacked tensors."""


class PreferenceDataset(Dataset):
    def __init__(self, data, tokenizer):
        self.data = data
        self.encoded_texts = []
        for entry in data:
            prompt = format_input(entry) + "\n\n### Response:\n"
            self.encoded_texts.append(
                {
                    key: tokenizer.encode(text)
                    for key, text in (
                        ("prompt", prompt),
                        ("chosen", prompt + entry["chosen"]),
                        ("rejected", prompt + entry["rejected"]),
                    )
                }
            )

    def __getitem__(self, index):
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.encoded_texts)


def custom_collate_fn(batch, pad_token_id=50256, allowed_max_length=None, mask_prompt_tokens=True, device="cpu"):
    width = max(max(len(item["chosen"]), len(item["rejected"])) for item in batch)
    positions = torch.arange(width)
    out = {"prompt": [torch.tensor(item["prompt"], dtype=torch.long) for item in batch]}
    for key in ("chosen", "rejected"):
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        masks = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, item in enumerate(batch):
            seq = item[key]
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            start = len(item["prompt"]) if mask_prompt_tokens else 0
            masks[row] = (positions >= start) & (positions < len(seq))
        if allowed_max_length is not None:
            ids = ids[:, :allowed_max_length]
            masks = masks[:, :allowed_max_length]
        out[key] = ids
        out[f"{key}_mask"] = masks
    out["prompt"] = [p.to(device) for p in out["prompt"]]
    for key in ("chosen", "rejected", "chosen_mask", "rejected_mask"):
        out[key] = out[key].to(device)
    return out

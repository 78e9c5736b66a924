"""pad_sequence over chosen and rejected together; masks by comparing positions with arange"""


class PreferenceDataset(Dataset):
    def __init__(self, data, tokenizer):
        texts = [format_input(entry) + "\n\n### Response:\n" for entry in data]
        self.encoded_texts = [
            {
                "prompt": tokenizer.encode(text),
                "chosen": tokenizer.encode(text + entry["chosen"]),
                "rejected": tokenizer.encode(text + entry["rejected"]),
            }
            for text, entry in zip(texts, data)
        ]

    def __len__(self):
        return len(self.encoded_texts)

    def __getitem__(self, i):
        return self.encoded_texts[i]


def custom_collate_fn(batch, pad_token_id=50256, allowed_max_length=None, mask_prompt_tokens=True, device="cpu"):
    n = len(batch)
    sequences = [torch.tensor(item[key], dtype=torch.long) for key in ("chosen", "rejected") for item in batch]
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=pad_token_id)
    lengths = torch.tensor([len(s) for s in sequences])
    starts = torch.tensor([len(item["prompt"]) if mask_prompt_tokens else 0 for item in batch] * 2)
    positions = torch.arange(padded.shape[1])
    masks = (positions >= starts[:, None]) & (positions < lengths[:, None])
    if allowed_max_length is not None:
        padded, masks = padded[:, :allowed_max_length], masks[:, :allowed_max_length]
    return {
        "prompt": [torch.tensor(item["prompt"], dtype=torch.long, device=device) for item in batch],
        "chosen": padded[:n].to(device),
        "rejected": padded[n:].to(device),
        "chosen_mask": masks[:n].to(device),
        "rejected_mask": masks[n:].to(device),
    }

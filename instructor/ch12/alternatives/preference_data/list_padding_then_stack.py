"""Pads Python lists with [pad] * k and builds the masks as lists of booleans, stacking them with
torch.tensor at the end; truncates each padded list before turning it into a tensor."""


class PreferenceDataset(Dataset):
    def __init__(self, data, tokenizer):
        self.data = data
        prompts = [format_input(entry) + "\n\n### Response:\n" for entry in data]
        self.encoded_texts = [
            {
                "prompt": tokenizer.encode(prompt),
                "chosen": tokenizer.encode(prompt + entry["chosen"]),
                "rejected": tokenizer.encode(prompt + entry["rejected"]),
            }
            for prompt, entry in zip(prompts, data)
        ]

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.encoded_texts[index]


def custom_collate_fn(batch, pad_token_id=50256, allowed_max_length=None, mask_prompt_tokens=True, device="cpu"):
    longest = 0
    for item in batch:
        longest = max(longest, len(item["chosen"]), len(item["rejected"]))
    cut = longest if allowed_max_length is None else allowed_max_length
    result = {"prompt": [torch.tensor(item["prompt"]).long().to(device) for item in batch]}
    for key in ["chosen", "rejected"]:
        rows, masks = [], []
        for item in batch:
            seq = list(item[key])
            n_prompt = len(item["prompt"])
            padded = seq + [pad_token_id] * (longest - len(seq))
            mask = [(i < len(seq)) and (i >= n_prompt or not mask_prompt_tokens) for i in range(longest)]
            rows.append(padded[:cut])
            masks.append(mask[:cut])
        result[key] = torch.tensor(rows, dtype=torch.int64, device=device)
        result[key + "_mask"] = torch.tensor(masks, dtype=torch.bool, device=device)
    return result

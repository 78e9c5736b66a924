"""The book's collate: every row padded to one position more than the longest sequence, masks built
from torch.ones with the padding and (optionally) the prompt set False, the extra position trimmed after
stacking, then allowed_max_length applied; __len__ from the stored data."""


class PreferenceDataset(Dataset):
    def __init__(self, data, tokenizer):
        self.data = data
        self.encoded_texts = []
        for entry in data:
            prompt = format_input(entry) + "\n\n### Response:\n"
            self.encoded_texts.append(
                {
                    "prompt": tokenizer.encode(prompt),
                    "chosen": tokenizer.encode(prompt + entry["chosen"]),
                    "rejected": tokenizer.encode(prompt + entry["rejected"]),
                }
            )

    def __getitem__(self, index):
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.data)


def custom_collate_fn(batch, pad_token_id=50256, allowed_max_length=None, mask_prompt_tokens=True, device="cpu"):
    batch_data = {"prompt": [], "chosen": [], "rejected": [], "rejected_mask": [], "chosen_mask": []}
    max_length_common = 0
    if batch:
        for key in ["chosen", "rejected"]:
            current_max = max(len(item[key]) + 1 for item in batch)
            max_length_common = max(max_length_common, current_max)
    for item in batch:
        prompt = torch.tensor(item["prompt"])
        batch_data["prompt"].append(prompt)
        for key in ["chosen", "rejected"]:
            sequence = item[key]
            padded = sequence + [pad_token_id] * (max_length_common - len(sequence))
            mask = torch.ones(len(padded)).bool()
            mask[len(sequence) :] = False
            if mask_prompt_tokens:
                mask[: prompt.shape[0]] = False
            batch_data[key].append(torch.tensor(padded))
            batch_data[f"{key}_mask"].append(mask)
    for key in ["chosen", "rejected", "chosen_mask", "rejected_mask"]:
        tensor_stack = torch.stack(batch_data[key])
        tensor_stack = tensor_stack[:, : max_length_common - 1]
        if allowed_max_length is not None:
            tensor_stack = tensor_stack[:, :allowed_max_length]
        batch_data[key] = tensor_stack.to(device)
    batch_data["prompt"] = [p.to(device) for p in batch_data["prompt"]]
    return batch_data

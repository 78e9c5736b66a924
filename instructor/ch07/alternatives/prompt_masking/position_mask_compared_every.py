"""a position mask compared with every row's prompt length at once"""


class InstructionDatasetWithPromptLength(InstructionDataset):
    def __init__(self, data, tokenizer):
        super().__init__(data, tokenizer)
        self.prompt_lengths = [len(tokenizer.encode(format_input(entry))) for entry in data]

    def __getitem__(self, index):
        return (self.prompt_lengths[index], self.encoded_texts[index])


def custom_collate_fn_masked(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    lengths, token_ids = zip(*batch)
    inputs, targets = custom_collate_fn(
        list(token_ids),
        pad_token_id=pad_token_id,
        ignore_index=ignore_index,
        allowed_max_length=allowed_max_length,
        device=device,
    )
    positions = torch.arange(targets.shape[1], device=targets.device)
    in_prompt = positions[None, :] < (torch.tensor(lengths, device=targets.device)[:, None] - 1)
    return inputs, targets.masked_fill(in_prompt, ignore_index)

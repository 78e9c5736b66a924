"""Chapter 7 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch07.format_input
    Mutant(
        "ch07.format_input",
        "an input section even when the input is empty",
        (('if entry["input"] else ""', 'if entry["input"] is not None else ""'),),
    ),
    Mutant(
        "ch07.format_input",
        "the input section left out altogether",
        (('input_text = f"\\n\\n### Input:\\n{entry[\'input\']}" if entry["input"] else ""', 'input_text = ""'),),
    ),
    Mutant(
        "ch07.format_input",
        "no space between the preamble's two sentences",
        (('"Below is an instruction that describes a task. "', '"Below is an instruction that describes a task."'),),
    ),
    Mutant(
        "ch07.format_input",
        "one newline before the instruction header instead of a blank line",
        (("f\"\\n\\n### Instruction:\\n{entry['instruction']}\"", "f\"\\n### Instruction:\\n{entry['instruction']}\""),),
    ),
    Mutant(
        "ch07.format_input",
        "the input on the header's line",
        (("f\"\\n\\n### Input:\\n{entry['input']}\"", "f\"\\n\\n### Input: {entry['input']}\""),),
    ),
    Mutant(
        "ch07.format_input",
        "the response header appended to the prompt",
        (("return instruction_text + input_text", 'return instruction_text + input_text + "\\n\\n### Response:\\n"'),),
    ),
    Mutant(
        "ch07.format_input",
        "the input before the instruction",
        (("return instruction_text + input_text", "return input_text + instruction_text"),),
    ),
    # ch07.instruction_dataset
    Mutant(
        "ch07.instruction_dataset",
        "no response header between the prompt and the output",
        (("full_text = format_input(entry) + f\"\\n\\n### Response:\\n{entry['output']}\"",
          "full_text = format_input(entry) + f\"\\n\\n{entry['output']}\""),),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "one newline before the response header",
        (("full_text = format_input(entry) + f\"\\n\\n### Response:\\n{entry['output']}\"",
          "full_text = format_input(entry) + f\"\\n### Response:\\n{entry['output']}\""),),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "only the prompt encoded, without the response",
        (("self.encoded_texts.append(tokenizer.encode(full_text))",
          "self.encoded_texts.append(tokenizer.encode(format_input(entry)))"),),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "the output encoded without the prompt",
        (("self.encoded_texts.append(tokenizer.encode(full_text))",
          "self.encoded_texts.append(tokenizer.encode(entry['output']))"),),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "encodes on every access instead of once in __init__",
        (
            ("self.encoded_texts.append(tokenizer.encode(full_text))",
             "self.encoded_texts.append(full_text)\n        self.tokenizer = tokenizer"),
            ("return self.encoded_texts[index]", "return self.tokenizer.encode(self.encoded_texts[index])"),
        ),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "items returned as tensors",
        (("return self.encoded_texts[index]", "return torch.tensor(self.encoded_texts[index])"),),
    ),
    Mutant(
        "ch07.instruction_dataset",
        "the prompt and the response encoded separately and concatenated",
        (("self.encoded_texts.append(tokenizer.encode(full_text))",
          "self.encoded_texts.append(tokenizer.encode(format_input(entry) + \"\\n\\n\") "
          "+ tokenizer.encode(full_text[len(format_input(entry)) + 2:]))"),),
    ),
    # ch07.collate
    Mutant(
        "ch07.collate",
        "ignore_index applied to the first end-of-text target too",
        (("targets[indices[1:]] = ignore_index", "targets[indices] = ignore_index"),),
    ),
    Mutant(
        "ch07.collate",
        "every padding target kept",
        (("        if indices.numel() > 1:\n            targets[indices[1:]] = ignore_index\n", ""),),
    ),
    Mutant(
        "ch07.collate",
        "the last end-of-text target kept instead of the first",
        (("targets[indices[1:]] = ignore_index", "targets[indices[:-1]] = ignore_index"),),
    ),
    Mutant(
        "ch07.collate",
        "targets not shifted",
        (("targets = torch.tensor(padded[1:])", "targets = torch.tensor(padded[:-1])"),),
    ),
    Mutant(
        "ch07.collate",
        "the padded example truncated to allowed_max_length before shifting",
        (("        inputs = torch.tensor(padded[:-1])\n",
          "        if allowed_max_length is not None:\n            padded = padded[:allowed_max_length]\n"
          "        inputs = torch.tensor(padded[:-1])\n"),),
    ),
    Mutant(
        "ch07.collate",
        "the example truncated to allowed_max_length before padding: a cut example gets an end-of-text target",
        (("new_item = item + [pad_token_id]", "new_item = item[:allowed_max_length] + [pad_token_id]"),),
    ),
    Mutant(
        "ch07.collate",
        "padding to the longest example without the extra end-of-text token",
        (("batch_max_length = max(len(item) + 1 for item in batch)", "batch_max_length = max(len(item) for item in batch)"),),
    ),
    Mutant(
        "ch07.collate",
        "the mask looks for 50256 whatever pad_token_id is",
        (("torch.nonzero(targets == pad_token_id)", "torch.nonzero(targets == 50256)"),),
    ),
    Mutant(
        "ch07.collate",
        "masks with -100 whatever ignore_index is",
        (("targets[indices[1:]] = ignore_index", "targets[indices[1:]] = -100"),),
    ),
    Mutant(
        "ch07.collate",
        "appends the pad token to the batch's own list",
        (("new_item = item + [pad_token_id]", "item.append(pad_token_id)\n        new_item = item"),),
    ),
    Mutant(
        "ch07.collate",
        "masks the inputs' padding too",
        (("targets[indices[1:]] = ignore_index", "targets[indices[1:]] = ignore_index\n            inputs[indices[1:]] = ignore_index"),),
    ),
    Mutant(
        "ch07.collate",
        "only the inputs truncated",
        (("            targets = targets[:allowed_max_length]\n", ""),),
    ),
    Mutant(
        "ch07.collate",
        "inputs and targets returned in the wrong order",
        (("return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)",
          "return torch.stack(targets_lst).to(device), torch.stack(inputs_lst).to(device)"),),
    ),
    Mutant(
        "ch07.collate",
        "float tensors",
        (("inputs = torch.tensor(padded[:-1])", "inputs = torch.tensor(padded[:-1], dtype=torch.float32)"),
         ("targets = torch.tensor(padded[1:])", "targets = torch.tensor(padded[1:], dtype=torch.float32)")),
    ),
    # ch07.prompt_masking
    Mutant(
        "ch07.prompt_masking",
        "prompt mask off by one: the first response target is masked too",
        (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length] = ignore_index"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "prompt mask off by one: the last prompt target is kept",
        (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length - 2] = ignore_index"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "masks with -100 whatever ignore_index is",
        (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length - 1] = -100"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "the prompt mask applied to the inputs",
        (("targets[row, :prompt_length - 1] = ignore_index", "inputs[row, :prompt_length - 1] = ignore_index"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "the prompt length counts the response header",
        (("[len(tokenizer.encode(format_input(entry))) for", "[len(tokenizer.encode(format_input(entry) + \"\\n\\n### Response:\\n\")) for"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "the prompt length in characters",
        (("[len(tokenizer.encode(format_input(entry))) for", "[len(format_input(entry)) for"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "the pair returned as (token_ids, prompt_length)",
        (("return self.prompt_lengths[index], self.encoded_texts[index]",
          "return self.encoded_texts[index], self.prompt_lengths[index]"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "allowed_max_length not passed on",
        (("custom_collate_fn([token_ids for _, token_ids in batch], pad_token_id, ignore_index,\n"
          "                                        allowed_max_length, device)",
          "custom_collate_fn([token_ids for _, token_ids in batch], pad_token_id, ignore_index, None, device)"),),
    ),
    Mutant(
        "ch07.prompt_masking",
        "every row masked with the first example's prompt length",
        (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :batch[0][0] - 1] = ignore_index"),),
    ),
    # ch07.extract_response
    Mutant(
        "ch07.extract_response",
        "the response not stripped",
        (('.replace("### Response:", "").strip()', '.replace("### Response:", "")'),),
    ),
    Mutant(
        "ch07.extract_response",
        "only leading whitespace stripped",
        (('.replace("### Response:", "").strip()', '.replace("### Response:", "").lstrip()'),),
    ),
    Mutant(
        "ch07.extract_response",
        "the \"### Response:\" header kept",
        (('.replace("### Response:", "").strip()', ".strip()"),),
    ),
    Mutant(
        "ch07.extract_response",
        "the prompt cut off by its number of tokens instead of characters",
        (("generated_text[len(input_text):]", "generated_text[len(tokenizer.encode(input_text)):]"),),
    ),
    Mutant(
        "ch07.extract_response",
        "generation does not stop at the end-of-text token",
        (("max_new_tokens=max_new_tokens, context_size=context_size, eos_id=eos_id)",
          "max_new_tokens=max_new_tokens, context_size=context_size)"),),
    ),
    Mutant(
        "ch07.extract_response",
        "samples with temperature and top-k instead of greedy decoding",
        (("context_size=context_size, eos_id=eos_id)", "context_size=context_size, eos_id=eos_id, temperature=1.0, top_k=5)"),),
    ),
    Mutant(
        "ch07.extract_response",
        "max_new_tokens fixed at 256",
        (("max_new_tokens=max_new_tokens,", "max_new_tokens=256,"),),
    ),
    Mutant(
        "ch07.extract_response",
        "context_size not passed on: the model's whole context assumed to be 1,024 tokens",
        (("context_size=context_size,", "context_size=1024,"),),
    ),
    Mutant(
        "ch07.extract_response",
        "the whole generated text returned, prompt included",
        (("generated_text[len(input_text):]", "generated_text"),),
    ),
]

ALTERNATIVES: list[Alternative] = [
    # ch07.format_input
    Alternative(
        "ch07.format_input",
        "sections joined with blank lines, the input read with get",
        r'''
def format_input(entry):
    """The parts of the prompt, joined by blank lines."""
    sections = [
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
        "### Instruction:\n" + entry["instruction"],
    ]
    if entry.get("input"):
        sections.append("### Input:\n" + entry["input"])
    return "\n\n".join(sections)
''',
    ),
    Alternative(
        "ch07.format_input",
        "one format string per case",
        r'''
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


def format_input(entry: dict) -> str:
    """Two templates: with and without an input."""
    if len(entry["input"]) == 0:
        return "{}\n\n### Instruction:\n{}".format(PREAMBLE, entry["instruction"])
    return "{}\n\n### Instruction:\n{}\n\n### Input:\n{}".format(PREAMBLE, entry["instruction"], entry["input"])
''',
    ),
    # ch07.instruction_dataset
    Alternative(
        "ch07.instruction_dataset",
        "a list comprehension, the length from the encoded texts",
        r'''
class InstructionDataset(Dataset):
    """Tokenized once, in a comprehension."""

    def __init__(self, data, tokenizer):
        texts = (f"{format_input(entry)}\n\n### Response:\n{entry['output']}" for entry in data)
        self.encoded_texts = [tokenizer.encode(text) for text in texts]

    def __getitem__(self, index):
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.encoded_texts)
''',
    ),
    # ch07.collate
    Alternative(
        "ch07.collate",
        "one padded tensor, the later pad targets found with a cumulative sum",
        r'''
def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    """Vectorised: a pad target is ignored when it is not the first of its row."""
    width = max(len(item) for item in batch) + 1
    padded = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    for row, item in enumerate(batch):
        padded[row, :len(item)] = torch.tensor(item, dtype=torch.long)
    inputs, targets = padded[:, :-1].clone(), padded[:, 1:].clone()
    is_pad = targets == pad_token_id
    targets[is_pad & (is_pad.cumsum(dim=1) > 1)] = ignore_index
    if allowed_max_length is not None:
        inputs, targets = inputs[:, :allowed_max_length], targets[:, :allowed_max_length]
    return inputs.to(device), targets.to(device)
''',
    ),
    Alternative(
        "ch07.collate",
        "plain Python lists, the first pad found with index",
        r'''
def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    """Rows built as lists; a tensor only at the end."""
    width = max(map(len, batch))
    input_rows, target_rows = [], []
    for item in batch:
        padded = list(item) + [pad_token_id] * (width + 1 - len(item))
        targets = padded[1:]
        first = targets.index(pad_token_id)
        targets = targets[:first + 1] + [ignore_index if t == pad_token_id else t for t in targets[first + 1:]]
        input_rows.append(padded[:-1][:allowed_max_length])
        target_rows.append(targets[:allowed_max_length])
    return torch.tensor(input_rows, device=device), torch.tensor(target_rows, device=device)
''',
    ),
    # ch07.prompt_masking
    Alternative(
        "ch07.prompt_masking",
        "the book's exercise solution: a dataset of its own and the whole collate function again",
        r'''
class InstructionDatasetWithPromptLength(Dataset):
    def __init__(self, data, tokenizer):
        self.data = data
        self.instruction_lengths = []
        self.encoded_texts = []
        for entry in data:
            instruction_plus_input = format_input(entry)
            response_text = f"\n\n### Response:\n{entry['output']}"
            self.encoded_texts.append(tokenizer.encode(instruction_plus_input + response_text))
            self.instruction_lengths.append(len(tokenizer.encode(instruction_plus_input)))

    def __getitem__(self, index):
        return self.instruction_lengths[index], self.encoded_texts[index]

    def __len__(self):
        return len(self.data)


def custom_collate_fn_masked(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    batch_max_length = max(len(item) + 1 for instruction_length, item in batch)
    inputs_lst, targets_lst = [], []
    for instruction_length, item in batch:
        new_item = item.copy()
        new_item += [pad_token_id]
        padded = new_item + [pad_token_id] * (batch_max_length - len(new_item))
        inputs = torch.tensor(padded[:-1])
        targets = torch.tensor(padded[1:])
        mask = targets == pad_token_id
        indices = torch.nonzero(mask).squeeze()
        if indices.numel() > 1:
            targets[indices[1:]] = ignore_index
        targets[:instruction_length - 1] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)
''',
    ),
    Alternative(
        "ch07.prompt_masking",
        "a position mask compared with every row's prompt length at once",
        r'''
class InstructionDatasetWithPromptLength(InstructionDataset):
    def __init__(self, data, tokenizer):
        super().__init__(data, tokenizer)
        self.prompt_lengths = [len(tokenizer.encode(format_input(entry))) for entry in data]

    def __getitem__(self, index):
        return (self.prompt_lengths[index], self.encoded_texts[index])


def custom_collate_fn_masked(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    lengths, token_ids = zip(*batch)
    inputs, targets = custom_collate_fn(list(token_ids), pad_token_id=pad_token_id, ignore_index=ignore_index,
                                        allowed_max_length=allowed_max_length, device=device)
    positions = torch.arange(targets.shape[1], device=targets.device)
    in_prompt = positions[None, :] < (torch.tensor(lengths, device=targets.device)[:, None] - 1)
    return inputs, targets.masked_fill(in_prompt, ignore_index)
''',
    ),
    # ch07.extract_response
    Alternative(
        "ch07.extract_response",
        "only the new tokens decoded",
        r'''
def generate_response(model, tokenizer, entry, context_size, max_new_tokens=256, eos_id=50256, device="cpu"):
    """Decodes what the model added after the prompt's tokens."""
    prompt_ids = text_to_token_ids(format_input(entry), tokenizer).to(device)
    out = generate(model, prompt_ids, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=eos_id)
    new_text = tokenizer.decode(out[0, prompt_ids.shape[1]:].tolist())
    return new_text.replace("### Response:", "").strip()
''',
    ),
]

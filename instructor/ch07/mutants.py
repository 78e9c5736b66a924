"""Chapter 7's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch07.format_input": [
        Mutant(
            "an input section even when the input is empty",
            (('if entry["input"] else ""', 'if entry["input"] is not None else ""'),),
        ),
        Mutant(
            "the input section left out altogether",
            (('input_text = f"\\n\\n### Input:\\n{entry[\'input\']}" if entry["input"] else ""', 'input_text = ""'),),
        ),
        Mutant(
            "no space between the preamble's two sentences",
            (
                (
                    '"Below is an instruction that describes a task. "',
                    '"Below is an instruction that describes a task."',
                ),
            ),
        ),
        Mutant(
            "one newline before the instruction header instead of a blank line",
            (
                (
                    "f\"\\n\\n### Instruction:\\n{entry['instruction']}\"",
                    "f\"\\n### Instruction:\\n{entry['instruction']}\"",
                ),
            ),
        ),
        Mutant(
            "the input on the header's line",
            (("f\"\\n\\n### Input:\\n{entry['input']}\"", "f\"\\n\\n### Input: {entry['input']}\""),),
        ),
        Mutant(
            "the response header appended to the prompt",
            (
                (
                    "return instruction_text + input_text",
                    'return instruction_text + input_text + "\\n\\n### Response:\\n"',
                ),
            ),
        ),
        Mutant(
            "the input before the instruction",
            (("return instruction_text + input_text", "return input_text + instruction_text"),),
        ),
    ],
    "ch07.instruction_dataset": [
        Mutant(
            "no response header between the prompt and the output",
            (
                (
                    "full_text = format_input(entry) + f\"\\n\\n### Response:\\n{entry['output']}\"",
                    "full_text = format_input(entry) + f\"\\n\\n{entry['output']}\"",
                ),
            ),
        ),
        Mutant(
            "one newline before the response header",
            (
                (
                    "full_text = format_input(entry) + f\"\\n\\n### Response:\\n{entry['output']}\"",
                    "full_text = format_input(entry) + f\"\\n### Response:\\n{entry['output']}\"",
                ),
            ),
        ),
        Mutant(
            "only the prompt encoded, without the response",
            (
                (
                    "self.encoded_texts.append(tokenizer.encode(full_text))",
                    "self.encoded_texts.append(tokenizer.encode(format_input(entry)))",
                ),
            ),
        ),
        Mutant(
            "the output encoded without the prompt",
            (
                (
                    "self.encoded_texts.append(tokenizer.encode(full_text))",
                    "self.encoded_texts.append(tokenizer.encode(entry['output']))",
                ),
            ),
        ),
        Mutant(
            "encodes on every access instead of once in __init__",
            (
                (
                    "self.encoded_texts.append(tokenizer.encode(full_text))",
                    "self.encoded_texts.append(full_text)\n        self.tokenizer = tokenizer",
                ),
                ("return self.encoded_texts[index]", "return self.tokenizer.encode(self.encoded_texts[index])"),
            ),
        ),
        Mutant(
            "items returned as tensors",
            (("return self.encoded_texts[index]", "return torch.tensor(self.encoded_texts[index])"),),
        ),
        Mutant(
            "the prompt and the response encoded separately and concatenated",
            (
                (
                    "self.encoded_texts.append(tokenizer.encode(full_text))",
                    'self.encoded_texts.append(tokenizer.encode(format_input(entry) + "\\n\\n") '
                    "+ tokenizer.encode(full_text[len(format_input(entry)) + 2:]))",
                ),
            ),
        ),
        Mutant(
            "an end-of-text token appended to every example",
            (
                (
                    "self.encoded_texts.append(tokenizer.encode(full_text))",
                    "self.encoded_texts.append(tokenizer.encode(full_text) + [50256])",
                ),
            ),
        ),
    ],
    "ch07.collate": [
        Mutant(
            "ignore_index applied to the first end-of-text target too",
            (("targets[indices[1:]] = ignore_index", "targets[indices] = ignore_index"),),
        ),
        Mutant(
            "every padding target kept",
            (("        if indices.numel() > 1:\n            targets[indices[1:]] = ignore_index\n", ""),),
        ),
        Mutant(
            "the last end-of-text target kept instead of the first",
            (("targets[indices[1:]] = ignore_index", "targets[indices[:-1]] = ignore_index"),),
        ),
        Mutant(
            "targets not shifted",
            (("targets = torch.tensor(padded[1:])", "targets = torch.tensor(padded[:-1])"),),
        ),
        Mutant(
            "the padded example truncated to allowed_max_length before shifting",
            (
                (
                    "        inputs = torch.tensor(padded[:-1])\n",
                    "        if allowed_max_length is not None:\n            padded = padded[:allowed_max_length]\n"
                    "        inputs = torch.tensor(padded[:-1])\n",
                ),
            ),
        ),
        Mutant(
            "the example truncated to allowed_max_length before padding: a cut example gets an end-of-text target",
            (("new_item = item + [pad_token_id]", "new_item = item[:allowed_max_length] + [pad_token_id]"),),
        ),
        Mutant(
            "padding to the longest example without the extra end-of-text token",
            (
                (
                    "batch_max_length = max(len(item) + 1 for item in batch)",
                    "batch_max_length = max(len(item) for item in batch)",
                ),
            ),
        ),
        Mutant(
            "the mask looks for 50256 whatever pad_token_id is",
            (("torch.nonzero(targets == pad_token_id)", "torch.nonzero(targets == 50256)"),),
        ),
        Mutant(
            "masks with -100 whatever ignore_index is",
            (("targets[indices[1:]] = ignore_index", "targets[indices[1:]] = -100"),),
        ),
        Mutant(
            "appends the pad token to the batch's own list",
            (("new_item = item + [pad_token_id]", "item.append(pad_token_id)\n        new_item = item"),),
        ),
        Mutant(
            "masks the inputs' padding too",
            (
                (
                    "targets[indices[1:]] = ignore_index",
                    "targets[indices[1:]] = ignore_index\n            inputs[indices[1:]] = ignore_index",
                ),
            ),
        ),
        Mutant(
            "only the inputs truncated",
            (("            targets = targets[:allowed_max_length]\n", ""),),
        ),
        Mutant(
            "inputs and targets returned in the wrong order",
            (
                (
                    "return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)",
                    "return torch.stack(targets_lst).to(device), torch.stack(inputs_lst).to(device)",
                ),
            ),
        ),
        Mutant(
            "float tensors",
            (
                ("inputs = torch.tensor(padded[:-1])", "inputs = torch.tensor(padded[:-1], dtype=torch.float32)"),
                ("targets = torch.tensor(padded[1:])", "targets = torch.tensor(padded[1:], dtype=torch.float32)"),
            ),
        ),
        Mutant(
            "padded one token too long: the pad count taken from the example without its end-of-text token",
            (
                (
                    "[pad_token_id] * (batch_max_length - len(new_item))",
                    "[pad_token_id] * (batch_max_length - len(item))",
                ),
            ),
        ),
    ],
    "ch07.prompt_masking": [
        Mutant(
            "prompt mask off by one: the first response target is masked too",
            (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length] = ignore_index"),),
        ),
        Mutant(
            "prompt mask off by one: the last prompt target is kept",
            (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length - 2] = ignore_index"),),
        ),
        Mutant(
            "masks with -100 whatever ignore_index is",
            (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :prompt_length - 1] = -100"),),
        ),
        Mutant(
            "the prompt mask applied to the inputs",
            (("targets[row, :prompt_length - 1] = ignore_index", "inputs[row, :prompt_length - 1] = ignore_index"),),
        ),
        Mutant(
            "the prompt length counts the response header",
            (
                (
                    "[len(tokenizer.encode(format_input(entry))) for",
                    '[len(tokenizer.encode(format_input(entry) + "\\n\\n### Response:\\n")) for',
                ),
            ),
        ),
        Mutant(
            "the prompt length in characters",
            (("[len(tokenizer.encode(format_input(entry))) for", "[len(format_input(entry)) for"),),
        ),
        Mutant(
            "the pair returned as (token_ids, prompt_length)",
            (
                (
                    "return self.prompt_lengths[index], self.encoded_texts[index]",
                    "return self.encoded_texts[index], self.prompt_lengths[index]",
                ),
            ),
        ),
        Mutant(
            "allowed_max_length not passed on",
            (
                (
                    "custom_collate_fn([token_ids for _, token_ids in batch], pad_token_id, ignore_index,\n"
                    "                                        allowed_max_length, device)",
                    "custom_collate_fn([token_ids for _, token_ids in batch], pad_token_id, ignore_index, None, device)",
                ),
            ),
        ),
        Mutant(
            "every row masked with the first example's prompt length",
            (("targets[row, :prompt_length - 1] = ignore_index", "targets[row, :batch[0][0] - 1] = ignore_index"),),
        ),
        Mutant(
            "pad_token_id and ignore_index not passed on to custom_collate_fn",
            (
                (
                    "custom_collate_fn([token_ids for _, token_ids in batch], pad_token_id, ignore_index,\n"
                    "                                        allowed_max_length, device)",
                    "custom_collate_fn([token_ids for _, token_ids in batch],\n"
                    "                                        allowed_max_length=allowed_max_length, device=device)",
                ),
            ),
        ),
    ],
    "ch07.extract_response": [
        Mutant(
            "the response not stripped",
            (('.replace("### Response:", "").strip()', '.replace("### Response:", "")'),),
        ),
        Mutant(
            "only leading whitespace stripped",
            (('.replace("### Response:", "").strip()', '.replace("### Response:", "").lstrip()'),),
        ),
        Mutant(
            'the "### Response:" header kept',
            (('.replace("### Response:", "").strip()', ".strip()"),),
        ),
        Mutant(
            "the prompt cut off by its number of tokens instead of characters",
            (("generated_text[len(input_text):]", "generated_text[len(tokenizer.encode(input_text)):]"),),
        ),
        Mutant(
            "generation does not stop at the end-of-text token",
            (
                (
                    "max_new_tokens=max_new_tokens, context_size=context_size, eos_id=eos_id)",
                    "max_new_tokens=max_new_tokens, context_size=context_size)",
                ),
            ),
        ),
        Mutant(
            "samples with temperature and top-k instead of greedy decoding",
            (
                (
                    "context_size=context_size, eos_id=eos_id)",
                    "context_size=context_size, eos_id=eos_id, temperature=1.0, top_k=5)",
                ),
            ),
        ),
        Mutant(
            "max_new_tokens fixed at 256",
            (("max_new_tokens=max_new_tokens,", "max_new_tokens=256,"),),
        ),
        Mutant(
            "context_size not passed on: the model's whole context assumed to be 1,024 tokens",
            (("context_size=context_size,", "context_size=1024,"),),
        ),
        Mutant(
            "the whole generated text returned, prompt included",
            (("generated_text[len(input_text):]", "generated_text"),),
        ),
        Mutant(
            'the response header removed without its colon ("### Response")',
            (('.replace("### Response:", "")', '.replace("### Response", "")'),),
        ),
        Mutant(
            "the answer split off at the response header instead of cutting off the prompt's characters",
            (
                (
                    'generated_text[len(input_text):].replace("### Response:", "").strip()',
                    'generated_text.split("### Response:")[-1].strip()',
                ),
            ),
        ),
        Mutant(
            "the response header appended to the prompt before generating",
            (("input_text = format_input(entry)", 'input_text = format_input(entry) + "\\n\\n### Response:\\n"'),),
        ),
    ],
}

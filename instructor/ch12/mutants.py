"""Chapter 12's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_PROMPT_MASK = '            if mask_prompt_tokens:\n                mask[: len(item["prompt"])] = False\n'
_REFERENCE_FREEZE = "    for param in reference.parameters():\n        param.requires_grad = False\n"
_REFERENCE_NO_GRAD = "    with torch.no_grad():\n        reference_chosen"
_WHERE = "        token_log_probs = torch.where(keep, token_log_probs, torch.zeros_like(token_log_probs))\n"

MUTANTS: dict[str, list[Mutant]] = {
    "ch12.preference_data": [
        Mutant(
            "the prompt's token ids stop before the response header (the book's prompt)",
            (('"prompt": tokenizer.encode(prompt),', '"prompt": tokenizer.encode(format_input(entry)),'),),
        ),
        Mutant(
            "chosen and rejected responses swapped",
            (
                ('tokenizer.encode(prompt + entry["chosen"])', 'tokenizer.encode(prompt + entry["REJ"])'),
                ('tokenizer.encode(prompt + entry["rejected"])', 'tokenizer.encode(prompt + entry["chosen"])'),
                ('entry["REJ"]', 'entry["rejected"]'),
            ),
        ),
        Mutant(
            "the chapter 7 output used as the chosen response",
            (('tokenizer.encode(prompt + entry["chosen"])', 'tokenizer.encode(prompt + entry["output"])'),),
        ),
        Mutant(
            "the masks select the prompt too (mask_prompt_tokens ignored)",
            ((_PROMPT_MASK, ""),),
        ),
        Mutant(
            "the masks select the padding too",
            (("mask[: len(sequence)] = True", "mask[:] = True"),),
        ),
        Mutant(
            "the masks start two tokens late (the book's +2 after a prompt without the header)",
            (('mask[: len(item["prompt"])] = False', 'mask[: len(item["prompt"]) + 2] = False'),),
        ),
        Mutant(
            "one pad token too many (the book's longest + 1)",
            (
                (
                    'num_tokens = max(len(item[key]) for item in batch for key in ("chosen", "rejected"))',
                    'num_tokens = max(len(item[key]) + 1 for item in batch for key in ("chosen", "rejected"))',
                ),
            ),
        ),
        Mutant(
            "chosen and rejected each padded to their own longest length",
            (
                (
                    "            sequence = item[key]\n",
                    "            sequence = item[key]\n            num_tokens = max(len(other[key]) for other in batch)\n",
                ),
            ),
        ),
        Mutant(
            "the padding found by comparing with pad_token_id",
            (
                (
                    "            mask = torch.zeros(num_tokens, dtype=torch.bool)\n            mask[: len(sequence)] = True\n",
                    "            mask = torch.tensor(sequence + [pad_token_id] * (num_tokens - len(sequence))) != pad_token_id\n",
                ),
            ),
        ),
        Mutant(
            "allowed_max_length ignored",
            (
                (
                    "        if allowed_max_length is not None:\n            stacked = stacked[:, :allowed_max_length]\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "padded with 50256 whatever pad_token_id says",
            (("[pad_token_id] * (num_tokens - len(sequence))", "[50256] * (num_tokens - len(sequence))"),),
        ),
        Mutant(
            "__getitem__ tokenizes again on every access",
            (
                (
                    "        return self.encoded_texts[index]\n",
                    "        self.__init__(self.data, self.tokenizer)\n        return self.encoded_texts[index]\n",
                ),
                ("        self.data = data\n", "        self.data, self.tokenizer = data, tokenizer\n"),
            ),
        ),
    ],
    "ch12.logprobs": [
        Mutant(
            "averages over the selected tokens instead of summing (the book's bonus notebook)",
            (
                (
                    "    return token_log_probs.sum(dim=-1)\n",
                    "    if selection_mask is None:\n        return token_log_probs.mean(dim=-1)\n"
                    "    return token_log_probs.sum(dim=-1) / keep.sum(dim=-1)\n",
                ),
            ),
        ),
        Mutant(
            "logits and labels not shifted",
            (
                ("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.log_softmax(logits, dim=-1)"),
                ("index=labels[:, 1:].unsqueeze(-1)", "index=labels.unsqueeze(-1)"),
                ("keep = selection_mask[:, 1:].bool()", "keep = selection_mask.bool()"),
            ),
        ),
        Mutant(
            "the mask not shifted like the labels",
            (("keep = selection_mask[:, 1:].bool()", "keep = selection_mask[:, :-1].bool()"),),
        ),
        Mutant(
            "selection_mask ignored",
            ((_WHERE, ""),),
        ),
        Mutant(
            "log of softmax instead of log_softmax (underflows for large logits)",
            (("F.log_softmax(logits[:, :-1, :], dim=-1)", "torch.log(F.softmax(logits[:, :-1, :], dim=-1))"),),
        ),
        Mutant(
            "log_softmax over the positions instead of the vocabulary",
            (("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.log_softmax(logits[:, :-1, :], dim=1)"),),
        ),
        Mutant(
            "shifted the wrong way: the logits at t + 1 score the token at t",
            (
                ("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.log_softmax(logits[:, 1:, :], dim=-1)"),
                ("index=labels[:, 1:].unsqueeze(-1)", "index=labels[:, :-1].unsqueeze(-1)"),
                ("keep = selection_mask[:, 1:].bool()", "keep = selection_mask[:, :-1].bool()"),
            ),
        ),
        Mutant(
            "probabilities summed instead of log-probabilities",
            (("    return token_log_probs.sum(dim=-1)\n", "    return token_log_probs.exp().sum(dim=-1)\n"),),
        ),
    ],
    "ch12.dpo_loss": [
        Mutant(
            "log(sigmoid(x)) instead of F.logsigmoid (inf at extreme log-probabilities)",
            (
                (
                    "-F.logsigmoid(beta * (model_logratios - reference_logratios))",
                    "-torch.log(torch.sigmoid(beta * (model_logratios - reference_logratios)))",
                ),
            ),
        ),
        Mutant(
            "beta multiplies the log-sigmoid instead of its argument",
            (
                (
                    "-F.logsigmoid(beta * (model_logratios - reference_logratios))",
                    "-beta * F.logsigmoid(model_logratios - reference_logratios)",
                ),
            ),
        ),
        Mutant(
            "the sign of the argument flipped (prefers the rejected response)",
            (
                (
                    "-F.logsigmoid(beta * (model_logratios - reference_logratios))",
                    "-F.logsigmoid(beta * (reference_logratios - model_logratios))",
                ),
            ),
        ),
        Mutant(
            "the reference log-ratio added instead of subtracted",
            (("beta * (model_logratios - reference_logratios)", "beta * (model_logratios + reference_logratios)"),),
        ),
        Mutant(
            "the losses summed over the batch instead of averaged",
            (
                (
                    "return losses.mean(), chosen_rewards, rejected_rewards",
                    "return losses.sum(), chosen_rewards, rejected_rewards",
                ),
            ),
        ),
        Mutant(
            "the rewards not detached",
            (
                (
                    "(beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "beta * (model_chosen_logprobs - reference_chosen_logprobs)",
                ),
                (
                    "(beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "beta * (model_rejected_logprobs - reference_rejected_logprobs)",
                ),
            ),
        ),
        Mutant(
            "the rewards without the factor beta (the book's rewards)",
            (
                (
                    "(beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "(model_chosen_logprobs - reference_chosen_logprobs).detach()",
                ),
                (
                    "(beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "(model_rejected_logprobs - reference_rejected_logprobs).detach()",
                ),
            ),
        ),
        Mutant(
            "the rewards averaged over the batch (the book returns their means)",
            (
                (
                    "return losses.mean(), chosen_rewards, rejected_rewards",
                    "return losses.mean(), chosen_rewards.mean(), rejected_rewards.mean()",
                ),
            ),
        ),
        Mutant(
            "beta ignored: always 0.1",
            (("-F.logsigmoid(beta * (model_logratios", "-F.logsigmoid(0.1 * (model_logratios"),),
        ),
        Mutant(
            "the reference log-ratio taken rejected minus chosen",
            (
                (
                    "reference_logratios = reference_chosen_logprobs - reference_rejected_logprobs",
                    "reference_logratios = reference_rejected_logprobs - reference_chosen_logprobs",
                ),
            ),
        ),
    ],
    "ch12.reference_model": [
        Mutant(
            "the reference is the policy itself, not a copy",
            (("reference = copy.deepcopy(model)", "reference = model"),),
        ),
        Mutant(
            "a shallow copy: the reference shares the policy's parameters",
            (("reference = copy.deepcopy(model)", "reference = copy.copy(model)"),),
        ),
        Mutant(
            "the reference left in train mode",
            (("    return reference.eval()\n", "    return reference\n"),),
        ),
        Mutant(
            "the reference's parameters not frozen",
            ((_REFERENCE_FREEZE, ""),),
        ),
        Mutant(
            "the policy frozen instead of the copy",
            (("    for param in reference.parameters():\n", "    for param in model.parameters():\n"),),
        ),
        Mutant(
            "the policy put in eval mode too",
            (("    return reference.eval()\n", "    model.eval()\n    return reference.eval()\n"),),
        ),
        Mutant(
            "the reference run with gradients (no torch.no_grad())",
            ((_REFERENCE_NO_GRAD, "    if True:\n        reference_chosen"),),
        ),
        Mutant(
            "the chosen mask used for the rejected sequences",
            (
                (
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])',
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["chosen_mask"])',
                ),
            ),
        ),
        Mutant(
            "the policy used in place of the reference model",
            (
                ('compute_logprobs(reference_model(batch["chosen"])', 'compute_logprobs(policy_model(batch["chosen"])'),
                (
                    'compute_logprobs(reference_model(batch["rejected"])',
                    'compute_logprobs(policy_model(batch["rejected"])',
                ),
            ),
        ),
    ],
    "ch12.train_dpo": [
        Mutant(
            "a tie counted as a correct preference (>= instead of >)",
            (
                (
                    '"reward_accuracy": (chosen > rejected).float().mean().item()',
                    '"reward_accuracy": (chosen >= rejected).float().mean().item()',
                ),
            ),
        ),
        Mutant(
            "num_batches ignored: always the whole loader",
            (
                (
                    "num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))",
                    "num_batches = len(data_loader)",
                ),
            ),
        ),
        Mutant(
            "the batch losses summed instead of averaged",
            (('"loss": sum(losses) / len(losses),', '"loss": sum(losses),'),),
        ),
        Mutant(
            "the policy evaluated in train mode",
            (("    policy_model.eval()\n    with torch.no_grad():\n", "    with torch.no_grad():\n"),),
        ),
        Mutant(
            "the policy left in eval mode after evaluating",
            (("    policy_model.train()\n    return {**", "    return {**"),),
        ),
        Mutant(
            "the validation loss computed on the training loader",
            (("val = compute_dpo_loss_loader(val_loader,", "val = compute_dpo_loss_loader(train_loader,"),),
        ),
        Mutant(
            "eval_iter ignored on the training data",
            (
                (
                    "train = compute_dpo_loss_loader(train_loader, policy_model, reference_model, beta, num_batches=eval_iter)",
                    "train = compute_dpo_loss_loader(train_loader, policy_model, reference_model, beta)",
                ),
            ),
        ),
        Mutant(
            "the global step starts at 1 (the first evaluation comes late)",
            (("tokens_seen, global_step = 0, -1", "tokens_seen, global_step = 0, 0"),),
        ),
        Mutant(
            "gradients never zeroed (they accumulate over the steps)",
            (("            optimizer.zero_grad()\n", ""),),
        ),
        Mutant(
            "tokens_seen counts the chosen and the rejected tokens",
            (
                (
                    'tokens_seen += batch["chosen"].numel()',
                    'tokens_seen += batch["chosen"].numel() + batch["rejected"].numel()',
                ),
            ),
        ),
        Mutant(
            "the margin and accuracy recorded from the training data under the validation keys",
            (
                (
                    'tracking[f"{part}_{name}"].append(result[f"{part}_{key}"])',
                    'tracking[f"{part}_{name}"].append(result[f"train_{key}"])',
                ),
            ),
        ),
    ],
}

# Mistakes written by someone who saw only the exercise texts and the reference cells (duplicates of the
# ones above left out).
_POLICY_LINES = (
    '    policy_chosen = compute_logprobs(policy_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])\n'
    '    policy_rejected = compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])\n'
)
_EVAL_CALLS = (
    "        train = compute_dpo_loss_loader(train_loader, policy_model, reference_model, beta, num_batches=eval_iter)\n"
    "        val = compute_dpo_loss_loader(val_loader, policy_model, reference_model, beta, num_batches=eval_iter)\n"
)

_BLIND: dict[str, list[Mutant]] = {
    "ch12.preference_data": [
        Mutant(
            "prompt text without the response header (format_input alone)",
            (('prompt = format_input(entry) + "\\n\\n### Response:\\n"', "prompt = format_input(entry)"),),
        ),
        Mutant(
            "prompt and response tokenized separately and concatenated (encode(prompt) + encode(response))",
            (
                (
                    'tokenizer.encode(prompt + entry["chosen"])',
                    'tokenizer.encode(prompt) + tokenizer.encode(entry["chosen"])',
                ),
                (
                    'tokenizer.encode(prompt + entry["rejected"])',
                    'tokenizer.encode(prompt) + tokenizer.encode(entry["rejected"])',
                ),
            ),
        ),
        Mutant(
            "rejected sequence built from the chosen response (copy-paste)",
            (('tokenizer.encode(prompt + entry["rejected"])', 'tokenizer.encode(prompt + entry["chosen"])'),),
        ),
        Mutant(
            "an end-of-text token (50256) appended to the chosen and rejected sequences",
            (
                ('tokenizer.encode(prompt + entry["chosen"])', 'tokenizer.encode(prompt + entry["chosen"]) + [50256]'),
                (
                    'tokenizer.encode(prompt + entry["rejected"])',
                    'tokenizer.encode(prompt + entry["rejected"]) + [50256]',
                ),
            ),
        ),
        Mutant(
            "one extra pad token beyond the longest sequence (the book's +1 without trimming)",
            (
                (
                    'num_tokens = max(len(item[key]) for item in batch for key in ("chosen", "rejected"))',
                    'num_tokens = 1 + max(len(item[key]) for item in batch for key in ("chosen", "rejected"))',
                ),
            ),
        ),
        Mutant(
            "padded with 0 instead of pad_token_id",
            (("[pad_token_id] * (num_tokens - len(sequence))", "[0] * (num_tokens - len(sequence))"),),
        ),
        Mutant(
            "padded on the left instead of the right",
            (
                (
                    "sequence + [pad_token_id] * (num_tokens - len(sequence))",
                    "[pad_token_id] * (num_tokens - len(sequence)) + sequence",
                ),
            ),
        ),
        Mutant(
            "mask off by one: the first response token masked out with the prompt",
            (('mask[: len(item["prompt"])] = False', 'mask[: len(item["prompt"]) + 1] = False'),),
        ),
        Mutant(
            "mask off by one: the last prompt token kept in the mask (shifted for the labels already)",
            (('mask[: len(item["prompt"])] = False', 'mask[: len(item["prompt"]) - 1] = False'),),
        ),
        Mutant(
            "mask_prompt_tokens inverted",
            (("            if mask_prompt_tokens:\n", "            if not mask_prompt_tokens:\n"),),
        ),
        Mutant(
            "masks as int64 0/1 instead of bool",
            (("mask = torch.zeros(num_tokens, dtype=torch.bool)", "mask = torch.zeros(num_tokens, dtype=torch.long)"),),
        ),
        Mutant(
            "allowed_max_length applied to the token tensors only, the masks left full length",
            (
                (
                    "        if allowed_max_length is not None:\n",
                    '        if allowed_max_length is not None and not key.endswith("_mask"):\n',
                ),
            ),
        ),
        Mutant(
            "truncated to allowed_max_length - 1 positions",
            (("stacked[:, :allowed_max_length]", "stacked[:, :allowed_max_length - 1]"),),
        ),
        Mutant(
            "stacked tensors never moved to device",
            (("        collated[key] = stacked.to(device)\n", "        collated[key] = stacked\n"),),
        ),
    ],
    "ch12.logprobs": [
        Mutant(
            "logits shifted the wrong way (first position dropped instead of the last)",
            (("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.log_softmax(logits[:, 1:, :], dim=-1)"),),
        ),
        Mutant(
            "labels shifted the wrong way (labels[:, :-1])",
            (("index=labels[:, 1:].unsqueeze(-1)", "index=labels[:, :-1].unsqueeze(-1)"),),
        ),
        Mutant(
            "softmax probabilities gathered instead of log-probabilities",
            (("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.softmax(logits[:, :-1, :], dim=-1)"),),
        ),
        Mutant(
            "log-probabilities averaged over all positions instead of summed",
            (("return token_log_probs.sum(dim=-1)", "return token_log_probs.mean(dim=-1)"),),
        ),
        Mutant(
            "log-probabilities averaged over the response tokens (the book's bonus variant) instead of summed",
            (
                (
                    "return token_log_probs.sum(dim=-1)",
                    "if selection_mask is not None:\n"
                    "        return token_log_probs.sum(dim=-1) / keep.sum(dim=-1)\n"
                    "    return token_log_probs.mean(dim=-1)",
                ),
            ),
        ),
        Mutant(
            "summed over the whole batch (one scalar instead of one value per sequence)",
            (("return token_log_probs.sum(dim=-1)", "return token_log_probs.sum()"),),
        ),
        Mutant(
            "selection mask ignored",
            (("keep = selection_mask[:, 1:].bool()", "keep = torch.ones_like(token_log_probs, dtype=torch.bool)"),),
        ),
        Mutant(
            "mask inverted: the prompt and padding kept, the response dropped",
            (
                (
                    "torch.where(keep, token_log_probs, torch.zeros_like(token_log_probs))",
                    "torch.where(keep, torch.zeros_like(token_log_probs), token_log_probs)",
                ),
            ),
        ),
        Mutant(
            "negative log-likelihood returned (sign flipped)",
            (("return token_log_probs.sum(dim=-1)", "return -token_log_probs.sum(dim=-1)"),),
        ),
        Mutant(
            "0/1 mask used as the torch.where condition without .bool() (fails on integer or float masks)",
            (("keep = selection_mask[:, 1:].bool()", "keep = selection_mask[:, 1:]"),),
        ),
        Mutant(
            "logits detached: no gradient reaches the logits",
            (("F.log_softmax(logits[:, :-1, :], dim=-1)", "F.log_softmax(logits[:, :-1, :].detach(), dim=-1)"),),
        ),
    ],
    "ch12.dpo_loss": [
        Mutant(
            "DPO sign swapped: rejected minus chosen in the policy log-ratio",
            (
                (
                    "model_logratios = model_chosen_logprobs - model_rejected_logprobs",
                    "model_logratios = model_rejected_logprobs - model_chosen_logprobs",
                ),
            ),
        ),
        Mutant(
            "beta missing from the loss",
            (
                (
                    "F.logsigmoid(beta * (model_logratios - reference_logratios))",
                    "F.logsigmoid(model_logratios - reference_logratios)",
                ),
            ),
        ),
        Mutant(
            "beta applied to the policy log-ratio only",
            (
                (
                    "F.logsigmoid(beta * (model_logratios - reference_logratios))",
                    "F.logsigmoid(beta * model_logratios - reference_logratios)",
                ),
            ),
        ),
        Mutant(
            "minus sign dropped: logsigmoid itself used as the loss",
            (("losses = -F.logsigmoid(", "losses = F.logsigmoid("),),
        ),
        Mutant(
            "loss summed over the batch instead of averaged",
            (("return losses.mean(), chosen_rewards", "return losses.sum(), chosen_rewards"),),
        ),
        Mutant(
            "per-example losses returned (no mean over the batch)",
            (("return losses.mean(), chosen_rewards", "return losses, chosen_rewards"),),
        ),
        Mutant(
            "loss returned as a Python float (.item(), no gradient)",
            (("return losses.mean(), chosen_rewards", "return losses.mean().item(), chosen_rewards"),),
        ),
        Mutant(
            "rewards not detached (they carry the policy's gradient)",
            (
                (
                    "chosen_rewards = (beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "chosen_rewards = beta * (model_chosen_logprobs - reference_chosen_logprobs)",
                ),
                (
                    "rejected_rewards = (beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "rejected_rewards = beta * (model_rejected_logprobs - reference_rejected_logprobs)",
                ),
            ),
        ),
        Mutant(
            "rewards not scaled by beta",
            (
                (
                    "chosen_rewards = (beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "chosen_rewards = (model_chosen_logprobs - reference_chosen_logprobs).detach()",
                ),
                (
                    "rejected_rewards = (beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "rejected_rewards = (model_rejected_logprobs - reference_rejected_logprobs).detach()",
                ),
            ),
        ),
        Mutant(
            "rewards from the policy log-probabilities alone (reference not subtracted)",
            (
                (
                    "chosen_rewards = (beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "chosen_rewards = (beta * model_chosen_logprobs).detach()",
                ),
                (
                    "rejected_rewards = (beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "rejected_rewards = (beta * model_rejected_logprobs).detach()",
                ),
            ),
        ),
        Mutant(
            "chosen and rejected rewards returned in swapped order",
            (
                (
                    "return losses.mean(), chosen_rewards, rejected_rewards",
                    "return losses.mean(), rejected_rewards, chosen_rewards",
                ),
            ),
        ),
        Mutant(
            "rewards as reference minus policy (sign flipped)",
            (
                (
                    "chosen_rewards = (beta * (model_chosen_logprobs - reference_chosen_logprobs)).detach()",
                    "chosen_rewards = (beta * (reference_chosen_logprobs - model_chosen_logprobs)).detach()",
                ),
                (
                    "rejected_rewards = (beta * (model_rejected_logprobs - reference_rejected_logprobs)).detach()",
                    "rejected_rewards = (beta * (reference_rejected_logprobs - model_rejected_logprobs)).detach()",
                ),
            ),
        ),
    ],
    "ch12.reference_model": [
        Mutant(
            "reference model left in train mode",
            (("    return reference.eval()", "    return reference"),),
        ),
        Mutant(
            "the policy switched to eval mode before copying (the policy's mode changed)",
            (("reference = copy.deepcopy(model)", "model.eval()\n    reference = copy.deepcopy(model)"),),
        ),
        Mutant(
            "rejected sequences scored with the chosen mask",
            (
                (
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])',
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["chosen_mask"])',
                ),
                (
                    'batch["rejected"],\n                                              batch["rejected_mask"])',
                    'batch["rejected"],\n                                              batch["chosen_mask"])',
                ),
            ),
        ),
        Mutant(
            "no masks: the whole sequence scored, prompt and padding included",
            (
                (
                    'compute_logprobs(policy_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])',
                    'compute_logprobs(policy_model(batch["chosen"]), batch["chosen"])',
                ),
                (
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])',
                    'compute_logprobs(policy_model(batch["rejected"]), batch["rejected"])',
                ),
                (
                    'compute_logprobs(reference_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])',
                    'compute_logprobs(reference_model(batch["chosen"]), batch["chosen"])',
                ),
                (
                    'batch["rejected"],\n                                              batch["rejected_mask"])',
                    'batch["rejected"])',
                ),
            ),
        ),
        Mutant(
            "policy and reference log-probabilities passed to compute_dpo_loss in the wrong order",
            (
                (
                    "compute_dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)",
                    "compute_dpo_loss(reference_chosen, reference_rejected, policy_chosen, policy_rejected, beta)",
                ),
            ),
        ),
        Mutant(
            "beta not passed on (compute_dpo_loss's default 0.1 used)",
            (
                (
                    "compute_dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)",
                    "compute_dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected)",
                ),
            ),
        ),
        Mutant(
            "the policy's log-probabilities computed under torch.no_grad() too (the loss has no gradient)",
            (
                (
                    _POLICY_LINES + "    with torch.no_grad():\n",
                    "    with torch.no_grad():\n" + _POLICY_LINES.replace("    policy_", "        policy_"),
                ),
            ),
        ),
        Mutant(
            "reference_model.eval() called inside compute_dpo_loss_batch (changes the model's mode)",
            (
                (
                    "    with torch.no_grad():\n        reference_chosen",
                    "    reference_model.eval()\n    with torch.no_grad():\n        reference_chosen",
                ),
            ),
        ),
    ],
    "ch12.train_dpo": [
        Mutant(
            "evaluation without torch.no_grad()",
            (("    with torch.no_grad():\n        train = ", "    if True:\n        train = "),),
        ),
        Mutant(
            "reward margin computed as chosen + rejected",
            (
                (
                    '"reward_margin": chosen.mean().item() - rejected.mean().item()',
                    '"reward_margin": chosen.mean().item() + rejected.mean().item()',
                ),
            ),
        ),
        Mutant(
            "reward accuracy with >= (ties counted as correct)",
            (("(chosen > rejected).float().mean()", "(chosen >= rejected).float().mean()"),),
        ),
        Mutant(
            "loss summed over the batches instead of averaged",
            (('"loss": sum(losses) / len(losses)', '"loss": sum(losses)'),),
        ),
        Mutant(
            "off by one: num_batches + 1 batches used",
            (("        if index >= num_batches:\n", "        if index > num_batches:\n"),),
        ),
        Mutant(
            "evaluation ignores eval_iter (whole loaders)",
            ((_EVAL_CALLS, _EVAL_CALLS.replace(", num_batches=eval_iter", "")),),
        ),
        Mutant(
            "train and val loaders swapped in the evaluation",
            (
                (
                    _EVAL_CALLS,
                    _EVAL_CALLS.replace("(train_loader,", "(TMP,")
                    .replace("(val_loader,", "(train_loader,")
                    .replace("(TMP,", "(val_loader,"),
                ),
            ),
        ),
        Mutant(
            "optimizer.step() before loss.backward()",
            (
                (
                    "            loss.backward()\n            optimizer.step()\n",
                    "            optimizer.step()\n            loss.backward()\n",
                ),
            ),
        ),
        Mutant(
            "the reference model put in train mode with the policy every epoch",
            (
                (
                    "        policy_model.train()\n        for batch in train_loader:",
                    "        policy_model.train()\n        reference_model.train()\n        for batch in train_loader:",
                ),
            ),
        ),
        Mutant(
            "policy not put in train mode at the start of training",
            (
                (
                    "        policy_model.train()\n        for batch in train_loader:",
                    "        for batch in train_loader:",
                ),
            ),
        ),
    ],
}
MUTANTS = {exercise: mutants + _BLIND[exercise] for exercise, mutants in MUTANTS.items()}

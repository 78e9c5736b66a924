"""Chapter 5's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch05.token_conversion": [
        Mutant(
            "encodes without allowing <|endoftext|>",
            (('tokenizer.encode(text, allowed_special={"<|endoftext|>"})', "tokenizer.encode(text)"),),
        ),
        Mutant(
            "disallowed_special=() instead of allowed_special: <|endoftext|> is encoded as plain text",
            (
                (
                    'tokenizer.encode(text, allowed_special={"<|endoftext|>"})',
                    "tokenizer.encode(text, disallowed_special=())",
                ),
            ),
        ),
        Mutant(
            "no batch dimension: returns a (num_tokens,) tensor",
            (("return torch.tensor(encoded).unsqueeze(0)", "return torch.tensor(encoded)"),),
        ),
        Mutant(
            "batch dimension added last: (num_tokens, 1)",
            (("torch.tensor(encoded).unsqueeze(0)", "torch.tensor(encoded).unsqueeze(-1)"),),
        ),
        Mutant(
            "float tensor of token ids",
            (("torch.tensor(encoded).unsqueeze(0)", "torch.tensor(encoded, dtype=torch.float32).unsqueeze(0)"),),
        ),
        Mutant(
            "decodes the first row, which breaks on a plain (num_tokens,) tensor",
            (("flat = token_ids.reshape(-1)  # (num_tokens,)", "flat = token_ids[0]"),),
        ),
        Mutant(
            "squeeze() of every dimension: a single-token batch becomes a 0-d tensor",
            (("flat = token_ids.reshape(-1)  # (num_tokens,)", "flat = token_ids.squeeze()"),),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "decodes token by token and joins the pieces: a character whose bytes span two tokens "
            "(an emoji, some CJK characters) comes out as replacement characters",
            (
                (
                    "return tokenizer.decode(flat.tolist())",
                    'return "".join(tokenizer.decode([token_id]) for token_id in flat.tolist())',
                ),
            ),
        ),
        Mutant(
            "decodes each token's bytes on its own with errors='ignore': a character split over two tokens "
            "silently disappears",
            (
                (
                    "return tokenizer.decode(flat.tolist())",
                    'return "".join(tokenizer.decode_single_token_bytes(token_id).decode("utf-8", errors="ignore")\n'
                    "                   for token_id in flat.tolist())",
                ),
            ),
        ),
        Mutant(
            "decodes token_ids.squeeze(0) (the book's line): on a (1,) tensor holding a single id it "
            "removes the only dimension, tolist() gives a bare int and decode fails "
            "(if the reference's flat line is replaced, this is `flat = token_ids.squeeze(0)`)",
            (
                (
                    "return tokenizer.decode(flat.tolist())",
                    "return tokenizer.decode(token_ids.squeeze(0).tolist())",
                ),
            ),
        ),
        Mutant(
            "drops the batch dimension whenever shape[0] == 1: a (1,) tensor holding a single id "
            "is taken for a batch of one and indexed down to a 0-d tensor",
            (
                (
                    "return tokenizer.decode(flat.tolist())",
                    "if token_ids.shape[0] == 1:\n"
                    "        token_ids = token_ids[0]\n"
                    "    return tokenizer.decode(token_ids.tolist())",
                ),
            ),
        ),
    ],
    "ch05.loss": [
        Mutant(
            "the inputs used as targets: the loss of predicting the current token",
            (("target_batch.flatten())", "input_batch.flatten())"),),
        ),
        Mutant(
            "the targets shifted once more, though the loader already shifted them",
            (
                (
                    "cross_entropy(logits.flatten(0, 1), target_batch.flatten())",
                    "cross_entropy(logits[:, :-1].flatten(0, 1), target_batch[:, 1:].flatten())",
                ),
            ),
        ),
        Mutant(
            "logits flattened position-major, paired with the batch-major targets",
            (("logits.flatten(0, 1)", "logits.transpose(0, 1).flatten(0, 1)"),),
        ),
        Mutant(
            "cross_entropy on the unflattened (batch, num_tokens, vocab_size) logits",
            (("cross_entropy(logits.flatten(0, 1), target_batch.flatten())", "cross_entropy(logits, target_batch)"),),
        ),
        Mutant(
            "summed over positions instead of averaged",
            (("target_batch.flatten())", 'target_batch.flatten(), reduction="sum")'),),
        ),
        Mutant(
            "calc_loss_batch returns a Python float (.item()), cutting the graph",
            (
                (
                    "return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())",
                    "return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten()).item()",
                ),
                (
                    "calc_loss_batch(input_batch, target_batch, model, device).item()",
                    "calc_loss_batch(input_batch, target_batch, model, device)",
                ),
            ),
        ),
        Mutant(
            "the loader's sum divided by len(data_loader) whatever num_batches is",
            (("return total_loss / num_batches", "return total_loss / len(data_loader)"),),
        ),
        Mutant(
            "num_batches not capped at len(data_loader)",
            (("num_batches = min(num_batches, len(data_loader))", "num_batches = num_batches"),),
        ),
        Mutant(
            "no guard for an empty loader: divides by zero",
            (('    if len(data_loader) == 0:\n        return float("nan")\n', ""),),
        ),
        Mutant(
            "off by one: stops after num_batches + 1 batches",
            (("if i >= num_batches:", "if i > num_batches:"),),
        ),
        Mutant(
            "the loss of the last batch overwrites the running total",
            (("total_loss += calc_loss_batch", "total_loss = calc_loss_batch"),),
        ),
        Mutant(
            "calc_loss_loader wraps its average in a tensor",
            (("return total_loss / num_batches", "return torch.tensor(total_loss / num_batches)"),),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "calc_loss_loader forgets .item(): it sums tensors and returns a 0-d tensor instead of a float",
            (
                (
                    "calc_loss_batch(input_batch, target_batch, model, device).item()",
                    "calc_loss_batch(input_batch, target_batch, model, device)",
                ),
            ),
        ),
        Mutant(
            "calc_loss_loader collects the batch losses and returns torch.stack(losses).mean(), a tensor, not a float",
            (
                ("    total_loss = 0.0\n", "    losses = []\n"),
                (
                    "total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()",
                    "losses.append(calc_loss_batch(input_batch, target_batch, model, device))",
                ),
                ("return total_loss / num_batches", "return torch.stack(losses).mean()"),
            ),
        ),
    ],
    "ch05.train_loop": [
        Mutant(
            "optimizer.zero_grad() missing: gradients pile up over the steps",
            (("            optimizer.zero_grad()\n", ""),),
        ),
        Mutant(
            "evaluate_model without model.eval(): dropout stays on while evaluating",
            (
                (
                    "    ### BEGIN SOLUTION\n    model.eval()\n    with torch.no_grad():",
                    "    ### BEGIN SOLUTION\n    with torch.no_grad():",
                ),
            ),
        ),
        Mutant(
            "evaluate_model without torch.no_grad(): the evaluation builds gradient graphs",
            (
                (
                    "    with torch.no_grad():\n"
                    "        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)\n"
                    "        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)\n",
                    "    train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)\n"
                    "    val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)\n",
                ),
            ),
        ),
        Mutant(
            "evaluate_model leaves the model in eval mode",
            (("    model.train()\n    return train_loss, val_loss", "    return train_loss, val_loss"),),
        ),
        Mutant(
            "generate_and_print_sample leaves the model in eval mode",
            (('.replace("\\n", " "))\n    model.train()\n', '.replace("\\n", " "))\n'),),
        ),
        Mutant(
            "generate_and_print_sample generates in train mode (dropout on)",
            (
                (
                    "    model.eval()\n    context_size = model.pos_emb.weight.shape[0]",
                    "    context_size = model.pos_emb.weight.shape[0]",
                ),
            ),
        ),
        Mutant(
            "steps counted from 1: the first evaluation comes after eval_freq steps instead of after step 0",
            (("tokens_seen, global_step = 0, -1", "tokens_seen, global_step = 0, 0"),),
        ),
        Mutant(
            "evaluates before the optimizer step instead of after it",
            (
                (
                    "            optimizer.zero_grad()\n"
                    "            loss = calc_loss_batch(input_batch, target_batch, model, device)\n"
                    "            loss.backward()\n"
                    "            optimizer.step()\n"
                    "            tokens_seen += input_batch.numel()\n"
                    "            global_step += 1\n"
                    "            if global_step % eval_freq == 0:\n"
                    "                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)\n",
                    "            tokens_seen += input_batch.numel()\n"
                    "            global_step += 1\n"
                    "            if global_step % eval_freq == 0:\n"
                    "                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)\n",
                ),
                (
                    '                print(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")\n',
                    '                print(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")\n'
                    "            optimizer.zero_grad()\n"
                    "            loss = calc_loss_batch(input_batch, target_batch, model, device)\n"
                    "            loss.backward()\n"
                    "            optimizer.step()\n",
                ),
            ),
        ),
        Mutant(
            "tokens seen counted after the evaluation, so this step's batch is missing",
            (
                (
                    "            tokens_seen += input_batch.numel()\n            global_step += 1\n",
                    "            global_step += 1\n",
                ),
                (
                    "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                    "            tokens_seen += input_batch.numel()\n"
                    "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                ),
            ),
        ),
        Mutant(
            "the step number restarts from 0 in every epoch",
            (
                (
                    "    tokens_seen, global_step = 0, -1\n    for epoch in range(num_epochs):\n        model.train()\n",
                    "    tokens_seen = 0\n    for epoch in range(num_epochs):\n        global_step = -1\n        model.train()\n",
                ),
            ),
        ),
        Mutant(
            "a new AdamW built at the start of every epoch instead of the optimizer passed in",
            (
                (
                    "    for epoch in range(num_epochs):\n        model.train()\n",
                    "    for epoch in range(num_epochs):\n        model.train()\n"
                    "        optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)\n",
                ),
            ),
        ),
        Mutant(
            "a new AdamW built every epoch, loaded with the old one's state (which has other parameter groups)",
            (
                (
                    "    for epoch in range(num_epochs):\n        model.train()\n",
                    "    for epoch in range(num_epochs):\n        model.train()\n"
                    "        rebuilt = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)\n"
                    "        rebuilt.load_state_dict(optimizer.state_dict())\n"
                    "        optimizer = rebuilt\n",
                ),
            ),
        ),
        Mutant(
            "tokens seen counts sequences (batch size) instead of tokens",
            (("tokens_seen += input_batch.numel()", "tokens_seen += input_batch.shape[0]"),),
        ),
        Mutant(
            "optimizer.step() before loss.backward(): each step uses the previous batch's gradients",
            (
                (
                    "            loss.backward()\n            optimizer.step()\n",
                    "            optimizer.step()\n            loss.backward()\n",
                ),
            ),
        ),
        Mutant(
            "evaluate_model returns (val_loss, train_loss)",
            (("    return train_loss, val_loss", "    return val_loss, train_loss"),),
        ),
        Mutant(
            "evaluate_model ignores eval_iter and averages every batch",
            (
                (
                    "train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)",
                    "train_loss = calc_loss_loader(train_loader, model, device)",
                ),
                (
                    "val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)",
                    "val_loss = calc_loss_loader(val_loader, model, device)",
                ),
            ),
        ),
        Mutant(
            "context size read from pos_emb's embedding dimension (shape[1])",
            (("context_size = model.pos_emb.weight.shape[0]", "context_size = model.pos_emb.weight.shape[1]"),),
        ),
        Mutant(
            "the sample has 25 new tokens instead of 50",
            (("max_new_tokens=50", "max_new_tokens=25"),),
        ),
        Mutant(
            "newlines of the sample printed as they are",
            (
                (
                    'print(token_ids_to_text(token_ids, tokenizer).replace("\\n", " "))',
                    "print(token_ids_to_text(token_ids, tokenizer))",
                ),
            ),
        ),
        Mutant(
            "the sample printed once after training instead of after every epoch",
            (
                (
                    "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                    "    generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                ),
            ),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "train_model_simple never calls model.train() itself: a model handed over in eval mode "
            "takes its first step with dropout off",
            (
                (
                    "        model.train()\n        for input_batch, target_batch in train_loader:\n",
                    "        for input_batch, target_batch in train_loader:\n",
                ),
            ),
        ),
    ],
    "ch05.generate": [
        Mutant(
            "top-k keeps k + 1 tokens",
            (("torch.topk(logits, top_k)", "torch.topk(logits, top_k + 1)"),),
        ),
        Mutant(
            "top-k masks the k-th largest logit too (<= instead of <), keeping k - 1 tokens",
            (("torch.where(logits < min_val", "torch.where(logits <= min_val"),),
        ),
        Mutant(
            "top-k masks with 0 instead of -inf",
            (('torch.tensor(float("-inf"))', "torch.tensor(0.0)"),),
        ),
        Mutant(
            "temperature applied after the softmax (multinomial renormalises it away)",
            (("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits, dim=-1) / temperature"),),
        ),
        Mutant(
            "logits multiplied by the temperature instead of divided",
            (("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits * temperature, dim=-1)"),),
        ),
        Mutant(
            "eos_id appended before stopping",
            (
                (
                    "        if eos_id is not None and idx_next.item() == eos_id:\n            break\n        idx = torch.cat((idx, idx_next), dim=1)\n",
                    "        idx = torch.cat((idx, idx_next), dim=1)\n        if eos_id is not None and idx_next.item() == eos_id:\n            break\n",
                ),
            ),
        ),
        Mutant(
            "eos_id ignored",
            (("        if eos_id is not None and idx_next.item() == eos_id:\n            break\n", ""),),
        ),
        Mutant(
            "context not cropped: the whole sequence is fed to the model",
            (("idx_cond = idx[:, -context_size:]", "idx_cond = idx"),),
        ),
        Mutant(
            "the first context_size tokens kept instead of the last",
            (("idx_cond = idx[:, -context_size:]", "idx_cond = idx[:, :context_size]"),),
        ),
        Mutant(
            "the first position's logits instead of the last's",
            (("logits = logits[:, -1, :]", "logits = logits[:, 0, :]"),),
        ),
        Mutant(
            "sampling whenever a temperature is given, so temperature 0 divides by zero",
            (("if temperature > 0.0:", "if temperature is not None:"),),
        ),
        Mutant(
            "the model run with gradients enabled",
            (
                (
                    "        with torch.no_grad():\n            logits = model(idx_cond)\n",
                    "        logits = model(idx_cond)\n",
                ),
            ),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "eos check written `if eos_id and ...`: eos_id=0 is falsy, so it never stops generation",
            (
                (
                    "if eos_id is not None and idx_next.item() == eos_id:",
                    "if eos_id and idx_next.item() == eos_id:",
                ),
            ),
        ),
        Mutant(
            "`stop_id = eos_id or -1` as the 'no eos' default: eos_id=0 becomes -1 and never stops generation",
            (
                (
                    "    for _ in range(max_new_tokens):\n",
                    "    stop_id = eos_id or -1\n    for _ in range(max_new_tokens):\n",
                ),
                (
                    "if eos_id is not None and idx_next.item() == eos_id:",
                    "if idx_next.item() == stop_id:",
                ),
            ),
        ),
    ],
    "ch05.checkpoint": [
        Mutant(
            "checkpoint without the optimizer's state",
            (
                (
                    'torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()}, path)',
                    'torch.save({"model_state_dict": model.state_dict()}, path)',
                ),
                ('    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])\n', ""),
            ),
        ),
        Mutant(
            "optimizer saved but not restored",
            (('    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])\n', ""),),
        ),
        Mutant(
            "model saved but not restored",
            (('    model.load_state_dict(checkpoint["model_state_dict"])\n', ""),),
        ),
        Mutant(
            "load_checkpoint restores into a new optimizer instead of the one passed in",
            (
                (
                    '    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])',
                    '    optimizer = torch.optim.AdamW(model.parameters())\n    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])',
                ),
            ),
        ),
        Mutant(
            "the model object saved instead of its state dict",
            (
                ('{"model_state_dict": model.state_dict(),', '{"model_state_dict": model,'),
                (
                    '    model.load_state_dict(checkpoint["model_state_dict"])',
                    '    model.load_state_dict(checkpoint["model_state_dict"].state_dict())',
                ),
                ("map_location=device, weights_only=True)", "map_location=device, weights_only=False)"),
            ),
        ),
        Mutant(
            "keys 'model' and 'optimizer' instead of the book's",
            (
                (
                    '{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()}',
                    '{"model": model.state_dict(), "optimizer": optimizer.state_dict()}',
                ),
                ('checkpoint["model_state_dict"]', 'checkpoint["model"]'),
                ('checkpoint["optimizer_state_dict"]', 'checkpoint["optimizer"]'),
            ),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "load_checkpoint ends with model.train() (as the book's resume snippet does): "
            "a model that was in eval mode comes back in train mode",
            (
                (
                    '    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])\n',
                    '    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])\n    model.train()\n',
                ),
            ),
        ),
        Mutant(
            "load_checkpoint calls model.eval() after loading the weights: a model that was training "
            "comes back in eval mode (dropout off)",
            (
                (
                    '    model.load_state_dict(checkpoint["model_state_dict"])\n',
                    '    model.load_state_dict(checkpoint["model_state_dict"])\n    model.eval()\n',
                ),
            ),
        ),
        Mutant(
            "torch.load with weights_only=False: a checkpoint that carries code is unpickled and run",
            (
                (
                    "map_location=device, weights_only=True)",
                    "map_location=device, weights_only=False)",
                ),
            ),
        ),
        Mutant(
            "falls back to weights_only=False when the safe load fails: a file that carries code "
            "is loaded anyway instead of refused",
            (
                (
                    "    checkpoint = torch.load(path, map_location=device, weights_only=True)\n",
                    "    try:\n"
                    "        checkpoint = torch.load(path, map_location=device, weights_only=True)\n"
                    "    except Exception:\n"
                    "        checkpoint = torch.load(path, map_location=device, weights_only=False)\n",
                ),
            ),
        ),
    ],
    "ch05.training_extras": [
        Mutant(
            "warm-up off by one: step 0 already has one increment",
            (
                (
                    "return initial_lr + step * (peak_lr - initial_lr) / warmup_steps",
                    "return initial_lr + (step + 1) * (peak_lr - initial_lr) / warmup_steps",
                ),
            ),
        ),
        Mutant(
            "cosine progress over total_steps instead of the decay steps",
            (
                (
                    "progress = (step - warmup_steps) / (total_steps - warmup_steps)",
                    "progress = (step - warmup_steps) / total_steps",
                ),
            ),
        ),
        Mutant(
            "cosine progress from step 0 instead of from the end of warm-up",
            (("progress = (step - warmup_steps) / (total_steps - warmup_steps)", "progress = step / total_steps"),),
        ),
        Mutant(
            "cosine without the factor 0.5: decays to below min_lr",
            (("(peak_lr - min_lr) * 0.5 * (1 + math.cos", "(peak_lr - min_lr) * (1 + math.cos"),),
        ),
        Mutant(
            "decays towards 0, min_lr ignored",
            (("return min_lr + (peak_lr - min_lr) * 0.5 *", "return peak_lr * 0.5 *"),),
        ),
        Mutant(
            "gradients clipped during warm-up too",
            (
                (
                    "            if global_step >= warmup_steps:\n                torch.nn.utils.clip_grad_norm_",
                    "            if True:\n                torch.nn.utils.clip_grad_norm_",
                ),
            ),
        ),
        Mutant(
            "clipping starts one step late (> instead of >=)",
            (("if global_step >= warmup_steps:", "if global_step > warmup_steps:"),),
        ),
        Mutant(
            "gradients clipped after optimizer.step()",
            (
                (
                    "            if global_step >= warmup_steps:\n"
                    "                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
                    "            optimizer.step()\n",
                    "            optimizer.step()\n"
                    "            if global_step >= warmup_steps:\n"
                    "                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n",
                ),
            ),
        ),
        Mutant(
            "clip_grad_value_ instead of clip_grad_norm_",
            (
                (
                    "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)",
                    "torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)",
                ),
            ),
        ),
        Mutant(
            "peak learning rate hard-coded to the book's 0.001",
            (('peak_lr = optimizer.param_groups[0]["lr"]', "peak_lr = 0.001"),),
        ),
        Mutant(
            "peak learning rate read from the optimizer at every step, after the schedule changed it",
            (
                ('    peak_lr = optimizer.param_groups[0]["lr"]\n', ""),
                (
                    "            lr = learning_rate_at(global_step, peak_lr,",
                    '            peak_lr = optimizer.param_groups[0]["lr"]\n            lr = learning_rate_at(global_step, peak_lr,',
                ),
            ),
        ),
        Mutant(
            "total steps of one epoch instead of all epochs",
            (("total_steps = len(train_loader) * n_epochs", "total_steps = len(train_loader)"),),
        ),
        Mutant(
            "initial_lr and min_lr not passed on: the defaults are used",
            (
                (
                    "learning_rate_at(global_step, peak_lr, warmup_steps, total_steps, initial_lr, min_lr)",
                    "learning_rate_at(global_step, peak_lr, warmup_steps, total_steps)",
                ),
            ),
        ),
        Mutant(
            "only the first parameter group gets the new learning rate",
            (
                (
                    '            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n',
                    '            optimizer.param_groups[0]["lr"] = lr\n',
                ),
            ),
        ),
        Mutant(
            "learning rate tracked but never set in the optimizer",
            (('            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n', ""),),
        ),
        Mutant(
            "the schedule lags one step: the rate is set after optimizer.step()",
            (
                (
                    '            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n',
                    "",
                ),
                (
                    "            optimizer.step()\n",
                    '            optimizer.step()\n            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n',
                ),
            ),
        ),
        Mutant(
            "optimizer.zero_grad() missing",
            (("            optimizer.zero_grad()\n", ""),),
        ),
        Mutant(
            "tokens seen counted after the evaluation",
            (
                ("            tokens_seen += input_batch.numel()\n", ""),
                (
                    "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen, track_lrs",
                    "            tokens_seen += input_batch.numel()\n"
                    "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen, track_lrs",
                ),
            ),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "warm-up starts from 0 instead of initial_lr (peak_lr * step / warmup_steps)",
            (
                (
                    "return initial_lr + step * (peak_lr - initial_lr) / warmup_steps",
                    "return peak_lr * step / warmup_steps",
                ),
            ),
        ),
        Mutant(
            "cosine progress divided by (total_steps - warmup_steps - 1), so the rate already hits min_lr "
            "at the last step counted from 0",
            (
                (
                    "progress = (step - warmup_steps) / (total_steps - warmup_steps)",
                    "progress = (step - warmup_steps) / (total_steps - warmup_steps - 1)",
                ),
            ),
        ),
    ],
    "ch05.load_gpt2_weights": [
        Mutant(
            "c_attn split in the order key, query, value",
            (
                (
                    'q_w, k_w, v_w = params[prefix + "attn.c_attn.weight"]',
                    'k_w, q_w, v_w = params[prefix + "attn.c_attn.weight"]',
                ),
                (
                    'q_b, k_b, v_b = params[prefix + "attn.c_attn.bias"]',
                    'k_b, q_b, v_b = params[prefix + "attn.c_attn.bias"]',
                ),
            ),
        ),
        Mutant(
            "c_attn split in the order query, value, key",
            (
                (
                    'q_w, k_w, v_w = params[prefix + "attn.c_attn.weight"]',
                    'q_w, v_w, k_w = params[prefix + "attn.c_attn.weight"]',
                ),
                (
                    'q_b, k_b, v_b = params[prefix + "attn.c_attn.bias"]',
                    'q_b, v_b, k_b = params[prefix + "attn.c_attn.bias"]',
                ),
            ),
        ),
        Mutant(
            "c_attn split along the first dimension",
            (
                (
                    'params[prefix + "attn.c_attn.weight"].chunk(3, dim=-1)',
                    'params[prefix + "attn.c_attn.weight"].chunk(3, dim=0)',
                ),
            ),
        ),
        Mutant(
            "the query, key and value weights not transposed (square, so the shapes fit)",
            (
                (
                    'assign(linear.weight, weight.T, prefix + "attn.c_attn.weight")',
                    'assign(linear.weight, weight, prefix + "attn.c_attn.weight")',
                ),
            ),
        ),
        Mutant(
            "attn.c_proj not transposed (square, so the shape fits)",
            (
                (
                    '        for linear, name in ((block.att.out_proj, "attn.c_proj"), (block.ff.layers[0], "mlp.c_fc"),',
                    '        assign(block.att.out_proj.weight, params[prefix + "attn.c_proj.weight"], prefix + "attn.c_proj.weight")\n'
                    '        assign(block.att.out_proj.bias, params[prefix + "attn.c_proj.bias"], prefix + "attn.c_proj.bias")\n'
                    '        for linear, name in ((block.ff.layers[0], "mlp.c_fc"),',
                ),
            ),
        ),
        Mutant(
            "out_head not tied to wte: it keeps its random weights",
            (('    assign(gpt.out_head.weight, params["wte.weight"], "wte.weight")\n', ""),),
        ),
        Mutant(
            "ln_1 and ln_2 swapped",
            (('((block.norm1, "ln_1"), (block.norm2, "ln_2"))', '((block.norm1, "ln_2"), (block.norm2, "ln_1"))'),),
        ),
        Mutant(
            "LayerNorm weight and bias swapped (scale <- bias, shift <- weight)",
            (
                (
                    'assign(norm.scale, params[prefix + name + ".weight"], prefix + name + ".weight")',
                    'assign(norm.scale, params[prefix + name + ".bias"], prefix + name + ".bias")',
                ),
                (
                    'assign(norm.shift, params[prefix + name + ".bias"], prefix + name + ".bias")',
                    'assign(norm.shift, params[prefix + name + ".weight"], prefix + name + ".weight")',
                ),
            ),
        ),
        Mutant(
            "the attention's biases not loaded",
            (('            assign(linear.bias, bias, prefix + "attn.c_attn.bias")\n', ""),),
        ),
        Mutant(
            "no projection's bias loaded",
            (
                ('            assign(linear.bias, bias, prefix + "attn.c_attn.bias")\n', ""),
                ('            assign(linear.bias, params[prefix + name + ".bias"], prefix + name + ".bias")\n', ""),
            ),
        ),
        Mutant(
            "ln_f not loaded",
            (
                ('    assign(gpt.final_norm.scale, params["ln_f.weight"], "ln_f.weight")\n', ""),
                ('    assign(gpt.final_norm.shift, params["ln_f.bias"], "ln_f.bias")\n', ""),
            ),
        ),
        Mutant(
            "no shape check: every tensor assigned as a new nn.Parameter",
            (
                (
                    "    def assign(target: torch.Tensor, source: torch.Tensor, name: str) -> None:\n"
                    "        if target.shape != source.shape:\n"
                    '            raise ValueError(f"{name}: GPT-2 has shape {tuple(source.shape)}, the model {tuple(target.shape)}")\n'
                    "        with torch.no_grad():\n"
                    "            target.copy_(source)\n",
                    "    def assign(target: torch.Tensor, source: torch.Tensor, name: str) -> None:\n"
                    "        for module in gpt.modules():\n"
                    "            for attribute, param in list(module.named_parameters(recurse=False)):\n"
                    "                if param is target:\n"
                    "                    setattr(module, attribute, nn.Parameter(source.clone()))\n",
                ),
            ),
        ),
        # Written blind to the checks (the course's blind-mutant pass).
        Mutant(
            "off by one over the blocks: the last transformer block keeps its random weights",
            (
                (
                    "for i, block in enumerate(gpt.trf_blocks):",
                    "for i, block in enumerate(gpt.trf_blocks[:-1]):",
                ),
            ),
        ),
    ],
}

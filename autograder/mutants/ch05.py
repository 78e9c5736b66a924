"""Chapter 5 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch05.token_conversion
    Mutant(
        "ch05.token_conversion",
        "encodes without allowing <|endoftext|>",
        (('tokenizer.encode(text, allowed_special={"<|endoftext|>"})', "tokenizer.encode(text)"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "disallowed_special=() instead of allowed_special: <|endoftext|> is encoded as plain text",
        (('tokenizer.encode(text, allowed_special={"<|endoftext|>"})', "tokenizer.encode(text, disallowed_special=())"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "no batch dimension: returns a (num_tokens,) tensor",
        (("return torch.tensor(encoded).unsqueeze(0)", "return torch.tensor(encoded)"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "batch dimension added last: (num_tokens, 1)",
        (("torch.tensor(encoded).unsqueeze(0)", "torch.tensor(encoded).unsqueeze(-1)"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "float tensor of token ids",
        (("torch.tensor(encoded).unsqueeze(0)", "torch.tensor(encoded, dtype=torch.float32).unsqueeze(0)"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "decodes the first row, which breaks on a plain (num_tokens,) tensor",
        (("flat = token_ids.squeeze(0)", "flat = token_ids[0]"),),
    ),
    Mutant(
        "ch05.token_conversion",
        "squeeze() of every dimension: a single-token batch becomes a 0-d tensor",
        (("flat = token_ids.squeeze(0)", "flat = token_ids.squeeze()"),),
    ),
    # ch05.loss
    Mutant(
        "ch05.loss",
        "the inputs used as targets: the loss of predicting the current token",
        (("target_batch.flatten())", "input_batch.flatten())"),),
    ),
    Mutant(
        "ch05.loss",
        "the targets shifted once more, though the loader already shifted them",
        (
            (
                "cross_entropy(logits.flatten(0, 1), target_batch.flatten())",
                "cross_entropy(logits[:, :-1].flatten(0, 1), target_batch[:, 1:].flatten())",
            ),
        ),
    ),
    Mutant(
        "ch05.loss",
        "logits flattened position-major, paired with the batch-major targets",
        (("logits.flatten(0, 1)", "logits.transpose(0, 1).flatten(0, 1)"),),
    ),
    Mutant(
        "ch05.loss",
        "cross_entropy on the unflattened (batch, num_tokens, vocab_size) logits",
        (("cross_entropy(logits.flatten(0, 1), target_batch.flatten())", "cross_entropy(logits, target_batch)"),),
    ),
    Mutant(
        "ch05.loss",
        "summed over positions instead of averaged",
        (("target_batch.flatten())", "target_batch.flatten(), reduction=\"sum\")"),),
    ),
    Mutant(
        "ch05.loss",
        "calc_loss_batch returns a Python float (.item()), cutting the graph",
        (
            ("return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())",
             "return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten()).item()"),
            ("calc_loss_batch(input_batch, target_batch, model, device).item()",
             "calc_loss_batch(input_batch, target_batch, model, device)"),
        ),
    ),
    Mutant(
        "ch05.loss",
        "the loader's sum divided by len(data_loader) whatever num_batches is",
        (("return total_loss / num_batches", "return total_loss / len(data_loader)"),),
    ),
    Mutant(
        "ch05.loss",
        "num_batches not capped at len(data_loader)",
        (("num_batches = min(num_batches, len(data_loader))", "num_batches = num_batches"),),
    ),
    Mutant(
        "ch05.loss",
        "no guard for an empty loader: divides by zero",
        (('    if len(data_loader) == 0:\n        return float("nan")\n', ""),),
    ),
    Mutant(
        "ch05.loss",
        "off by one: stops after num_batches + 1 batches",
        (("if i >= num_batches:", "if i > num_batches:"),),
    ),
    Mutant(
        "ch05.loss",
        "the loss of the last batch overwrites the running total",
        (("total_loss += calc_loss_batch", "total_loss = calc_loss_batch"),),
    ),
    # ch05.train_loop
    Mutant(
        "ch05.train_loop",
        "optimizer.zero_grad() missing: gradients pile up over the steps",
        (("            optimizer.zero_grad()\n", ""),),
    ),
    Mutant(
        "ch05.train_loop",
        "evaluate_model without model.eval(): dropout stays on while evaluating",
        (("    ### BEGIN SOLUTION\n    model.eval()\n    with torch.no_grad():", "    ### BEGIN SOLUTION\n    with torch.no_grad():"),),
    ),
    Mutant(
        "ch05.train_loop",
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
        "ch05.train_loop",
        "evaluate_model leaves the model in eval mode",
        (("    model.train()\n    return train_loss, val_loss", "    return train_loss, val_loss"),),
    ),
    Mutant(
        "ch05.train_loop",
        "generate_and_print_sample leaves the model in eval mode",
        (('.replace("\\n", " "))\n    model.train()\n', '.replace("\\n", " "))\n'),),
    ),
    Mutant(
        "ch05.train_loop",
        "generate_and_print_sample generates in train mode (dropout on)",
        (("    model.eval()\n    context_size = model.pos_emb.weight.shape[0]", "    context_size = model.pos_emb.weight.shape[0]"),),
    ),
    Mutant(
        "ch05.train_loop",
        "steps counted from 1: the first evaluation comes after eval_freq steps instead of after step 0",
        (("tokens_seen, global_step = 0, -1", "tokens_seen, global_step = 0, 0"),),
    ),
    Mutant(
        "ch05.train_loop",
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
                "                print(f\"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}\")\n",
                "                print(f\"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}\")\n"
                "            optimizer.zero_grad()\n"
                "            loss = calc_loss_batch(input_batch, target_batch, model, device)\n"
                "            loss.backward()\n"
                "            optimizer.step()\n",
            ),
        ),
    ),
    Mutant(
        "ch05.train_loop",
        "tokens seen counted after the evaluation, so this step's batch is missing",
        (
            ("            tokens_seen += input_batch.numel()\n            global_step += 1\n", "            global_step += 1\n"),
            (
                "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                "            tokens_seen += input_batch.numel()\n"
                "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
            ),
        ),
    ),
    Mutant(
        "ch05.train_loop",
        "tokens seen counts sequences (batch size) instead of tokens",
        (("tokens_seen += input_batch.numel()", "tokens_seen += input_batch.shape[0]"),),
    ),
    Mutant(
        "ch05.train_loop",
        "optimizer.step() before loss.backward(): each step uses the previous batch's gradients",
        (("            loss.backward()\n            optimizer.step()\n", "            optimizer.step()\n            loss.backward()\n"),),
    ),
    Mutant(
        "ch05.train_loop",
        "evaluate_model returns (val_loss, train_loss)",
        (("    return train_loss, val_loss", "    return val_loss, train_loss"),),
    ),
    Mutant(
        "ch05.train_loop",
        "evaluate_model ignores eval_iter and averages every batch",
        (
            ("train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)",
             "train_loss = calc_loss_loader(train_loader, model, device)"),
            ("val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)",
             "val_loss = calc_loss_loader(val_loader, model, device)"),
        ),
    ),
    Mutant(
        "ch05.train_loop",
        "context size read from pos_emb's embedding dimension (shape[1])",
        (("context_size = model.pos_emb.weight.shape[0]", "context_size = model.pos_emb.weight.shape[1]"),),
    ),
    Mutant(
        "ch05.train_loop",
        "the sample has 25 new tokens instead of 50",
        (("max_new_tokens=50", "max_new_tokens=25"),),
    ),
    Mutant(
        "ch05.train_loop",
        "newlines of the sample printed as they are",
        (('print(token_ids_to_text(token_ids, tokenizer).replace("\\n", " "))', "print(token_ids_to_text(token_ids, tokenizer))"),),
    ),
    Mutant(
        "ch05.train_loop",
        "the sample printed once after training instead of after every epoch",
        (
            (
                "        generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
                "    generate_and_print_sample(model, tokenizer, device, start_context)\n    return train_losses, val_losses, track_tokens_seen",
            ),
        ),
    ),
    # ch05.generate
    Mutant(
        "ch05.generate",
        "top-k keeps k + 1 tokens",
        (("torch.topk(logits, top_k)", "torch.topk(logits, top_k + 1)"),),
    ),
    Mutant(
        "ch05.generate",
        "top-k masks the k-th largest logit too (<= instead of <), keeping k - 1 tokens",
        (("torch.where(logits < min_val", "torch.where(logits <= min_val"),),
    ),
    Mutant(
        "ch05.generate",
        "top-k masks with 0 instead of -inf",
        (('torch.tensor(float("-inf"))', "torch.tensor(0.0)"),),
    ),
    Mutant(
        "ch05.generate",
        "temperature applied after the softmax (multinomial renormalises it away)",
        (("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits, dim=-1) / temperature"),),
    ),
    Mutant(
        "ch05.generate",
        "logits multiplied by the temperature instead of divided",
        (("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits * temperature, dim=-1)"),),
    ),
    Mutant(
        "ch05.generate",
        "eos_id appended before stopping",
        (
            (
                "        if eos_id is not None and idx_next.item() == eos_id:\n            break\n        idx = torch.cat((idx, idx_next), dim=1)\n",
                "        idx = torch.cat((idx, idx_next), dim=1)\n        if eos_id is not None and idx_next.item() == eos_id:\n            break\n",
            ),
        ),
    ),
    Mutant(
        "ch05.generate",
        "eos_id ignored",
        (("        if eos_id is not None and idx_next.item() == eos_id:\n            break\n", ""),),
    ),
    Mutant(
        "ch05.generate",
        "context not cropped: the whole sequence is fed to the model",
        (("idx_cond = idx[:, -context_size:]", "idx_cond = idx"),),
    ),
    Mutant(
        "ch05.generate",
        "the first context_size tokens kept instead of the last",
        (("idx_cond = idx[:, -context_size:]", "idx_cond = idx[:, :context_size]"),),
    ),
    Mutant(
        "ch05.generate",
        "the first position's logits instead of the last's",
        (("logits = logits[:, -1, :]", "logits = logits[:, 0, :]"),),
    ),
    Mutant(
        "ch05.generate",
        "sampling whenever a temperature is given, so temperature 0 divides by zero",
        (("if temperature > 0.0:", "if temperature is not None:"),),
    ),
    Mutant(
        "ch05.generate",
        "the model run with gradients enabled",
        (
            ("        with torch.no_grad():\n            logits = model(idx_cond)\n", "        logits = model(idx_cond)\n"),
        ),
    ),
    # ch05.checkpoint
    Mutant(
        "ch05.checkpoint",
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
        "ch05.checkpoint",
        "optimizer saved but not restored",
        (('    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])\n', ""),),
    ),
    Mutant(
        "ch05.checkpoint",
        "model saved but not restored",
        (('    model.load_state_dict(checkpoint["model_state_dict"])\n', ""),),
    ),
    Mutant(
        "ch05.checkpoint",
        "load_checkpoint restores into a new optimizer instead of the one passed in",
        (
            (
                '    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])',
                '    optimizer = torch.optim.AdamW(model.parameters())\n    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])',
            ),
        ),
    ),
    Mutant(
        "ch05.checkpoint",
        "the model object saved instead of its state dict",
        (
            ('{"model_state_dict": model.state_dict(),', '{"model_state_dict": model,'),
            ('    model.load_state_dict(checkpoint["model_state_dict"])', '    model.load_state_dict(checkpoint["model_state_dict"].state_dict())'),
            ("map_location=device, weights_only=True)", "map_location=device, weights_only=False)"),
        ),
    ),
    Mutant(
        "ch05.checkpoint",
        "keys 'model' and 'optimizer' instead of the book's",
        (
            ('{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()}',
             '{"model": model.state_dict(), "optimizer": optimizer.state_dict()}'),
            ('checkpoint["model_state_dict"]', 'checkpoint["model"]'),
            ('checkpoint["optimizer_state_dict"]', 'checkpoint["optimizer"]'),
        ),
    ),
    # ch05.training_extras
    Mutant(
        "ch05.training_extras",
        "warm-up off by one: step 0 already has one increment",
        (("return initial_lr + step * (peak_lr - initial_lr) / warmup_steps", "return initial_lr + (step + 1) * (peak_lr - initial_lr) / warmup_steps"),),
    ),
    Mutant(
        "ch05.training_extras",
        "cosine progress over total_steps instead of the decay steps",
        (("progress = (step - warmup_steps) / (total_steps - warmup_steps)", "progress = (step - warmup_steps) / total_steps"),),
    ),
    Mutant(
        "ch05.training_extras",
        "cosine progress from step 0 instead of from the end of warm-up",
        (("progress = (step - warmup_steps) / (total_steps - warmup_steps)", "progress = step / total_steps"),),
    ),
    Mutant(
        "ch05.training_extras",
        "cosine without the factor 0.5: decays to below min_lr",
        (("(peak_lr - min_lr) * 0.5 * (1 + math.cos", "(peak_lr - min_lr) * (1 + math.cos"),),
    ),
    Mutant(
        "ch05.training_extras",
        "decays towards 0, min_lr ignored",
        (("return min_lr + (peak_lr - min_lr) * 0.5 *", "return peak_lr * 0.5 *"),),
    ),
    Mutant(
        "ch05.training_extras",
        "gradients clipped during warm-up too",
        (
            (
                "            if global_step >= warmup_steps:\n                torch.nn.utils.clip_grad_norm_",
                "            if True:\n                torch.nn.utils.clip_grad_norm_",
            ),
        ),
    ),
    Mutant(
        "ch05.training_extras",
        "clipping starts one step late (> instead of >=)",
        (("if global_step >= warmup_steps:", "if global_step > warmup_steps:"),),
    ),
    Mutant(
        "ch05.training_extras",
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
        "ch05.training_extras",
        "clip_grad_value_ instead of clip_grad_norm_",
        (("torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)", "torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)"),),
    ),
    Mutant(
        "ch05.training_extras",
        "peak learning rate hard-coded to the book's 0.001",
        (('peak_lr = optimizer.param_groups[0]["lr"]', "peak_lr = 0.001"),),
    ),
    Mutant(
        "ch05.training_extras",
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
        "ch05.training_extras",
        "total steps of one epoch instead of all epochs",
        (("total_steps = len(train_loader) * n_epochs", "total_steps = len(train_loader)"),),
    ),
    Mutant(
        "ch05.training_extras",
        "initial_lr and min_lr not passed on: the defaults are used",
        (
            ("learning_rate_at(global_step, peak_lr, warmup_steps, total_steps, initial_lr, min_lr)",
             "learning_rate_at(global_step, peak_lr, warmup_steps, total_steps)"),
        ),
    ),
    Mutant(
        "ch05.training_extras",
        "only the first parameter group gets the new learning rate",
        (
            (
                '            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n',
                '            optimizer.param_groups[0]["lr"] = lr\n',
            ),
        ),
    ),
    Mutant(
        "ch05.training_extras",
        "learning rate tracked but never set in the optimizer",
        (('            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n', ""),),
    ),
    Mutant(
        "ch05.training_extras",
        "the schedule lags one step: the rate is set after optimizer.step()",
        (
            ('            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n', ""),
            (
                "            optimizer.step()\n",
                '            optimizer.step()\n            for param_group in optimizer.param_groups:\n                param_group["lr"] = lr\n',
            ),
        ),
    ),
    Mutant(
        "ch05.training_extras",
        "optimizer.zero_grad() missing",
        (("            optimizer.zero_grad()\n", ""),),
    ),
    Mutant(
        "ch05.training_extras",
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
    # ch05.load_gpt2_weights
    Mutant(
        "ch05.load_gpt2_weights",
        "c_attn split in the order key, query, value",
        (
            ('q_w, k_w, v_w = params[prefix + "attn.c_attn.weight"]', 'k_w, q_w, v_w = params[prefix + "attn.c_attn.weight"]'),
            ('q_b, k_b, v_b = params[prefix + "attn.c_attn.bias"]', 'k_b, q_b, v_b = params[prefix + "attn.c_attn.bias"]'),
        ),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "c_attn split in the order query, value, key",
        (
            ('q_w, k_w, v_w = params[prefix + "attn.c_attn.weight"]', 'q_w, v_w, k_w = params[prefix + "attn.c_attn.weight"]'),
            ('q_b, k_b, v_b = params[prefix + "attn.c_attn.bias"]', 'q_b, v_b, k_b = params[prefix + "attn.c_attn.bias"]'),
        ),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "c_attn split along the first dimension",
        (('params[prefix + "attn.c_attn.weight"].chunk(3, dim=-1)', 'params[prefix + "attn.c_attn.weight"].chunk(3, dim=0)'),),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "the query, key and value weights not transposed (square, so the shapes fit)",
        (('assign(linear.weight, weight.T, prefix + "attn.c_attn.weight")', 'assign(linear.weight, weight, prefix + "attn.c_attn.weight")'),),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
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
        "ch05.load_gpt2_weights",
        "out_head not tied to wte: it keeps its random weights",
        (('    assign(gpt.out_head.weight, params["wte.weight"], "wte.weight")\n', ""),),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "ln_1 and ln_2 swapped",
        (('((block.norm1, "ln_1"), (block.norm2, "ln_2"))', '((block.norm1, "ln_2"), (block.norm2, "ln_1"))'),),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "LayerNorm weight and bias swapped (scale <- bias, shift <- weight)",
        (
            ('assign(norm.scale, params[prefix + name + ".weight"], prefix + name + ".weight")',
             'assign(norm.scale, params[prefix + name + ".bias"], prefix + name + ".bias")'),
            ('assign(norm.shift, params[prefix + name + ".bias"], prefix + name + ".bias")',
             'assign(norm.shift, params[prefix + name + ".weight"], prefix + name + ".weight")'),
        ),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "the attention's biases not loaded",
        (('            assign(linear.bias, bias, prefix + "attn.c_attn.bias")\n', ""),),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "no projection's bias loaded",
        (
            ('            assign(linear.bias, bias, prefix + "attn.c_attn.bias")\n', ""),
            ('            assign(linear.bias, params[prefix + name + ".bias"], prefix + name + ".bias")\n', ""),
        ),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
        "ln_f not loaded",
        (
            ('    assign(gpt.final_norm.scale, params["ln_f.weight"], "ln_f.weight")\n', ""),
            ('    assign(gpt.final_norm.shift, params["ln_f.bias"], "ln_f.bias")\n', ""),
        ),
    ),
    Mutant(
        "ch05.load_gpt2_weights",
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
]

ALTERNATIVES: list[Alternative] = [
    # ch05.token_conversion
    Alternative(
        "ch05.token_conversion",
        "allowed_special='all', the batch built as a nested list; decode of reshape(-1)",
        r'''
def text_to_token_ids(text, tokenizer):
    """text -> (1, num_tokens) int64."""
    ids = tokenizer.encode(text, allowed_special="all")
    return torch.tensor([ids], dtype=torch.long)


def token_ids_to_text(token_ids, tokenizer):
    """(1, num_tokens) or (num_tokens,) -> text."""
    return tokenizer.decode(token_ids.reshape(-1).tolist())
''',
    ),
    Alternative(
        "ch05.token_conversion",
        "as_tensor with [None, :]; the first row taken only for 2-d input, ids as Python ints",
        r'''
def text_to_token_ids(text: str, tokenizer) -> torch.Tensor:
    """Encodes text into a batch of one."""
    ids = torch.as_tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"}), dtype=torch.int64)
    return ids[None, :]


def token_ids_to_text(token_ids: torch.Tensor, tokenizer) -> str:
    """Decodes a batch of one, or a flat tensor of ids."""
    if token_ids.dim() == 2:
        token_ids = token_ids[0]
    return tokenizer.decode([int(t) for t in token_ids])
''',
    ),
    # ch05.loss
    Alternative(
        "ch05.loss",
        "nll_loss of log_softmax; the loader averages a list over itertools.islice",
        r'''
import itertools

import torch.nn.functional as F


def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean negative log-likelihood of the targets."""
    logits = model(input_batch.to(device))
    log_probs = F.log_softmax(logits, dim=-1)
    return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), target_batch.to(device).reshape(-1))


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Mean batch loss over the first num_batches batches."""
    count = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    if count == 0:
        return float("nan")
    losses = [calc_loss_batch(x, y, model, device).item() for x, y in itertools.islice(data_loader, count)]
    return sum(losses) / len(losses)
''',
    ),
    Alternative(
        "ch05.loss",
        "cross_entropy with the classes on dim 1 (transpose(1, 2)); token-weighted mean over equal batches",
        r'''
import torch.nn.functional as F


def calc_loss_batch(input_batch, target_batch, model, device):
    """cross_entropy takes (batch, classes, positions) logits against (batch, positions) targets."""
    input_batch = input_batch.to(device)
    target_batch = target_batch.to(device)
    logits = model(input_batch)
    return F.cross_entropy(logits.transpose(1, 2), target_batch)


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Loss per token over the first num_batches batches (the batch mean when batches are equal)."""
    if len(data_loader) == 0:
        return float("nan")
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total, tokens = 0.0, 0
    for index, (inputs, targets) in enumerate(data_loader):
        if index == limit:
            break
        total += calc_loss_batch(inputs, targets, model, device).item() * targets.numel()
        tokens += targets.numel()
    return total / tokens
''',
    ),
    Alternative(
        "ch05.loss",
        "log-probabilities of the targets picked with a one-hot einsum; the loader stacks the losses",
        r'''
def calc_loss_batch(input_batch, target_batch, model, device):
    """-log p(target), averaged over every position of every sequence."""
    logits = model(input_batch.to(device))
    log_probs = torch.log_softmax(logits, dim=-1)
    one_hot = nn.functional.one_hot(target_batch.to(device), logits.shape[-1]).to(log_probs.dtype)
    return -torch.einsum("btv,btv->bt", log_probs, one_hot).mean()


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """The mean of the batch losses, nan for an empty loader."""
    if not len(data_loader):
        return float("nan")
    wanted = len(data_loader) if num_batches is None else min(len(data_loader), num_batches)
    losses = []
    for inputs, targets in data_loader:
        if len(losses) == wanted:
            break
        losses.append(calc_loss_batch(inputs, targets, model, device).detach())
    return torch.stack(losses).mean().item()
''',
    ),
    # ch05.train_loop
    Alternative(
        "ch05.train_loop",
        "inference_mode with try/finally; a hand-written greedy loop; the step number from epoch and batch index",
        r'''
def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Both losses in eval mode; train mode restored even if evaluation fails."""
    model.eval()
    try:
        with torch.inference_mode():
            losses = tuple(calc_loss_loader(loader, model, device, num_batches=eval_iter)
                           for loader in (train_loader, val_loader))
    finally:
        model.train()
    return losses


def generate_and_print_sample(model, tokenizer, device, start_context):
    """Greedy continuation of 50 tokens, written out by hand."""
    model.eval()
    context_size = model.pos_emb.weight.shape[0]
    ids = text_to_token_ids(start_context, tokenizer).to(device)
    with torch.no_grad():
        for _ in range(50):
            logits = model(ids[:, -context_size:])
            ids = torch.cat([ids, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    text = token_ids_to_text(ids, tokenizer)
    print(text.replace("\n", " "))
    model.train()


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    """Trains and records losses every eval_freq steps."""
    history = {"train": [], "val": [], "tokens": []}
    seen = 0
    steps_per_epoch = len(train_loader)
    for epoch in range(num_epochs):
        model.train()
        for batch_index, (inputs, targets) in enumerate(train_loader):
            step = epoch * steps_per_epoch + batch_index
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, model, device).backward()
            optimizer.step()
            seen += inputs.shape[0] * inputs.shape[1]
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                history["train"].append(train_loss)
                history["val"].append(val_loss)
                history["tokens"].append(seen)
        generate_and_print_sample(model, tokenizer, device, start_context)
    return history["train"], history["val"], history["tokens"]
''',
    ),
    Alternative(
        "ch05.train_loop",
        "gradients reset after each step; the evaluation restores the previous mode; a while loop over an iterator",
        r'''
def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """(train_loss, val_loss) with dropout off; the model's mode is put back as it was."""
    was_training = model.training
    model.train(False)
    with torch.set_grad_enabled(False):
        train_loss = calc_loss_loader(train_loader, model, device, eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, eval_iter)
    model.train(was_training)
    return train_loss, val_loss


@torch.no_grad()
def generate_and_print_sample(model, tokenizer, device, start_context):
    """One line of greedy text."""
    model.eval()
    idx = generate_text_simple(model, text_to_token_ids(start_context, tokenizer).to(device), 50,
                               model.pos_emb.num_embeddings)
    print(" ".join(token_ids_to_text(idx, tokenizer).split("\n")))
    model.train()


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    """One step per batch; gradients cleared after each step rather than before."""
    train_losses, val_losses, track_tokens_seen = [], [], []
    step, tokens = 0, 0
    optimizer.zero_grad()
    for epoch in range(num_epochs):
        model.train()
        batches = iter(train_loader)
        while (batch := next(batches, None)) is not None:
            inputs, targets = batch
            loss = calc_loss_batch(inputs, targets, model, device)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            tokens += inputs.numel()
            if step % eval_freq == 0:
                losses = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(losses[0])
                val_losses.append(losses[1])
                track_tokens_seen.append(tokens)
            step += 1
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen
''',
    ),
    # ch05.generate
    Alternative(
        "ch05.generate",
        "sort instead of topk, masked_fill, torch.distributions.Categorical",
        r'''
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Top-k via sorting, sampling via Categorical."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            ordered, _ = torch.sort(logits, dim=-1, descending=True)
            kth = ordered[:, top_k - 1 : top_k]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature > 0:
            next_id = torch.distributions.Categorical(logits=logits / temperature).sample().unsqueeze(-1)
        else:
            next_id = logits.argmax(dim=-1, keepdim=True)
        if eos_id is not None and int(next_id) == eos_id:
            break
        idx = torch.cat([idx, next_id], dim=-1)
    return idx
''',
    ),
    Alternative(
        "ch05.generate",
        "Gumbel-max sampling; top-k by scattering the k best into -inf; @torch.no_grad() decorator",
        r'''
@torch.no_grad()
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T)."""
    out = idx
    for _ in range(max_new_tokens):
        logits = model(out[:, -context_size:])[:, -1, :]
        if top_k:
            values, indices = torch.topk(logits, top_k, dim=-1)
            logits = torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
        if temperature > 0:
            uniform = torch.rand_like(logits).clamp_(min=1e-20)
            logits = logits / temperature - torch.log(-torch.log(uniform))
        next_id = torch.argmax(logits, dim=-1, keepdim=True)
        if next_id.item() == eos_id:
            break
        out = torch.cat((out, next_id), dim=1)
    return out
''',
    ),
    Alternative(
        "ch05.generate",
        "inverse-CDF sampling with searchsorted; tokens kept in a Python list",
        r'''
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Draws by finding a uniform number in the cumulative distribution."""
    tokens = idx[0].tolist()
    for _ in range(max_new_tokens):
        window = torch.tensor([tokens[-context_size:]], dtype=idx.dtype, device=idx.device)
        with torch.inference_mode():
            logits = model(window)[0, -1]
        if top_k is not None:
            threshold = torch.topk(logits, top_k).values.min()
            logits = torch.where(logits >= threshold, logits, torch.full_like(logits, -float("inf")))
        if temperature == 0:
            token = int(logits.argmax())
        else:
            cdf = torch.cumsum(torch.softmax(logits.double() / temperature, dim=-1), dim=-1)
            u = torch.rand((), dtype=torch.float64) * cdf[-1]
            token = min(int(torch.searchsorted(cdf, u, right=True)), logits.numel() - 1)
        if token == eos_id:
            break
        tokens.append(token)
    return torch.tensor([tokens], dtype=idx.dtype, device=idx.device)
''',
    ),
    # ch05.checkpoint
    Alternative(
        "ch05.checkpoint",
        "through an io.BytesIO buffer and pathlib",
        r'''
import io
from pathlib import Path


def save_checkpoint(model, optimizer, path):
    """Serialises to memory, then writes the bytes."""
    buffer = io.BytesIO()
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()}, buffer)
    Path(path).write_bytes(buffer.getvalue())


def load_checkpoint(model, optimizer, path):
    """Reads the bytes, then deserialises from memory."""
    device = next(model.parameters()).device
    checkpoint = torch.load(io.BytesIO(Path(path).read_bytes()), map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
''',
    ),
    Alternative(
        "ch05.checkpoint",
        "open file handles; the model restored by copying each tensor of its state dict",
        r'''
def save_checkpoint(model, optimizer, path):
    """The book's two state dicts, written through a file handle."""
    state = dict(model_state_dict=model.state_dict(), optimizer_state_dict=optimizer.state_dict())
    with open(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(model, optimizer, path):
    """State-dict tensors share storage with the model, so copying into them restores it."""
    with open(path, "rb") as handle:
        checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
    saved = checkpoint["model_state_dict"]
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(saved[name])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
''',
    ),
    # ch05.training_extras
    Alternative(
        "ch05.training_extras",
        "gradient clipping computed by hand; the step number from epoch and batch index",
        r'''
def learning_rate_at(step, peak_lr, warmup_steps, total_steps, initial_lr=3e-05, min_lr=1e-6):
    """Linear warm-up, then half a cosine."""
    if step < warmup_steps:
        return initial_lr + (peak_lr - initial_lr) * (step / warmup_steps)
    decay_steps = total_steps - warmup_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / decay_steps))
    return min_lr + (peak_lr - min_lr) * cosine


def _clip_(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)


def train_model(model, train_loader, val_loader, optimizer, device, n_epochs, eval_freq, eval_iter,
                start_context, tokenizer, warmup_steps, initial_lr=3e-05, min_lr=1e-6):
    """Warm-up, cosine decay and clipping around the plain loop."""
    peak = optimizer.param_groups[0]["lr"]
    per_epoch = len(train_loader)
    total = per_epoch * n_epochs
    train_losses, val_losses, seen_history, lrs = [], [], [], []
    seen = 0
    for epoch in range(n_epochs):
        model.train()
        for index, (inputs, targets) in enumerate(train_loader):
            step = epoch * per_epoch + index
            lr = learning_rate_at(step, peak, warmup_steps, total, initial_lr=initial_lr, min_lr=min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            lrs.append(lr)
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, model, device).backward()
            if step >= warmup_steps:
                _clip_(list(model.parameters()), 1.0)
            optimizer.step()
            seen += inputs.numel()
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                seen_history.append(seen)
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, seen_history, lrs
''',
    ),
    Alternative(
        "ch05.training_extras",
        "the schedule through torch's LambdaLR, stepped after each optimizer step",
        r'''
def learning_rate_at(step: int, peak_lr: float, warmup_steps: int, total_steps: int,
                     initial_lr: float = 3e-05, min_lr: float = 1e-6) -> float:
    """Warm-up fraction or cosine fraction of the way from one rate to the other."""
    if step >= warmup_steps:
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        return min_lr + (peak_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
    return initial_lr + step * (peak_lr - initial_lr) / warmup_steps


def train_model(model, train_loader, val_loader, optimizer, device, n_epochs, eval_freq, eval_iter,
                start_context, tokenizer, warmup_steps, initial_lr=3e-05, min_lr=1e-6):
    """LambdaLR multiplies the starting rate (the peak) by the factor of each step."""
    peak_lr = optimizer.param_groups[0]["lr"]
    total_steps = n_epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_at(step, peak_lr, warmup_steps, total_steps, initial_lr, min_lr) / peak_lr)
    train_losses, val_losses, track_tokens_seen, track_lrs = [], [], [], []
    tokens_seen, step = 0, 0
    for epoch in range(n_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            track_lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            if step >= warmup_steps:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            tokens_seen += input_batch.numel()
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
            step += 1
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen, track_lrs
''',
    ),
    # ch05.load_gpt2_weights
    Alternative(
        "ch05.load_gpt2_weights",
        "a dict from our parameter names to translated tensors, checked and then copied",
        r'''
def load_weights_into_gpt(gpt, params):
    """Translates every name first, checks every shape, then copies."""
    translated = {
        "tok_emb.weight": params["wte.weight"],
        "pos_emb.weight": params["wpe.weight"],
        "final_norm.scale": params["ln_f.weight"],
        "final_norm.shift": params["ln_f.bias"],
        "out_head.weight": params["wte.weight"],
    }
    for i in range(len(gpt.trf_blocks)):
        theirs, ours = f"h.{i}.", f"trf_blocks.{i}."
        qkv_w, qkv_b = params[theirs + "attn.c_attn.weight"], params[theirs + "attn.c_attn.bias"]
        width = qkv_w.shape[-1] // 3
        for j, projection in enumerate(("W_query", "W_key", "W_value")):
            translated[f"{ours}att.{projection}.weight"] = qkv_w[:, j * width:(j + 1) * width].T
            translated[f"{ours}att.{projection}.bias"] = qkv_b[j * width:(j + 1) * width]
        for hf_name, our_name in (("attn.c_proj", "att.out_proj"), ("mlp.c_fc", "ff.layers.0"), ("mlp.c_proj", "ff.layers.2")):
            translated[ours + our_name + ".weight"] = params[theirs + hf_name + ".weight"].T
            translated[ours + our_name + ".bias"] = params[theirs + hf_name + ".bias"]
        for hf_name, our_name in (("ln_1", "norm1"), ("ln_2", "norm2")):
            translated[ours + our_name + ".scale"] = params[theirs + hf_name + ".weight"]
            translated[ours + our_name + ".shift"] = params[theirs + hf_name + ".bias"]
    own = dict(gpt.named_parameters())
    for name, tensor in translated.items():
        if own[name].shape != tensor.shape:
            raise ValueError(f"{name}: checkpoint shape {tuple(tensor.shape)} != model shape {tuple(own[name].shape)}")
    with torch.no_grad():
        for name, tensor in translated.items():
            own[name].copy_(tensor)
''',
    ),
    Alternative(
        "ch05.load_gpt2_weights",
        "the model's state dict updated with translated tensors (torch.split) and loaded with load_state_dict",
        r'''
def load_weights_into_gpt(gpt: GPTModel, params: dict[str, torch.Tensor]) -> None:
    """load_state_dict checks every shape and names the tensor that does not fit."""
    state = gpt.state_dict()
    state["tok_emb.weight"] = params["wte.weight"]
    state["pos_emb.weight"] = params["wpe.weight"]
    state["out_head.weight"] = params["wte.weight"]
    state["final_norm.scale"], state["final_norm.shift"] = params["ln_f.weight"], params["ln_f.bias"]
    for i, block in enumerate(gpt.trf_blocks):
        get = lambda key: params[f"h.{i}.{key}"]
        put = lambda key, value: state.__setitem__(f"trf_blocks.{i}.{key}", value)
        emb_dim = get("attn.c_attn.weight").shape[0]
        weights = torch.split(get("attn.c_attn.weight"), emb_dim, dim=1)
        biases = torch.split(get("attn.c_attn.bias"), emb_dim, dim=0)
        for name, weight, bias in zip(("W_query", "W_key", "W_value"), weights, biases):
            put(f"att.{name}.weight", weight.t())
            put(f"att.{name}.bias", bias)
        put("att.out_proj.weight", get("attn.c_proj.weight").t())
        put("att.out_proj.bias", get("attn.c_proj.bias"))
        put("ff.layers.0.weight", get("mlp.c_fc.weight").t())
        put("ff.layers.0.bias", get("mlp.c_fc.bias"))
        put("ff.layers.2.weight", get("mlp.c_proj.weight").t())
        put("ff.layers.2.bias", get("mlp.c_proj.bias"))
        put("norm1.scale", get("ln_1.weight"))
        put("norm1.shift", get("ln_1.bias"))
        put("norm2.scale", get("ln_2.weight"))
        put("norm2.shift", get("ln_2.bias"))
    gpt.load_state_dict(state)
''',
    ),
]

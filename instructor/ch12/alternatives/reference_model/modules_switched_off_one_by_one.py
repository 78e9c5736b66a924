"""every module of the copy set to train(False), every parameter frozen one by one; the reference in inference_mode"""


def create_reference_model(model):
    reference = copy.deepcopy(model)
    for module in reference.modules():
        module.train(False)
    for name, param in reference.named_parameters():
        param.requires_grad_(False)
    return reference


def compute_dpo_loss_batch(batch, policy_model, reference_model, beta):
    logprobs = {}
    for key in ("chosen", "rejected"):
        ids, mask = batch[key], batch[f"{key}_mask"]
        logprobs[f"policy_{key}"] = compute_logprobs(policy_model(ids), ids, mask)
        with torch.inference_mode():
            reference = compute_logprobs(reference_model(ids), ids, mask)
        logprobs[f"reference_{key}"] = reference.clone()
    return compute_dpo_loss(
        logprobs["policy_chosen"],
        logprobs["policy_rejected"],
        logprobs["reference_chosen"],
        logprobs["reference_rejected"],
        beta=beta,
    )

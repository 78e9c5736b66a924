"""All three composed from earlier engine ops (no VJPs of their own): log_softmax = (x - max) - log(sum(exp(x - max)))
with the max a constant, softmax = exp(log_softmax), cross_entropy = -mean over positions of the one-hot-picked
log-probabilities"""


def log_softmax(x, axis=-1):
    x = as_tensor(x)
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - log(summation(exp(shifted), axis, True))


def softmax(x, axis=-1):
    return exp(log_softmax(x, axis))


def cross_entropy(logits, targets):
    logits = as_tensor(logits)
    targets = np.asarray(targets)
    one_hot = (np.arange(logits.shape[-1]) == targets[..., None]).astype(np.float64)
    picked = summation(log_softmax(logits, -1) * one_hot, -1)
    return -mean(picked)

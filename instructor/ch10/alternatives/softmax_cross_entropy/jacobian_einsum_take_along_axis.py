"""softmax's VJP with the full Jacobian diag(s) - s s^T applied by np.einsum (axis moved last); log_softmax through
a logsumexp; cross_entropy picks the target log-probabilities with np.take_along_axis and builds its gradient by
subtracting 1 at the targets with np.put_along_axis"""


def softmax(x, axis=-1):
    x = as_tensor(x)
    z = np.moveaxis(x.data, axis, -1)
    z = z - z.max(axis=-1, keepdims=True)
    s = np.exp(z)
    s = s / s.sum(axis=-1, keepdims=True)

    def vjp(grad):
        g = np.moveaxis(grad, axis, -1)
        jac = s[..., :, None] * np.eye(s.shape[-1]) - s[..., :, None] * s[..., None, :]
        return (np.moveaxis(np.einsum("...ij,...i->...j", jac, g), -1, axis),)

    return Tensor(np.moveaxis(s, -1, axis), _parents=(x,), _vjp=vjp)


def _logsumexp(z, axis):
    m = np.max(z, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    x = as_tensor(x)
    out = x.data - _logsumexp(x.data, axis)

    def vjp(grad):
        probs = np.exp(out)
        return (grad - probs * np.sum(grad, axis=axis, keepdims=True),)

    return Tensor(out, _parents=(x,), _vjp=vjp)


def cross_entropy(logits, targets):
    logits = as_tensor(logits)
    idx = np.asarray(targets).astype(np.intp)[..., None]
    logp = logits.data - _logsumexp(logits.data, -1)
    count = idx.size
    loss = -np.take_along_axis(logp, idx, axis=-1).sum() / count

    def vjp(grad):
        d = np.exp(logp)
        np.put_along_axis(d, idx, np.take_along_axis(d, idx, axis=-1) - 1.0, axis=-1)
        return (d * (grad / count),)

    return Tensor(loss, _parents=(logits,), _vjp=vjp)

"""numerical_grad walks each input with np.nditer(multi_index) and restores the entry in a finally block;
gradient_check collects every input's pass/fail with np.isclose(...).all() and returns all(...)"""


def numerical_grad(f, inputs: list, eps: float = 1e-6) -> list:
    out = []
    for x in inputs:
        grad = np.zeros_like(x, dtype=np.float64)
        it = np.nditer(x, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            saved = float(x[i])
            try:
                x[i] = saved + eps
                f_plus = float(f(*inputs))
                x[i] = saved - eps
                f_minus = float(f(*inputs))
            finally:
                x[i] = saved
            grad[i] = (f_plus - f_minus) / (2 * eps)
        out.append(grad)
    return out


def gradient_check(f, inputs: list, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    work = [np.copy(np.asarray(x, dtype=np.float64)) for x in inputs]
    params = [Tensor(w, requires_grad=True) for w in work]
    loss = f(*params)
    loss.backward()
    numeric = numerical_grad(lambda *xs: f(*[Tensor(v) for v in xs]).data, work, eps)
    verdicts = []
    for p, n in zip(params, numeric):
        a = np.zeros_like(n) if p.grad is None else p.grad
        verdicts.append(bool(np.isclose(a, n, rtol=rtol, atol=atol).all()))
    return all(verdicts)

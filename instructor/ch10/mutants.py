"""Chapter 10's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

# ---- ch10.backward: pieces of the reference cell
_GUARDED_VISIT = (
    "        def visit(node):\n"
    "            if id(node) not in visited:\n"
    "                visited.add(id(node))\n"
    "                for parent in node._parents:\n"
    "                    visit(parent)\n"
    "                order.append(node)  # after all its parents\n"
)
_UNGUARDED_VISIT = (
    "        def visit(node):\n"
    "            for parent in node._parents:\n"
    "                visit(parent)\n"
    "            order.append(node)  # after all its parents\n"
)
_TOPO_AND_LOOP = (
    "        order, visited = [], set()\n"
    "\n"
    "        def visit(node):\n"
    "            if id(node) not in visited:\n"
    "                visited.add(id(node))\n"
    "                for parent in node._parents:\n"
    "                    visit(parent)\n"
    "                order.append(node)  # after all its parents\n"
    "\n"
    "        visit(self)\n"
    "        grads = {id(self): np.asarray(grad, dtype=np.float64)}\n"
    "        for node in reversed(order):\n"
    "            g = grads.pop(id(node), None)\n"
    "            if g is None or not node.requires_grad:\n"
    "                continue\n"
    "            if not node._parents:\n"
    "                node.grad = g.copy() if node.grad is None else node.grad + g\n"
    "                continue\n"
    "            for parent, parent_grad in zip(node._parents, node._vjp(g)):\n"
    "                if parent.requires_grad:\n"
    "                    grads[id(parent)] = grads[id(parent)] + parent_grad if id(parent) in grads else parent_grad\n"
)
_RECURSIVE_PUSH = (
    "        def push(node, g):\n"
    "            if not node.requires_grad:\n"
    "                return\n"
    "            if not node._parents:\n"
    "                node.grad = g.copy() if node.grad is None else node.grad + g\n"
    "                return\n"
    "            for parent, parent_grad in zip(node._parents, node._vjp(g)):\n"
    "                push(parent, parent_grad)\n"
    "\n"
    "        push(self, np.asarray(grad, dtype=np.float64))\n"
)
_BFS_ORDER = (
    "        order, visited = [], set()\n"
    "\n"
    "        def visit(node):\n"
    "            if id(node) not in visited:\n"
    "                visited.add(id(node))\n"
    "                for parent in node._parents:\n"
    "                    visit(parent)\n"
    "                order.append(node)  # after all its parents\n"
    "\n"
    "        visit(self)\n"
)
_BFS_NEW = (
    "        order, visited, queue = [], {id(self)}, [self]\n"
    "        while queue:  # breadth first from the output: nearest nodes first\n"
    "            node = queue.pop(0)\n"
    "            order.append(node)\n"
    "            for parent in node._parents:\n"
    "                if id(parent) not in visited:\n"
    "                    visited.add(id(parent))\n"
    "                    queue.append(parent)\n"
    "        order.reverse()\n"
)
_LEAF_ACCUMULATE = "                node.grad = g.copy() if node.grad is None else node.grad + g\n"
_LEAF_AND_PASS = (
    "            if not node._parents:\n"
    "                node.grad = g.copy() if node.grad is None else node.grad + g\n"
    "                continue\n"
    "            for parent, parent_grad in zip(node._parents, node._vjp(g)):\n"
)
_SUM_USES = (
    "                    grads[id(parent)] = grads[id(parent)] + parent_grad if id(parent) in grads else parent_grad\n"
)
_GUARD_PARENT = (
    "                if parent.requires_grad:\n"
    "                    grads[id(parent)] = grads[id(parent)] + parent_grad if id(parent) in grads else parent_grad\n"
)

# ---- pieces of the reference cells for the mutants added after the first list
_TANH = "    return Tensor(out, _parents=(a,), _vjp=lambda grad: (grad * (1 - out**2),))"
_TANH_BY_TORCH = """    def vjp(grad):
        import torch

        inputs = torch.tensor(a.data, requires_grad=True)
        torch.tanh(inputs).backward(torch.tensor(grad))
        return (inputs.grad.numpy(),)

    return Tensor(out, _parents=(a,), _vjp=vjp)"""

MUTANTS: dict[str, list[Mutant]] = {
    "ch10.unbroadcast": [
        Mutant(
            "the leading axes added by broadcasting are not summed away",
            (("    grad = grad.sum(axis=tuple(range(added)))\n", ""),),
        ),
        Mutant(
            "only one added leading axis summed (an if where a while/all of them is needed)",
            (("grad = grad.sum(axis=tuple(range(added)))", "grad = grad.sum(axis=0) if added > 0 else grad"),),
        ),
        Mutant(
            "the added axes summed from the end (trailing axes) instead of the leading ones",
            (("grad.sum(axis=tuple(range(added)))", "grad.sum(axis=tuple(range(grad.ndim - added, grad.ndim)))"),),
        ),
        Mutant(
            "size-1 axes summed without keepdims (the axis disappears)",
            (("grad.sum(axis=stretched, keepdims=True)", "grad.sum(axis=stretched)"),),
        ),
        Mutant(
            "size-1 axes stretched by broadcasting not summed (only the leading axes are)",
            (("return np.asarray(grad.sum(axis=stretched, keepdims=True))", "return np.asarray(grad)"),),
        ),
        Mutant(
            "broadcast axes averaged instead of summed",
            (
                ("grad.sum(axis=tuple(range(added)))", "grad.mean(axis=tuple(range(added)))"),
                ("grad.sum(axis=stretched, keepdims=True)", "grad.mean(axis=stretched, keepdims=True)"),
            ),
        ),
        Mutant(
            "number of added axes computed the wrong way round (len(shape) - grad.ndim)",
            (("added = grad.ndim - len(shape)", "added = len(shape) - grad.ndim"),),
        ),
    ],
    "ch10.backward": [
        Mutant(
            "backward() without a gradient seeds a 0-d 1.0 instead of ones of the tensor's shape",
            (("grad = np.ones_like(self.data)", "grad = np.array(1.0)"),),
        ),
        Mutant(
            "leaf gradient assigned instead of accumulated (a second backward overwrites .grad)",
            ((_LEAF_ACCUMULATE, "                node.grad = g.copy()\n"),),
        ),
        Mutant(
            "leaf gradient accumulated in place into the array it was first given (+= on a shared array)",
            (
                (
                    _LEAF_ACCUMULATE,
                    "                if node.grad is None:\n"
                    "                    node.grad = g\n"
                    "                else:\n"
                    "                    node.grad += g\n",
                ),
            ),
        ),
        Mutant(
            "topological sort by DFS without a visited set: shared nodes are visited (and their vjp run) more than once",
            ((_GUARDED_VISIT, _UNGUARDED_VISIT),),
        ),
        Mutant(
            "recursive backward that pushes each gradient straight into the parents (no topological order; vjp of a shared node runs once per path)",
            ((_TOPO_AND_LOOP, _RECURSIVE_PUSH),),
        ),
        Mutant(
            "nodes processed in topological order instead of reverse (leaves first, nothing reaches them)",
            (("        for node in reversed(order):\n", "        for node in order:\n"),),
        ),
        Mutant(
            "breadth-first order from the output instead of a topological order (a node can run before all its uses)",
            ((_BFS_ORDER, _BFS_NEW),),
        ),
        Mutant(
            "gradients from several uses of a node overwrite each other instead of being summed",
            ((_SUM_USES, "                    grads[id(parent)] = parent_grad\n"),),
        ),
        Mutant(
            "inner nodes accumulate into .grad and pass the accumulated total on (a second backward passes doubled gradients)",
            (
                (
                    _LEAF_AND_PASS,
                    "            node.grad = g.copy() if node.grad is None else node.grad + g\n"
                    "            if not node._parents:\n"
                    "                continue\n"
                    "            for parent, parent_grad in zip(node._parents, node._vjp(node.grad)):\n",
                ),
            ),
        ),
        Mutant(
            "backward() without a gradient on a tensor of many numbers seeds ones instead of raising RuntimeError",
            (
                (
                    "            if self.data.size != 1:\n"
                    '                raise RuntimeError("backward() without a gradient needs a tensor holding one number")\n',
                    "",
                ),
            ),
        ),
        Mutant(
            "gradients sent to constants too: leaves with requires_grad=False get a .grad",
            (
                ("            if g is None or not node.requires_grad:\n", "            if g is None:\n"),
                (_GUARD_PARENT, _SUM_USES.replace("                    ", "                ", 1)),
            ),
        ),
        Mutant(
            "requires_grad not propagated from the parents to an op's result",
            (
                (
                    "self.requires_grad = bool(requires_grad) or any(p.requires_grad for p in self._parents)",
                    "self.requires_grad = bool(requires_grad)",
                ),
            ),
        ),
        Mutant(
            "requires_grad propagated with all() instead of any() (and every leaf then requires grad)",
            (("any(p.requires_grad for p in self._parents)", "all(p.requires_grad for p in self._parents)"),),
        ),
        Mutant(
            "data kept in its own dtype (ints stay ints, float32 stays float32) instead of float64",
            (("self.data = np.array(data, dtype=np.float64)", "self.data = np.array(data)"),),
        ),
        Mutant(
            "data stored with np.asarray: a float64 array is shared with the caller, not copied",
            (("self.data = np.array(data, dtype=np.float64)", "self.data = np.asarray(data, dtype=np.float64)"),),
        ),
    ],
    "ch10.elementwise": [
        Mutant(
            "add's VJP not unbroadcast: the output-shaped gradient returned to both operands",
            (("return unbroadcast(grad, a.shape), unbroadcast(grad, b.shape)", "return grad, grad"),),
        ),
        Mutant(
            "mul's VJP factors swapped: grad * a for a and grad * b for b",
            (
                (
                    "unbroadcast(grad * b.data, a.shape), unbroadcast(grad * a.data, b.shape)",
                    "unbroadcast(grad * a.data, a.shape), unbroadcast(grad * b.data, b.shape)",
                ),
            ),
        ),
        Mutant(
            "mul's VJP for b not unbroadcast",
            (("unbroadcast(grad * a.data, b.shape)", "grad * a.data"),),
        ),
        Mutant(
            "div's VJP for b without the minus sign",
            (("-grad * a.data / b.data**2", "grad * a.data / b.data**2"),),
        ),
        Mutant(
            "div's VJP for b divides by b instead of b squared",
            (("-grad * a.data / b.data**2", "-grad * a.data / b.data"),),
        ),
        Mutant(
            "div's VJP for a multiplies by b instead of dividing",
            (("unbroadcast(grad / b.data, a.shape)", "unbroadcast(grad * b.data, a.shape)"),),
        ),
        Mutant(
            "add does not wrap numbers with as_tensor (2 + x and x + 1 fail)",
            (
                (
                    "    a, b = as_tensor(a), as_tensor(b)\n\n    def vjp(grad):\n        return unbroadcast(grad, a.shape)",
                    "    def vjp(grad):\n        return unbroadcast(grad, a.shape)",
                ),
            ),
        ),
        Mutant(
            "mul's gradient for a unbroadcast to b's shape",
            (("unbroadcast(grad * b.data, a.shape)", "unbroadcast(grad * b.data, b.shape)"),),
        ),
    ],
    "ch10.matmul_and_reductions": [
        Mutant(
            "matmul's VJP for a uses b instead of b transposed",
            (("grad_a = grad @ np.swapaxes(b.data, -1, -2)", "grad_a = grad @ b.data"),),
        ),
        Mutant(
            "matmul's VJP for b multiplied in the wrong order (grad @ a^T instead of a^T @ grad)",
            (("grad_b = np.swapaxes(a.data, -1, -2) @ grad", "grad_b = grad @ np.swapaxes(a.data, -1, -2)"),),
        ),
        Mutant(
            "matmul's VJP transposes with .T, which reverses every axis of a batched operand",
            (
                ("grad_a = grad @ np.swapaxes(b.data, -1, -2)", "grad_a = grad @ b.data.T"),
                ("grad_b = np.swapaxes(a.data, -1, -2) @ grad", "grad_b = a.data.T @ grad"),
            ),
        ),
        Mutant(
            "matmul's VJP not unbroadcast over the batch dims",
            (("return unbroadcast(grad_a, a.shape), unbroadcast(grad_b, b.shape)", "return grad_a, grad_b"),),
        ),
        Mutant(
            "summation's VJP does not put the summed axes back when keepdims is False",
            (("        if not keepdims:\n            grad = np.expand_dims(grad, axes)\n", ""),),
        ),
        Mutant(
            "summation's VJP puts the summed axes back even when keepdims kept them",
            (
                (
                    "        if not keepdims:\n            grad = np.expand_dims(grad, axes)\n",
                    "        grad = np.expand_dims(grad, axes)\n",
                ),
            ),
        ),
        Mutant(
            "mean's VJP not divided by the count (the forward divides, the gradient is summation's)",
            (
                (
                    "    return mul(summation(a, axis, keepdims), 1.0 / count)",
                    "    total = summation(a, axis, keepdims)\n"
                    "    return Tensor(total.data / count, _parents=(a,), _vjp=total._vjp)",
                ),
            ),
        ),
        Mutant(
            "mean divides by the total number of entries instead of the number averaged over",
            (("count = math.prod(a.shape[ax] for ax in _axes(axis, a.ndim))", "count = a.size"),),
        ),
        Mutant(
            "reshape's VJP reshapes to the output shape instead of back to a.shape",
            (("_vjp=lambda grad: (grad.reshape(a.shape),)", "_vjp=lambda grad: (grad.reshape(shape),)"),),
        ),
        Mutant(
            "transpose's VJP passes the gradient on without swapping it back",
            (("_vjp=lambda grad: (np.swapaxes(grad, dim0, dim1),)", "_vjp=lambda grad: (grad,)"),),
        ),
        Mutant(
            "sum's VJP returns the gradient with size-1 axes, not copied out to the input's shape",
            (("return (np.broadcast_to(grad, a.shape).copy(),)", "return (grad,)"),),
        ),
    ],
    "ch10.activations": [
        Mutant(
            "exp's VJP multiplies by the input instead of exp(input)",
            (("_vjp=lambda grad: (grad * out,)", "_vjp=lambda grad: (grad * a.data,)"),),
        ),
        Mutant(
            "log's VJP multiplies by a instead of dividing",
            (("_vjp=lambda grad: (grad / a.data,)", "_vjp=lambda grad: (grad * a.data,)"),),
        ),
        Mutant(
            "tanh derivative 1 - x**2 taken on the input instead of the output",
            (("(grad * (1 - out**2),)", "(grad * (1 - a.data**2),)"),),
        ),
        Mutant(
            "tanh derivative without the square: 1 - tanh(x)",
            (("(grad * (1 - out**2),)", "(grad * (1 - out),)"),),
        ),
        Mutant(
            "ReLU gradient mask a >= 0 (gradient 1 at exactly 0)",
            (("grad * (a.data > 0)", "grad * (a.data >= 0)"),),
        ),
        Mutant(
            "ReLU's VJP multiplies by relu(a) instead of the 0/1 mask",
            (("grad * (a.data > 0)", "grad * np.maximum(a.data, 0.0)"),),
        ),
        Mutant(
            "ReLU mask taken from the incoming gradient's sign instead of the input's",
            (("grad * (a.data > 0)", "grad * (grad > 0)"),),
        ),
        Mutant(
            "GELU's VJP: derivative of a**3 taken as a**2 (the factor 3 dropped)",
            (("c * (1 + 3 * 0.044715 * x**2)", "c * (1 + 0.044715 * x**2)"),),
        ),
        Mutant(
            "GELU's VJP without the product rule's second term (only 0.5 * (1 + tanh))",
            (
                (
                    "(grad * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * inner_slope),)",
                    "(grad * (0.5 * (1 + t)),)",
                ),
            ),
        ),
        Mutant(
            "GELU's VJP is the derivative of the exact erf GELU, not of the tanh approximation",
            (
                (
                    "(grad * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * inner_slope),)",
                    "(grad * (0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))"
                    " + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)),)",
                ),
            ),
        ),
        Mutant(
            "GELU's constant sqrt(pi/2) instead of sqrt(2/pi)",
            (("math.sqrt(2 / math.pi)", "math.sqrt(math.pi / 2)"),),
        ),
        Mutant(
            "gelu's derivative without the inner derivative of 0.044715 x**3",
            (("inner_slope = c * (1 + 3 * 0.044715 * x**2)", "inner_slope = c"),),
        ),
        Mutant("tanh's VJP computed by PyTorch's autograd", ((_TANH, _TANH_BY_TORCH),)),
    ],
    "ch10.softmax_cross_entropy": [
        Mutant(
            "softmax subtracts the max of the whole array instead of the max along the axis (rows far below it underflow to 0/0)",
            (("e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))", "e = np.exp(x.data - x.data.max())"),),
        ),
        Mutant(
            "softmax's VJP without the subtraction: s * grad",
            (("(s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)", "(s * grad,)"),),
        ),
        Mutant(
            "softmax's VJP uses only the diagonal of the Jacobian: s * (1 - s) * grad",
            (("(s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)", "(s * (1 - s) * grad,)"),),
        ),
        Mutant(
            "softmax's VJP sums without keepdims (misaligned against the other axes)",
            (("(grad * s).sum(axis=axis, keepdims=True)", "(grad * s).sum(axis=axis)"),),
        ),
        Mutant(
            "softmax without subtracting the max (overflows for large logits)",
            (("e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))", "e = np.exp(x.data)"),),
        ),
        Mutant(
            "log-softmax without subtracting the max (overflows for large logits)",
            (("shifted = x.data - x.data.max(axis=axis, keepdims=True)", "shifted = x.data"),),
        ),
        Mutant(
            "log-softmax's VJP drops the sum of the incoming gradient: grad - softmax(x)",
            (("grad - np.exp(out) * grad.sum(axis=axis, keepdims=True)", "grad - np.exp(out)"),),
        ),
        Mutant(
            "log-softmax's VJP always sums over the last axis, whatever `axis` is",
            (("np.exp(out) * grad.sum(axis=axis, keepdims=True)", "np.exp(out) * grad.sum(axis=-1, keepdims=True)"),),
        ),
        Mutant(
            "cross-entropy not averaged: summed over the positions (forward and VJP)",
            (
                ("return Tensor(-(logp * one_hot).sum() / n,", "return Tensor(-(logp * one_hot).sum(),"),
                ("(grad * (np.exp(logp) - one_hot) / n,)", "(grad * (np.exp(logp) - one_hot),)"),
            ),
        ),
        Mutant(
            "cross-entropy averaged over the first axis only (batch), not over every position",
            (("n = targets.size", "n = targets.shape[0]"),),
        ),
        Mutant(
            "cross-entropy's VJP with the sign flipped: one_hot - softmax",
            (("(grad * (np.exp(logp) - one_hot) / n,)", "(grad * (one_hot - np.exp(logp)) / n,)"),),
        ),
        Mutant(
            "cross-entropy's VJP ignores the incoming gradient (as if it were always 1)",
            (("(grad * (np.exp(logp) - one_hot) / n,)", "((np.exp(logp) - one_hot) / n,)"),),
        ),
        Mutant(
            "log_softmax's VJP passes the gradient through unchanged",
            (("(grad - np.exp(out) * grad.sum(axis=axis, keepdims=True),)", "(grad,)"),),
        ),
        Mutant(
            "log_softmax subtracts the maximum of the whole array, not along the axis",
            (("shifted = x.data - x.data.max(axis=axis, keepdims=True)", "shifted = x.data - x.data.max()"),),
        ),
        Mutant(
            "cross-entropy's gradient without the softmax term (-one_hot / N)",
            (("(grad * (np.exp(logp) - one_hot) / n,)", "(grad * (-one_hot) / n,)"),),
        ),
    ],
    "ch10.gradient_check": [
        Mutant(
            "numerical_grad ignores its eps argument (a hard-coded step of 1e-6)",
            (
                ("x[index] = original + eps", "x[index] = original + 1e-6"),
                ("x[index] = original - eps", "x[index] = original - 1e-6"),
                ("(up - down) / (2 * eps)", "(up - down) / (2 * 1e-6)"),
            ),
        ),
        Mutant(
            "one-sided (forward) difference (f(x + eps) - f(x)) / eps instead of the central one",
            (
                ("            x[index] = original - eps\n", "            x[index] = original\n"),
                ("grad[index] = (up - down) / (2 * eps)", "grad[index] = (up - down) / eps"),
            ),
        ),
        Mutant(
            "central difference divided by eps instead of 2 * eps",
            (("grad[index] = (up - down) / (2 * eps)", "grad[index] = (up - down) / eps"),),
        ),
        Mutant(
            "the perturbed entry is not restored (left at x - eps)",
            (("            x[index] = original\n", ""),),
        ),
        Mutant(
            "perturbs copies of the inputs while f is called with the originals (all gradients zero)",
            (("    for x in inputs:\n", "    for x in [inp.copy() for inp in inputs]:\n"),),
        ),
        Mutant(
            "iterates over the first axis only (range(len(x))): a whole row is perturbed at once",
            (("for index in np.ndindex(x.shape):", "for index in range(len(x)):"),),
        ),
        Mutant(
            "gradient_check passes when any entry agrees (np.any instead of np.all)",
            (
                (
                    "agree.append(np.all(np.abs(analytic - expected) <= atol + rtol * np.abs(expected)))",
                    "agree.append(np.any(np.abs(analytic - expected) <= atol + rtol * np.abs(expected)))",
                ),
            ),
        ),
        Mutant(
            "gradient_check compares only the first input",
            (("zip(tensors, numeric)", "zip(tensors[:1], numeric[:1])"),),
        ),
        Mutant(
            "gradient_check ignores atol/rtol (np.allclose with its default tolerances)",
            (
                (
                    "agree.append(np.all(np.abs(analytic - expected) <= atol + rtol * np.abs(expected)))",
                    "agree.append(np.allclose(analytic, expected))",
                ),
            ),
        ),
        Mutant(
            "gradient_check uses .grad even when it is None (an input that gets no gradient crashes)",
            (
                (
                    "analytic = np.zeros_like(expected) if tensor.grad is None else tensor.grad",
                    "analytic = tensor.grad",
                ),
            ),
        ),
        Mutant(
            "gradient_check's numeric side returns the Tensor, not its .data (float() of a Tensor fails)",
            (("f(*[Tensor(a) for a in arrays]).data", "f(*[Tensor(a) for a in arrays])"),),
        ),
        Mutant(
            "gradient_check returns True when any one input agrees (any() over the inputs instead of all())",
            (("return bool(all(agree))", "return bool(any(agree))"),),
        ),
        Mutant(
            "gradient_check ignores rtol (absolute tolerance only)",
            (("<= atol + rtol * np.abs(expected)", "<= atol"),),
        ),
    ],
    "ch10.train": [
        Mutant(
            "returns the loss recomputed after the update instead of the loss before it",
            (
                (
                    "return float(loss.data)",
                    'return float(cross_entropy(tanh(as_tensor(x) @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"], targets).data)',
                ),
            ),
        ),
        Mutant(
            "parameter .grad not reset after the update (gradients accumulate across steps)",
            (("        param.grad = None\n", ""),),
        ),
        Mutant(
            "gradient ascent: p.data += lr * p.grad",
            (("param.data -= lr * param.grad", "param.data += lr * param.grad"),),
        ),
        Mutant(
            "returns the loss Tensor instead of a Python float",
            (("return float(loss.data)", "return loss"),),
        ),
        Mutant(
            "no tanh on the hidden layer",
            (
                (
                    'hidden = tanh(as_tensor(x) @ params["W1"] + params["b1"])',
                    'hidden = as_tensor(x) @ params["W1"] + params["b1"]',
                ),
            ),
        ),
        Mutant(
            "ReLU on the hidden layer instead of tanh",
            (("hidden = tanh(", "hidden = relu("),),
        ),
        Mutant(
            "b1 added after the tanh instead of before",
            (
                (
                    'hidden = tanh(as_tensor(x) @ params["W1"] + params["b1"])',
                    'hidden = tanh(as_tensor(x) @ params["W1"]) + params["b1"]',
                ),
            ),
        ),
        Mutant(
            "parameters replaced by new Tensors without requires_grad=True (the next step gets no gradients)",
            (
                (
                    "    for param in params.values():\n        param.data -= lr * param.grad\n        param.grad = None\n",
                    "    for name, param in params.items():\n        params[name] = Tensor(param.data - lr * param.grad)\n",
                ),
            ),
        ),
        Mutant(
            "the update rebinds the loop variable to a new tensor (the parameters never change)",
            (("param.data -= lr * param.grad", "param = param - lr * param.grad"),),
        ),
    ],
}

"""Iterative post-order DFS with an explicit stack of (node, parent iterator) for the topological order;
inner nodes' .grad set to this call's gradient (leaves accumulate); np.array(..., copy=True) in __init__"""


class Tensor:
    """A node of the computation graph: a float64 NumPy array and how it was made."""

    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, _parents: tuple = (), _vjp=None):
        self.data = np.array(data, dtype=np.float64, copy=True)
        self.grad = None
        self._parents = tuple(_parents)
        self._vjp = _vjp
        self.requires_grad = bool(requires_grad or any(p.requires_grad for p in _parents))

    def backward(self, grad=None) -> None:
        if grad is None:
            if self.size != 1:
                raise RuntimeError("backward() needs a gradient for a tensor of more than one number")
            grad = np.ones(self.shape)
        order, seen = [], {id(self)}
        stack = [(self, iter(self._parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((parent, iter(parent._parents)))
                    break
            else:
                stack.pop()
                order.append(node)
        grads = {id(self): np.asarray(grad, dtype=np.float64)}
        for node in order[::-1]:
            if id(node) not in grads or not node.requires_grad:
                continue
            g = grads[id(node)]
            if not node._parents:
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            node.grad = g
            for parent, parent_grad in zip(node._parents, node._vjp(g)):
                if parent.requires_grad:
                    grads[id(parent)] = parent_grad + grads[id(parent)] if id(parent) in grads else parent_grad

    # ---- given: shapes, printing and the operators, which call the operations below by name
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self) -> str:
        return f"Tensor({self.data}, requires_grad={self.requires_grad})"

    def item(self) -> float:
        return self.data.item()

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __neg__(self):
        return mul(self, -1.0)

    def __sub__(self, other):
        return add(self, -as_tensor(other))

    def __rsub__(self, other):
        return add(other, -self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def sum(self, axis=None, keepdims: bool = False):
        return summation(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return mean(self, axis, keepdims)

    def reshape(self, *shape):
        return reshape(self, tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, dim0: int = -2, dim1: int = -1):
        return transpose(self, dim0, dim1)

    @property
    def T(self):
        return transpose(self, -2, -1)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def tanh(self):
        return tanh(self)

    def relu(self):
        return relu(self)

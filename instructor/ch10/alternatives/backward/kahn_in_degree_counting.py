"""Kahn's algorithm: counts each node's uses first, then releases a node to run its vjp once all its uses have
sent their gradient (no recursion, no explicit topological list)"""


class Tensor:
    """A node of the computation graph: a float64 NumPy array and how it was made."""

    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, _parents=(), _vjp=None):
        self.data = np.asarray(data, dtype=np.float64).copy()
        self.grad = None
        self._parents = tuple(_parents)
        self._vjp = _vjp
        self.requires_grad = requires_grad is True or bool(requires_grad)
        for parent in self._parents:
            if parent.requires_grad:
                self.requires_grad = True

    def backward(self, grad=None):
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            grad = np.ones(self.data.shape)
        uses = {}
        seen = {id(self)}
        stack = [self]
        while stack:
            node = stack.pop()
            for parent in node._parents:
                uses[id(parent)] = uses.get(id(parent), 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
        pending = {id(self): np.array(grad, dtype=np.float64)}
        ready = [self]
        while ready:
            node = ready.pop()
            g = pending.pop(id(node), None)
            parent_grads = [None] * len(node._parents)
            if g is not None and node.requires_grad:
                if node._parents:
                    parent_grads = node._vjp(g)
                elif node.grad is None:
                    node.grad = np.array(g, dtype=np.float64)
                else:
                    node.grad = node.grad + g
            for parent, parent_grad in zip(node._parents, parent_grads):
                if parent_grad is not None and parent.requires_grad:
                    if id(parent) in pending:
                        pending[id(parent)] = pending[id(parent)] + parent_grad
                    else:
                        pending[id(parent)] = np.array(parent_grad, dtype=np.float64)
                uses[id(parent)] -= 1
                if uses[id(parent)] == 0:
                    ready.append(parent)

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

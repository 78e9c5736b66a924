"""Guards a grading process installs in itself before any student code runs.

- No network: internet sockets refuse to connect or send, with a message that says
  why. (Inside the sandbox's network namespace there is no network anyway; the guard
  is what remains where namespaces are unavailable, and it gives the clear message.)
- Few forks from notebook code: `os.fork` called directly from a notebook cell
  fails after FORKS forks in a line of descent, so a fork bomb makes at most
  2**FORKS processes and ends with an error in its own exercise. (Forks made by
  libraries, a DataLoader's workers, do not count; whatever gets around this is
  still held by the sandbox's process cap and time limit.)
- Tampering shows: `Integrity` remembers the functions and classes that grading relies on
  (PyTorch's comparisons and tensor methods, builtins, pytest, the grader's own modules),
  and the code and defaults inside each function, before any student code runs, and names
  every one that was replaced or rewritten since. A submission that patched `torch.allclose`,
  `Tensor.__eq__`, a check helper or its `__code__` or `__defaults__` gets zero.
- Forked copies stay out of the grader: a process forked by student code that
  returns into grader code (a fork bomb's copies, once forking fails) exits there
  instead of grading the submission a second time. Workers forked by libraries
  never return there and are not affected.
"""

from __future__ import annotations

import errno
import os
import posix
import socket
import sys
from pathlib import Path
from types import FunctionType, ModuleType

GRADER_DIR = str(Path(__file__).resolve().parent.parent)
_INTERNET = (socket.AF_INET, socket.AF_INET6)


def _refuse(address) -> PermissionError:
    return PermissionError(
        errno.EACCES, f"network access is not allowed while a submission is graded (tried to reach {address!r})"
    )


def block_network() -> None:
    """Make internet sockets (not Unix sockets, which multiprocessing uses) refuse to connect or send."""
    original = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}

    def guarded(name):
        def method(self, *args, **kwargs):
            if self.family in _INTERNET:
                address = args[-1] if name in ("connect", "connect_ex", "sendto") and args else None
                raise _refuse(address)
            return original[name](self, *args, **kwargs)

        method.__name__ = name
        return method

    for name in original:
        setattr(socket.socket, name, guarded(name))


FORKS = 6
_forks_left = FORKS


def _from_notebook(frame) -> bool:
    """Whether `frame` runs notebook code (the loader names it "<chNN.ipynb cell N: ...>")."""
    return frame.f_code.co_filename.startswith("<") and " cell " in frame.f_code.co_filename


def limit_forks() -> None:
    """Let notebook code call os.fork at most FORKS times in a line of descent (the count is inherited)."""
    fork = posix.fork

    def limited():
        global _forks_left
        if _from_notebook(sys._getframe(1)):
            if _forks_left <= 0:
                raise BlockingIOError(
                    errno.EAGAIN, f"os.fork: a submission may fork at most {FORKS} times while it is graded"
                )
            _forks_left -= 1
        return fork()

    os.fork = posix.fork = limited


def _stop_in_grader_code(frame, event, arg):
    os._exit(0)


def _after_fork_in_child() -> None:
    frame = sys._getframe(1)
    while frame is not None and (
        not frame.f_code.co_filename.startswith(GRADER_DIR) or frame.f_code.co_filename == __file__
    ):
        frame = frame.f_back
    if frame is None:
        return
    # The innermost grader frame is the one that called student code: a copy that gets back to it exits.
    frame.f_trace = _stop_in_grader_code
    frame.f_trace_opcodes = True  # at its very next instruction, not at the end of the line
    sys.settrace(lambda frame, event, arg: None)


def keep_forks_out_of_the_grader() -> None:
    os.register_at_fork(after_in_child=_after_fork_in_child)


def install() -> None:
    block_network()
    limit_forks()
    keep_forks_out_of_the_grader()


# Modules whose functions and classes grading relies on: these by name, and every loaded module
# of these packages.
WATCHED_MODULES = (
    "builtins",
    "math",
    "operator",
    "functools",
    "json",
    "os",
    "posix",
    "random",
    "numpy",
    "torch",
    "torch.testing",
    "torch.testing._comparison",
    "torch._tensor",
    "torch.functional",
    "torch.nn.functional",
    "torch.nn.modules.module",
    "torch.nn.parameter",
    "torch.autograd",
    "torch.optim.optimizer",
    "torch.utils.data.dataloader",
)
WATCHED_PACKAGES = ("autograder", "previous_chapters", "_pytest", "pytest", "pluggy", "tiktoken")
# Replaced by PyTorch itself: importing torch._dynamo (torch.compile does) wraps torch.manual_seed.
UNWATCHED = frozenset({"torch.manual_seed"})


def _is_code(value: object) -> bool:
    """Functions, methods, classes and modules: what a patch replaces (counters and caches change legitimately)."""
    return callable(value) or isinstance(value, (ModuleType, staticmethod, classmethod, property))


def _functions_in(value: object) -> list[FunctionType]:
    """The Python functions a module or class entry holds (methods wrapped as static, class or property)."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if isinstance(f, FunctionType)]
    return [value] if isinstance(value, FunctionType) else []


def _insides(function: FunctionType, depth: int = 2) -> tuple:
    """What can be changed inside a function without replacing it: its code, its defaults, and what
    it closes over that is code (with the insides of those functions, `depth` levels down)."""
    kwdefaults = function.__kwdefaults__ or {}
    found: list[object] = [function.__code__, function.__defaults__, *kwdefaults.keys(), *kwdefaults.values()]
    for cell in function.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # a cell not filled yet
            contents = None
        found.append(contents if _is_code(contents) else None)
        if depth and isinstance(contents, FunctionType):
            found += _insides(contents, depth - 1)
    return tuple(found)


def _watched() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in list(sys.modules.items())
        if isinstance(module, ModuleType) and (name in WATCHED_MODULES or name.split(".")[0] in WATCHED_PACKAGES)
    }


class Integrity:
    """What grading relies on, remembered now; `changed()` names what was replaced, removed or
    shadowed since. Modules and classes may gain new names (lazy imports, caches) but not
    override an inherited method: `Tensor.__eq__` set on the class would shadow TensorBase's."""

    def __init__(self):
        self._modules = _watched()
        self._entries: list[tuple[str, object, dict[str, object]]] = []
        for name, module in self._modules.items():
            namespace = vars(module)
            self._entries.append((name, module, {k: v for k, v in namespace.items() if _is_code(v)}))
            for key, value in list(namespace.items()):
                if isinstance(value, type) and getattr(value, "__module__", None) == name:
                    self._entries.append(
                        (f"{name}.{key}", value, {k: v for k, v in vars(value).items() if _is_code(v)})
                    )
        # A function keeps its identity when its __code__ or __defaults__ are set: remember those too.
        self._insides = [
            (f"{owner_name}.{key}", function, _insides(function))
            for owner_name, _, remembered in self._entries
            for key, value in remembered.items()
            for function in _functions_in(value)
        ]

    def changed(self) -> list[str]:
        """Dotted names of everything replaced, removed, shadowed or rewritten since the snapshot, sorted."""
        found = [name for name, module in self._modules.items() if sys.modules.get(name) is not module]
        for owner_name, owner, remembered in self._entries:
            current = vars(owner)
            found += [f"{owner_name}.{key}" for key, value in remembered.items() if current.get(key) is not value]
            if isinstance(owner, type):
                found += [
                    f"{owner_name}.{key}"
                    for key in current.keys() - remembered.keys()
                    if _is_code(current[key]) and any(hasattr(base, key) for base in owner.__mro__[1:])
                ]
        for name, function, insides in self._insides:
            now = _insides(function)
            if len(now) != len(insides) or any(a is not b for a, b in zip(now, insides)):
                found.append(name)
        return sorted(set(found) - UNWATCHED)

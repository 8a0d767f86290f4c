"""Launch counts of one call, on any device: the non-view aten ops it dispatches (each is at least one
kernel launch on a GPU) and the Triton kernels it launches (counted at Triton's launcher, so under the
interpreter too)."""
import contextlib
from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode


class AtenOpCounter(TorchDispatchMode):
    """Counts the aten ops dispatched inside it, views (which launch nothing) left out."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()
        self.paused = False  # inside a Triton launch: the interpreter's own tensor work is no launch

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and not self.paused:
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self):
        return sum(self.ops.values())


def allocations(ops):
    """How many of the ops in the Counter `ops` only allocate (empty, empty_like, ...): no kernel."""
    return sum(n for op, n in ops.items() if op.split(".")[1].startswith(("empty", "new_empty")))


def aten_ops(step):
    """Counter of the non-view aten ops of one call of step(), after one call that warms caches up."""
    return launches(step)[0]


def launches(step):
    """(Counter of the non-view aten ops outside Triton kernels, names of the Triton kernels launched) of
    one call of step(), after one call that warms caches up."""
    step()
    with AtenOpCounter() as counter, counting_triton_launches(counter) as launched:
        step()
    return counter.ops, launched


def counts(step):
    """(non-view aten ops, of them allocations, Triton launches) of one call of step()."""
    ops, launched = launches(step)
    return sum(ops.values()), allocations(ops), len(launched)


@contextlib.contextmanager
def counting_triton_launches(counter=None):
    """Inside it, the list it yields gets the name of each Triton kernel launched; `counter` (an
    AtenOpCounter) pauses during each launch."""
    from frn_det.layers import path_triton

    launched = []
    if path_triton.kernels is None:
        yield launched
        return
    cls = type(path_triton.kernels.frn_forward_kernel)  # JITFunction, or InterpretedFunction
    run = cls.run

    def counted(self, *args, **kwargs):
        launched.append(self.__name__)
        if counter is None:
            return run(self, *args, **kwargs)
        counter.paused = True
        try:
            return run(self, *args, **kwargs)
        finally:
            counter.paused = False

    cls.run = counted
    try:
        yield launched
    finally:
        cls.run = run

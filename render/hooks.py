"""Forward hooks that are always removed: record outputs, stop a pass at a layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["capture", "stop_after"]


@contextmanager
def capture(
    modules: Mapping[str, nn.Module], *, inputs: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each module (its first input, with ``inputs``), by name, while
    the block runs.

    The dict is filled on every forward pass (last pass wins) and the hooks are
    removed on exit, even on error, so a model never accumulates hooks.
    """
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():
        if inputs:

            def before(_m: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
                seen[name] = args[0]

            handles.append(module.register_forward_pre_hook(before))
        else:

            def after(_m: nn.Module, _i: object, output: torch.Tensor, name: str = name) -> None:
                seen[name] = output

            handles.append(module.register_forward_hook(after))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


class _Reached(Exception):
    """Raised by :func:`stop_after`'s hook, and caught by it."""


@contextmanager
def stop_after(module: nn.Module) -> Iterator[Callable[[], bool]]:
    """End the forward pass run in the block as soon as ``module`` has run: nothing above
    it runs. Hooks registered before this one still see its output. Put the forward call
    alone in the block (the block ends there); the yielded function tells whether
    ``module`` was reached.
    """
    reached = False

    def hook(_m: nn.Module, _i: object, _o: object) -> None:
        nonlocal reached
        reached = True
        raise _Reached

    handle = module.register_forward_hook(hook)
    try:
        yield lambda: reached
    except _Reached:
        pass
    finally:
        handle.remove()

"""Forward hooks that are always removed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["capture"]


@contextmanager
def capture(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each module, by name, while the block runs.

    The dict is filled on every forward pass (last pass wins) and the hooks are
    removed on exit, even on error, so a model never accumulates hooks.
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():

        def hook(_m: nn.Module, _i: object, output: torch.Tensor, name: str = name) -> None:
            outputs[name] = output

        handles.append(module.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()

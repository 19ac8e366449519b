"""Plain torch code that looks inside vision models. Never imports Django."""

from __future__ import annotations

import warnings

# kornia 0.4.1 (lucent's pin) compiles its helpers with torch.jit.script as it is imported,
# and torch 2.14 prints a FutureWarning for each: noise in every worker's log and at every
# `render --sync`, about code that is not ours.
warnings.filterwarnings(
    "ignore", message="`torch.jit.script` is deprecated", category=FutureWarning
)

# Part of every artifact's identity: bump it when a change alters what render/ produces.
# 2: CPU renders at a fixed thread count (render.featurevis.CPU_THREADS); dataset examples
# store their top example's crop.
CODE_VERSION = "2"

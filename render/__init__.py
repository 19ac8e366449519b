"""Plain torch code that looks inside vision models. Never imports Django."""

from __future__ import annotations

# Part of every artifact's identity: bump it when a change alters what render/ produces.
# 2: CPU renders at a fixed thread count (render.featurevis.CPU_THREADS); dataset examples
# store their top example's crop.
CODE_VERSION = "2"

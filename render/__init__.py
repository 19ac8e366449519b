"""Plain torch code that looks inside vision models. Never imports Django."""

from __future__ import annotations

# Part of every artifact's identity: bump it when a change alters what render/ produces.
CODE_VERSION = "1"

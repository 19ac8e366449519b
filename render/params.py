"""What decides a feature visualization's pixels, apart from the model: torch-free, so that
the site can check a request's parameters without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DIVERSITY_IMAGES", "DIVERSITY_WEIGHT", "OBJECTIVES", "FeatureVisParams"]

OBJECTIVES = ("channel", "neuron", "negative", "diversity")
# lucent's diversity recipe: a batch of 4 and `channel - 1e2 * diversity`.
DIVERSITY_IMAGES = 4
DIVERSITY_WEIGHT = 1e2


@dataclass(frozen=True, kw_only=True)
class FeatureVisParams:
    """Everything that decides the pixels, apart from the model, layer and channel."""

    objective: str = "channel"  # channel | neuron | negative | diversity
    steps: int = 512
    size: int = 128
    seed: int = 0
    lr: float = 0.05
    # Upsample the image to the model's input size, as lucent does (True), or feed it as it
    # is, as Lucid's original recipe did (False: faster, the preview tier).
    upsample: bool = True
    # Steps, from the first, that optimize the layer's pre-activation (its value before the
    # ReLU that ends it) instead of the activation: a unit that the grey start leaves at zero
    # everywhere gets a gradient (Lucid's "pre_relu" layers). 0: lucent's recipe.
    pre_relu_steps: int = 0

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}"
            )
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16 px, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be zero or positive, got {self.seed}")
        if not 0 <= self.pre_relu_steps <= self.steps:
            raise ValueError(
                f"pre_relu_steps must be 0 to steps ({self.steps}), got {self.pre_relu_steps}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    @property
    def images_per_channel(self) -> int:
        return DIVERSITY_IMAGES if self.objective == "diversity" else 1

"""The catalog: models (organisms), their significant layers, and each layer's neurons.

A neuron's identity is (model slug, layer name, channel index); URLs, API paths and
claims use it, never bare database ids.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class Model(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    input_size = models.PositiveIntegerField(default=224)
    # sha256 of the weights this catalog was registered with; blank while missing.
    weights_sha256 = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("neurons:model", args=[self.slug])

    @property
    def has_weights(self) -> bool:
        return bool(self.weights_sha256)


class Layer(models.Model):
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=64)  # canonical, in URLs: "mixed4c"
    alias = models.CharField(max_length=64)  # short, as researchers write it: "4c"
    position = models.PositiveIntegerField()  # depth order in the network
    channels = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    # From the architecture, for the model's map: the module's class, whether its output
    # adds the layer below's through an identity skip, and its parallel branches.
    block = models.CharField(max_length=64, blank=True)
    skip = models.BooleanField(default=False)
    branches = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["model", "position"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="layer_unique_name"),
            models.UniqueConstraint(fields=["model", "alias"], name="layer_unique_alias"),
            models.UniqueConstraint(fields=["model", "position"], name="layer_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.model.slug}/{self.name}"

    def get_absolute_url(self) -> str:
        return reverse("neurons:layer", args=[self.model.slug, self.name])


class Neuron(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="neurons")
    index = models.PositiveIntegerField()

    class Meta:
        ordering = ["layer", "index"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "index"], name="neuron_unique_index"),
        ]

    def __str__(self) -> str:
        return self.ref

    def get_absolute_url(self) -> str:
        return reverse("neurons:neuron", args=[self.layer.model.slug, self.layer.name, self.index])

    @property
    def short_ref(self) -> str:
        """As researchers write it: ``4c:447``."""
        return f"{self.layer.alias}:{self.index}"

    @property
    def ref(self) -> str:
        """Portable across Microscope instances: ``inceptionv1/4c:447``."""
        return f"{self.layer.model.slug}/{self.short_ref}"

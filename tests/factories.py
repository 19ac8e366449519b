"""Factories chaining Neuron -> Layer -> Model, for tests that need no real organism."""

from __future__ import annotations

import factory

from neurons.models import Layer, Model, Neuron


class ModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Model
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"toy{n}")
    title = factory.LazyAttribute(lambda o: o.slug.title())


class LayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Layer

    model = factory.SubFactory(ModelFactory)
    position = factory.Sequence(int)
    name = factory.Sequence(lambda n: f"block{n}")
    alias = factory.LazyAttribute(lambda o: o.name.replace("block", "b"))
    channels = 8
    height = 7
    width = 7


class NeuronFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Neuron

    layer = factory.SubFactory(LayerFactory)
    index = 0

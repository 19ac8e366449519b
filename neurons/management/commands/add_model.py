from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from neurons.services import layer_specs, model_register
from render import catalog


class Command(BaseCommand):
    help = "Register a model organism with all its layers and neurons (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help=f"one of: {', '.join(catalog.CATALOG)}")
        parser.add_argument("--weights", type=Path, help="a weights file (.pth) to install")
        parser.add_argument(
            "--download", action="store_true", help="download the weights where the network allows"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["model"]
        try:
            total = len(layer_specs(slug))
            with tqdm(
                total=total, desc=slug, unit="layer", disable=options["verbosity"] < 1
            ) as bar:
                result = model_register(
                    slug=slug,
                    weights=options["weights"],
                    download=options["download"],
                    progress=lambda layer: bar.update(1),
                )
        except (catalog.UnknownOrganism, catalog.WeightsError) as exc:
            raise CommandError(str(exc)) from None
        model = result.model
        self.stdout.write(
            f"{model.slug}: {model.layers.count()} layers, "
            f"{sum(layer.channels for layer in model.layers.all())} neurons "
            f"({result.layers_created} layers and {result.neurons_created} neurons new); "
            f"{result.weights_message}"
        )

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from jobs.atlas import CHUNK, atlas_request, coverage
from jobs.management.commands import render
from jobs.params import TIERS
from neurons.references import BadReference, find_layer, find_model


class Command(render.Command):
    help = (
        "Queue everything a model's pages need: the dataset-example sweep, connecting "
        "weights and a feature visualization of every channel of every significant layer, "
        "at a quality tier, in jobs that many workers share. Asking again queues only what "
        "is missing. Prints the coverage per layer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="a registered model, e.g. mobilenet_v2")
        parser.add_argument("--tier", choices=TIERS, default="preview")
        parser.add_argument(
            "--layers", nargs="+", metavar="layer", help="layer names or aliases (default: all)"
        )
        parser.add_argument("--chunk", type=render.whole, default=CHUNK, help="channels per job")
        self.add_run_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_device(options)
        try:
            model = find_model(options["model"])
            # A layer named twice ("f0 f0", or by its name and its alias) is one layer.
            layers = list(
                dict.fromkeys(find_layer(model, name) for name in options["layers"] or [])
            )
        except BadReference as exc:
            raise CommandError(str(exc)) from None
        if not model.layers.exists():
            raise CommandError(
                f"{model.slug} has no layers: run `manage.py add_model {model.slug}`"
            )
        if options["chunk"] < 1:
            raise CommandError("--chunk must be at least 1")
        try:
            plan = atlas_request(
                model=model,
                tier=options["tier"],
                layers=layers or None,
                chunk=options["chunk"],
                enqueue=not options["sync"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(m for messages in exc.message_dict.values() for m in messages)
            ) from None
        self.stdout.write(
            f"{plan.existing} feature visualizations already rendered, {plan.missing} to "
            f"render; {len(plan.jobs)} job(s)"
        )
        self.run(plan.jobs, options)
        for row in coverage(model=model):
            self.stdout.write(f"  {row}")
        self.raise_failed(plan.jobs, options)

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from jobs import runner
from jobs.lifecycle import ClaimOutcome
from jobs.models import KIND_BY_OBJECTIVE, ArtifactKind, RenderJob
from jobs.planning import render_request
from neurons.references import BadReference, find_layer, find_model
from neurons.validation import whole_number
from render.params import OBJECTIVES

RANGE_RE = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9}))?")  # no layer has a billion channels


def whole(text: str) -> int:
    """argparse's type: ASCII digits (its ``int`` reads "\u0663" as 3)."""
    number = whole_number(text)
    if number is not None:
        return number
    if text.isascii() and text.isdigit():
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is too large (at most 18 digits)")
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is negative")
    raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number (digits 0-9)")


def parse_channels(text: str) -> range:
    """``0-31`` (both ends included) or ``7``."""
    match = RANGE_RE.fullmatch(text.strip())
    if match is None:
        raise CommandError(f"bad channel range {text!r}: write START-END (e.g. 0-31) or one index")
    start = int(match[1])
    end = int(match[2]) if match[2] is not None else start
    if end < start:
        raise CommandError(f"bad channel range {text!r}: {end} comes before {start}")
    return range(start, end + 1)


class Command(BaseCommand):
    help = (
        "Render feature visualizations, dataset examples and connecting weights of a model's "
        "neurons. Queues jobs "
        "for the workers (or runs them here with --sync). Idempotent: what is rendered already "
        "is not rendered again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="a registered model, e.g. mobilenet_v2")
        parser.add_argument(
            "layers", nargs="*", metavar="layer", help="layer names or aliases (default: all)"
        )
        parser.add_argument("--channels", help="e.g. 0-31 (default: every channel)")
        parser.add_argument("--steps", type=whole, help="optimization steps (default 512)")
        parser.add_argument("--size", type=whole, help="image size in px (default 128)")
        parser.add_argument("--seed", type=whole, default=0)
        parser.add_argument(
            "--objective",
            action="append",
            choices=OBJECTIVES,
            help="channel (default), neuron, negative or diversity; repeat for several",
        )
        parser.add_argument(
            "--examples", metavar="PATH", help="also sweep this folder of images for examples"
        )
        parser.add_argument(
            "--weights",
            action="store_true",
            help="also compute connecting weights: each layer's from the layer below (its "
            "neurons' strongest inputs, the lower neurons' strongest outputs)",
        )
        parser.add_argument(
            "--no-featurevis",
            action="store_true",
            help="no feature visualizations (with --examples and/or --weights)",
        )
        self.add_run_arguments(parser)

    @staticmethod
    def add_run_arguments(parser: CommandParser) -> None:
        how = parser.add_mutually_exclusive_group()  # one or the other: here, or queued
        how.add_argument(
            "--sync", action="store_true", help="render here and now instead of queueing"
        )
        how.add_argument(
            "--wait", action="store_true", help="queue, then follow the jobs until they end"
        )

    @staticmethod
    def check_device(options: dict[str, Any]) -> None:
        """With --sync, before anything is planned: a device this machine lacks would fail
        here every job the command joins, those queued for the workers included."""
        if options["sync"]:
            from jobs.kinds import RenderFailure
            from jobs.worker import render_device  # torch: --sync renders here anyway

            try:
                render_device()
            except RenderFailure as exc:
                raise CommandError(str(exc)) from None

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_device(options)
        try:
            model = find_model(options["model"])
            names = options["layers"]
            layers = [find_layer(model, name) for name in names] or list(model.layers.all())
        except BadReference as exc:
            raise CommandError(str(exc)) from None
        if not layers:
            raise CommandError(
                f"{model.slug} has no layers: run `manage.py add_model {model.slug}`"
            )
        channels = parse_channels(options["channels"]) if options["channels"] is not None else None
        widest = max(layer.channels for layer in layers)
        if channels is not None and not names and channels.start >= widest:  # cut to nothing
            raise CommandError(
                f"--channels {options['channels']}: the widest layer of {model.slug} has "
                f"{widest} channels (0-{widest - 1})"
            )
        kinds: list[str] = []
        if not options["no_featurevis"]:
            kinds += [
                KIND_BY_OBJECTIVE[o] for o in dict.fromkeys(options["objective"] or ["channel"])
            ]
        if options["examples"]:
            kinds.append(ArtifactKind.EXAMPLES)
        if options["weights"]:
            kinds.append(ArtifactKind.WEIGHTS)
        if not kinds:
            raise CommandError(
                "nothing to render: --no-featurevis needs --examples PATH or --weights"
            )
        featurevis = {"seed": options["seed"]}
        for name in ("steps", "size"):
            if options[name] is not None:
                featurevis[name] = options[name]
        try:
            plan = render_request(
                model=model,
                layers=layers,
                kinds=kinds,
                channels=channels,
                clip=not names,  # a range for every layer is cut to each one's size
                featurevis=featurevis,
                examples={"corpus": options["examples"]} if options["examples"] else None,
                enqueue=not options["sync"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(m for messages in exc.message_dict.values() for m in messages)
            ) from None
        if any(kind not in (ArtifactKind.EXAMPLES, ArtifactKind.WEIGHTS) for kind in kinds):
            self.stdout.write(
                f"{plan.existing} feature visualizations already rendered, {plan.missing} to render"
            )
        self.stdout.write(f"{len(plan.jobs)} job(s)")
        for job in plan.jobs:
            self.stdout.write(f"  job {job.pk}: {job.kind_label} of {job.target}")
        self.run(plan.jobs, options)
        self.raise_failed(plan.jobs, options)

    def run(self, jobs: list[RenderJob], options: dict[str, Any]) -> None:
        """Here (--sync), followed (--wait), or left to the workers."""
        quiet = options["verbosity"] < 1
        if options["sync"]:
            self.run_here(jobs, quiet=quiet)
        elif options["wait"]:
            self.follow(jobs, quiet=quiet)
        elif jobs:
            self.stdout.write("Queued for the workers (`celery -A microscope worker -Q gpu`).")

    @staticmethod
    def raise_failed(jobs: list[RenderJob], options: dict[str, Any]) -> None:
        failed = RenderJob.objects.filter(
            pk__in=[job.pk for job in jobs],
            status__in=[RenderJob.Status.FAILED, RenderJob.Status.CANCELLED],
        )
        if (options["sync"] or options["wait"]) and failed:
            raise CommandError(
                "; ".join(f"job {job.pk} {job.status}: {job.error}" for job in failed)
            )

    def run_here(self, jobs: list[RenderJob], *, quiet: bool) -> None:
        for job in jobs:
            unit = {ArtifactKind.EXAMPLES: "image", ArtifactKind.WEIGHTS: "step"}.get(
                job.kind, "channel"
            )
            with tqdm(desc=f"job {job.pk} {job.kind}", unit=unit, disable=quiet) as bar:

                def progress(done: int, total: int, bar: tqdm = bar) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                claim = runner.render_job_execute(job_id=job.pk, progress=progress)
            job.refresh_from_db()
            if claim is not ClaimOutcome.CLAIMED:
                self.stdout.write(f"  job {job.pk}: {claim.value} elsewhere ({job.status})")
            elif job.status == RenderJob.Status.DONE:
                self.stdout.write(f"  job {job.pk}: done")

    def follow(self, jobs: list[RenderJob], *, quiet: bool) -> None:
        ids = [job.pk for job in jobs]
        with tqdm(desc="rendering", disable=quiet) as bar:
            while True:
                rows = list(RenderJob.objects.filter(pk__in=ids))
                bar.total = sum(job.progress_total for job in rows) or None
                bar.n = sum(job.progress_done for job in rows)
                bar.set_postfix_str(
                    ", ".join(f"{job.pk}:{job.status}" for job in sorted(rows, key=lambda j: j.pk))
                )
                if not any(job.is_active for job in rows):
                    break
                time.sleep(1)

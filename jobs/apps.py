from __future__ import annotations

from django.apps import AppConfig

EXPLORATION_KIND = "exploration"


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Renders"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from jobs import explore, kinds, params
        from jobs.models import ArtifactKind, Upload

        post_delete.connect(explore.upload_file_delete, sender=Upload)

        featurevis = "jobs.executors.featurevis.featurevis_run"
        for kind in (
            ArtifactKind.FEATUREVIS,
            ArtifactKind.FEATUREVIS_NEURON,
            ArtifactKind.FEATUREVIS_NEGATIVE,
            ArtifactKind.FEATUREVIS_DIVERSITY,
        ):
            kinds.register(
                kinds.JobKind(
                    kind.value,
                    kind.label,
                    kinds.Target.LAYER,
                    params.featurevis_job_params,
                    featurevis,
                )
            )
        kinds.register(
            kinds.JobKind(
                ArtifactKind.EXAMPLES.value,
                ArtifactKind.EXAMPLES.label,
                kinds.Target.LAYER_OR_MODEL,
                params.examples_job_params,
                "jobs.executors.examples.examples_run",
            )
        )
        kinds.register(
            kinds.JobKind(
                EXPLORATION_KIND,
                "exploration of an image",
                kinds.Target.LAYER_OR_MODEL,
                params.exploration_job_params,
                "jobs.executors.explore.explore_run",
                requestable=False,
            )
        )
        kinds.register(
            kinds.JobKind(
                ArtifactKind.WEIGHTS.value,
                ArtifactKind.WEIGHTS.label,
                kinds.Target.WHOLE_LAYER,
                params.weights_job_params,
                "jobs.executors.weights.weights_run",
            )
        )

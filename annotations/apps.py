from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ValidationError

EVIDENCE_KIND = "evidence"


def evidence_job_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """An evidence job's params: the id of the annotations.Evidence row it computes."""
    evidence = params.get("evidence")
    if isinstance(evidence, bool) or not isinstance(evidence, int):
        raise ValidationError({"params": "an evidence job needs the id of its evidence row"})
    return {"evidence": evidence}


class AnnotationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotations"
    verbose_name = "Claims and reviews"

    def ready(self) -> None:
        from annotations.selectors import neuron_labels
        from jobs import kinds
        from neurons import labels

        labels.register(neuron_labels)
        kinds.register(
            kinds.JobKind(
                EVIDENCE_KIND,
                "circuit evidence",
                kinds.Target.NEURON,
                evidence_job_params,
                "annotations.executors.evidence_run",
                requestable=False,
            )
        )

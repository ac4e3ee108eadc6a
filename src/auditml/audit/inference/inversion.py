"""``auditml audit --attack model_inversion``: reconstruct each class from the model, then ask
whether the reconstructions look like the class and whether they reveal *training* data.

Reconstructions come from :func:`auditml.attacks.inversion.invert` (MI-Face, or the TV-prior
variant). Two judges, both from :mod:`auditml.metrics.inversion`: an evaluation classifier
trained on population data the target never saw labels each reconstruction (its own held-out
accuracy is recorded, so a weak evaluator is not mistaken for a weak attack); and each
reconstruction's nearest member is compared with its nearest non-member of the same class, on
balanced subsamples, with a one-sided sign test. The numbers are estimates, not bounds.
"""

from __future__ import annotations

import numpy as np

from auditml.attacks.inversion import InversionSettings, inversion_notes, invert
from auditml.audit.inference.base import InferenceAudit, InferenceEvidence, InferenceOutcome
from auditml.errors import ConfigError
from auditml.figure_data import InversionGallery
from auditml.metrics.inversion import evaluation_accuracy, fit_evaluator, member_vs_nonmember
from auditml.metrics.roc import MetricsInputError
from auditml.records import InversionClassRecord, ModelInversionRecord


class ModelInversionAudit(InferenceAudit):
    name = "model_inversion"
    Settings = InversionSettings
    params: InversionSettings

    def run(self, evidence: InferenceEvidence) -> InferenceOutcome:
        population = evidence.population
        if population is None or len(population) == 0:
            raise ConfigError(
                "model_inversion needs population data the model never trained on (for the "
                "evaluation classifier and the data's range); this audit has none"
            )
        classes = np.arange(evidence.num_classes)
        flat = population.x.reshape(len(population), -1)
        lower = flat.min(axis=0).reshape(evidence.input_shape)
        upper = flat.max(axis=0).reshape(evidence.input_shape)
        model = evidence.model.to(evidence.device).eval()
        reconstructions = invert(
            model, classes, evidence.input_shape, self.params, device=evidence.device,
            lower=lower, upper=upper,
        )
        try:
            evaluator = fit_evaluator(population.x, population.y, evidence.seed)
        except MetricsInputError as error:  # the caller's data, named as the caller knows it
            raise MetricsInputError(f"population: {error}") from None
        predicted = evaluator.predict(reconstructions)
        members, nonmembers = evidence.members, evidence.nonmembers
        nearest = member_vs_nonmember(
            reconstructions, classes, members.x, members.y, nonmembers.x, nonmembers.y,
            seed=evidence.seed,
        )
        record = ModelInversionRecord(
            settings=self.settings(),
            notes=inversion_notes(self.params, evidence.input_shape),
            evaluator_held_out_accuracy=evaluator.held_out_accuracy,
            evaluator_train_size=evaluator.train_size,
            evaluation_accuracy=evaluation_accuracy(predicted, classes),
            classes=[
                InversionClassRecord(
                    label=int(label), predicted=int(guess),
                    member_distance=float(nearest.member_distances[i]),
                    nonmember_distance=float(nearest.nonmember_distances[i]),
                    compared_per_side=int(nearest.compared_per_side[i]),
                )
                for i, (label, guess) in enumerate(zip(classes, predicted, strict=True))
            ],
            member_closer=nearest.member_closer,
            ties=nearest.ties,
            fraction_member_closer=nearest.fraction_member_closer,
            p_value=nearest.p_value,
            run=evidence.run_facts,
        )
        gallery = InversionGallery(
            reconstructions=reconstructions,
            nearest_members=members.x[nearest.member_indices],
            class_names=[str(c) for c in classes],
            member_distances=nearest.member_distances,
            title=f"{evidence.run_facts.experiment_name}: model inversion "
            f"({self.params.method}) above each class's nearest member",
        )
        return InferenceOutcome(record, {"gallery": gallery})

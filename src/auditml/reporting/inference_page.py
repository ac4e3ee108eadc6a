"""The one-run report's sections for the audits beyond membership (attribute inference, model
inversion): the same numbers as ``auditml audit`` prints, as HTML. Both are estimates."""

from __future__ import annotations

from auditml.formatting import format_confidence
from auditml.records import AttributeInferenceRecord, ModelInversionRecord
from auditml.reporting import glossary, page
from auditml.reporting.glossary import Term
from auditml.reporting.views import InferenceView


def inference_section(view: InferenceView) -> page.Html:
    record = view.record
    if isinstance(record, AttributeInferenceRecord):
        return _attribute_section(record)
    return _inversion_section(record, view.figure_png)


def _attribute_section(record: AttributeInferenceRecord) -> page.Html:
    level = f"{format_confidence(record.confidence)}"
    columns = [
        page.Column(Term("Attack", "the attribute attack (imputation never queries the model)."),
                    False),
        page.Column(Term(f"Members: accuracy [{level} CI]",
                         "how often the members' attribute is inferred (Clopper-Pearson)."), True),
        page.Column(Term("AUC", "how well the attack's scores separate the categories."), True),
        page.Column(Term("Non-members: accuracy", "the same on records never trained on."), True),
        page.Column(glossary.ATTRIBUTE_INFERENCE, True, "Over imputation (members)"),
        page.Column(Term("Members − non-members", "accuracy gap; Fisher's exact test p."), True),
    ]
    rows = []
    for name, found in record.attacks.items():
        low, high = found.members.accuracy_interval
        advantage = found.advantage_members
        rows.append([
            name + (" (baseline)" if name == record.baseline else ""),
            f"{found.members.accuracy:.1%} [{low:.1%}, {high:.1%}]",
            "—" if found.members.auc is None else f"{found.members.auc:.3f}",
            f"{found.nonmembers.accuracy:.1%}",
            "—" if advantage is None else (
                f"{advantage.advantage:+.1%} [{advantage.interval[0]:+.1%}, "
                f"{advantage.interval[1]:+.1%}] p={advantage.p_value:.2g}"
            ),
            f"{found.member_gap.gap:+.1%} p={found.member_gap.p_value:.2g}",
        ])
    beyond = "yes" if record.beyond_imputation else "no"
    verdict = (
        f"Some attack beats imputation on the members: {beyond}. "
        "The members' attribute is inferred more often than non-members': "
        f"{'yes' if record.member_specific else 'no'} (each at {level}, Bonferroni over the "
        "attacks). Estimates, not bounds."
    )
    return page.section(
        f"Attribute inference of {record.attribute!r}",
        page.paragraph(
            f"{len(record.categories)} categories ({', '.join(record.categories)}); the attacker "
            f"knows every other attribute and the label, and {record.auxiliary_records} "
            "population records the model never trained on."
        ),
        page.table(columns, rows),
        page.paragraph(verdict),
    )


def _inversion_section(record: ModelInversionRecord, png: bytes | None) -> page.Html:
    compared = len(record.classes) - record.ties
    blocks = [page.paragraph(
        f"One reconstruction per class ({record.settings.get('method')}). An independent "
        f"classifier recognises {record.evaluation_accuracy:.0%} of them (its accuracy on "
        f"held-out real data: {record.evaluator_held_out_accuracy:.0%}). {record.member_closer} "
        f"of {compared} lie nearer a member than a non-member of their class (sign test "
        f"p={record.p_value:.2g}; a small p: they depend on which examples were trained on, not "
        "necessarily a copy of one member). Estimates, not bounds."
    )]
    if png is not None:
        blocks.append(page.figures(page.png_figure(
            png, "model inversion: each class's reconstruction above its nearest member"
        ), wide=True))
    blocks += [page.bullet_list(record.notes)] if record.notes else []
    return page.section("Model inversion", *blocks)

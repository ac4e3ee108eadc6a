"""``report.html`` of one audited run: verdict first, then attacks, canary audit, figures,
the most exposed training examples and the glossary."""

from __future__ import annotations

from auditml.figures.plots import svg_element
from auditml.formatting import (
    format_auc,
    format_confidence,
    format_delta,
    format_epsilon,
    format_fpr_target,
    format_rate,
    format_rate_interval,
    gaussian_bound_words,
)
from auditml.metrics.singled_out import SINGLED_OUT_FPR
from auditml.records import (
    AssumptionCheck,
    GaussianBoundRecord,
    MechanismCheckRecord,
    SecretCanaryRecord,
    SecretGroupRecord,
)
from auditml.reporting import glossary, page
from auditml.reporting.figures import run_roc_figure
from auditml.reporting.glossary import Term
from auditml.reporting.inference_page import inference_section
from auditml.reporting.verdict import (
    CHECK_STATUS_WORDS,
    NONMEMBER_TAIL_MEANING,
    BoundSource,
    StrongestAttack,
    Verdict,
    bound_cell,
    exceeds_claim,
    joint_confidence,
    run_verdict,
    tail_words,
)
from auditml.reporting.views import AttackView, CanaryView, RunView


def bounds(view: RunView) -> list[BoundSource]:
    """Every ε lower bound of the run that may be compared with its claim: one per attack, one
    per canary audit (not secrets trained on more than once: :attr:`CanaryView.judged`, as
    ``compare`` reads them)."""
    found = [
        BoundSource(attack.name, attack.epsilon_lower_bound, attack.bound_confidence or 0.95,
                    attack.bound_tail)
        for attack in view.attacks
    ]
    found += [
        BoundSource(f"{canary.name} ({canary.threat_model.replace('_', ' ')} canaries)",
                    canary.epsilon_lower_bound, canary.confidence)
        for canary in view.canaries if canary.judged
    ]
    return found


def verdict(view: RunView) -> Verdict:
    strongest = view.strongest
    return run_verdict(
        dp_enabled=view.facts.dp_enabled,
        claimed_epsilon=view.facts.epsilon,
        bounds=bounds(view),
        strongest=None
        if strongest is None
        else StrongestAttack(strongest.name, strongest.tpr_at_fpr[0.01], strongest.auc,
                             strongest.beats_chance),
        rejections=[canary.name for canary in view.canaries
                    if canary.violation and (canary.curve_rejected or not canary.failed_checks)],
        broken=sorted({check.check for canary in view.canaries
                       for check in canary.failed_checks}),
        unchecked=sorted({name for canary in view.canaries for name in canary.unchecked}),
    )


def _why_violated(canary: CanaryView) -> str:
    """Which test of a canary audit contradicts the claim, as the end of a sentence."""
    reasons = []
    if canary.claim_rejected and canary.claim_p_value is not None:
        reasons.append(f"its claimed privacy curve is rejected, p={canary.claim_p_value:.2g}")
    check = canary.mechanism_check
    if canary.violation and check is not None and check.violation:
        reasons.append(f"the mechanism check: if the run is {check.family}, its ε is at least "
                       f"{check.family_epsilon_lower_bound:.2f}")
    return f" ({'; '.join(reasons)})." if reasons else "."


def _violates(view: RunView, bound: float | None) -> bool:
    return exceeds_claim(
        dp_enabled=view.facts.dp_enabled,
        claimed_epsilon=view.facts.epsilon,
        epsilon_lower_bound=bound,
    )


def _summary(view: RunView, outcome: Verdict) -> page.Html:
    facts = view.facts
    claimed = (
        page.Fact(
            glossary.EPSILON_CLAIMED,
            f"ε = {format_epsilon(facts.epsilon)}, δ = {format_delta(facts.delta)}",
            "claimed by the caller of auditml.audit(); auditml did not see the training or its "
            "accounting" if facts.epsilon_from_caller else
            "DP-SGD; spent, per the Opacus accountant of the audited loop (auditml.CanaryAudit)"
            if facts.audited_in_python else
            "DP-SGD; spent, per the privacy accountant",
            shown="ε claimed",
        )
        if facts.dp_enabled
        else page.Fact(glossary.EPSILON_CLAIMED, "∞", "trained without DP: no guarantee",
                       shown="ε claimed")
        if facts.dp_enabled is False
        else page.Fact(glossary.EPSILON_CLAIMED, "unknown",
                       "audited in Python with no DP claim given; auditml did not see the "
                       "training", shown="ε claimed")
    )
    items = [claimed]
    found = bounds(view)
    if found:
        top = max(found, key=lambda bound: bound.epsilon)
        several = (
            f"; the largest of {len(found)} bounds, which all hold together with "
            f"{format_confidence(joint_confidence(found))} confidence"
            if len(found) > 1 else ""
        )
        tail = tail_words(top.tail)
        meaning = f". {NONMEMBER_TAIL_MEANING}" if top.tail == "nonmember" else ""
        items.append(page.Fact(
            glossary.EPSILON_LOWER_BOUND,
            f"ε ≥ {top.epsilon:.2f}",
            f"a bound with {format_confidence(top.confidence)} confidence, from {top.source}"
            f"{' (' + tail + ')' if tail else ''}{several}{meaning}",
            shown="ε lower bound (audit)",
        ))
    strongest = view.strongest
    if strongest is not None:
        found = f"{strongest.name}: {format_rate(strongest.tpr_at_fpr[0.01])}"
        items.append(page.Fact(
            glossary.STRONGEST_ATTACK,
            found if strongest.beats_chance else "none beyond chance",
            f"of members found at 1% FPR; AUC {strongest.auc:.3f}" if strongest.beats_chance
            else f"best: {found} of members found at 1% FPR, AUC {strongest.auc:.3f} — within "
            "the noise of an attack at chance (95%)",
        ))
        items.append(page.Fact(
            glossary.GDP_ESTIMATE,
            f"≈ {strongest.gdp_epsilon_estimate:.2f}",
            f"{strongest.name}; an estimate, not a bound",
        ))
    if facts.val_perplexity is not None:
        items.append(page.Fact(glossary.VAL_PERPLEXITY, f"{facts.val_perplexity:.2f}",
                               "validation texts"))
    if facts.val_acc is not None:
        what = ("next-token accuracy on the validation texts" if facts.val_perplexity is not None
                else "validation accuracy")
        items.append(page.Fact(glossary.VAL_ACC, format_rate(facts.val_acc), what,
                               shown="Accuracy"))
    else:
        measured = ("" if facts.train_acc is None
                    else f"; {format_rate(facts.train_acc)} on the audited members")
        items.append(page.Fact(glossary.VAL_ACC, "unknown",
                               f"no validation set: audited in Python{measured}",
                               shown="Accuracy"))
    return page.summary(outcome.kind.value, outcome.headline, items)


def _fpr_term(fpr: float) -> Term:
    return Term(f"TPR@{format_fpr_target(fpr)}FPR", glossary.TPR_AT_FPR.definition)


def _bound_header(view: RunView) -> str:
    confidences = {attack.bound_confidence for attack in view.attacks}
    if len(confidences) == 1 and None not in confidences:
        return f"ε lower bound ({format_confidence(confidences.pop())})"
    return "ε lower bound"


def _gdp_cell(attack: AttackView) -> str:
    """The GDP ε estimate, and the GDP lower bound beside it when the audit recorded one."""
    shown = f"{attack.gdp_epsilon_estimate:.2f}"
    if attack.gdp_interval is not None:
        shown += f" [{attack.gdp_interval[0]:.2f}, {attack.gdp_interval[1]:.2f}]"
    if attack.gdp_lower_bound is None:
        return shown
    return f"{shown} (≥ {attack.gdp_lower_bound:.2f} if Gaussian)"


def _part_sentence(view: RunView) -> str:
    """Where the audited members are a random part of a larger training set, say so: the
    rates estimate the whole set's."""
    trained = view.facts.train_size
    if trained is None or trained <= view.attacks[0].members:
        return ""
    return (f" (the members are a random {view.attacks[0].members:,} of the {trained:,} "
            "training examples, set by data.audit_size: the rates estimate the whole set's)")


def _attacks_table(view: RunView) -> page.Html:
    fprs = sorted({fpr for attack in view.attacks for fpr in attack.tpr_at_fpr})
    columns = [
        page.Column(Term("Attack", "the membership-inference attack."), False),
        page.Column(glossary.AUC, True, shown="AUC"),
        *(page.Column(_fpr_term(fpr), True) for fpr in fprs),
        page.Column(glossary.ADVANTAGE, True),
        # Not numeric: the cell names its tail and must wrap on a phone.
        page.Column(glossary.EPSILON_LOWER_BOUND, False, shown=_bound_header(view)),
        page.Column(glossary.GDP_ESTIMATE, True, shown="GDP ε (estimate)"),
    ]

    def cells(attack: AttackView) -> list[str]:
        bound = attack.epsilon_lower_bound
        shown_bound = bound_cell(bound, attack.bound_tail, violation=_violates(view, bound))
        return [
            attack.name,
            format_auc(attack.auc, attack.auc_interval),
            *(format_rate_interval(attack.tpr_at_fpr.get(fpr), attack.tpr_intervals.get(fpr))
              for fpr in fprs),
            format_rate(attack.advantage),
            shown_bound,
            _gdp_cell(attack),
        ]

    return page.table(
        columns,
        [cells(attack) for attack in view.attacks],
        caption=f"{view.attacks[0].members} members and {view.attacks[0].nonmembers} "
        "non-members audited" + _part_sentence(view) + ". Hover a header for its definition."
        + (" [low, high]: 95% bootstrap (BCa) interval, the sampling noise of the audit."
           if any(attack.auc_interval is not None for attack in view.attacks) else "")
        + _thresholds_sentence(view),
        flagged_rows=[
            index
            for index, attack in enumerate(view.attacks)
            if _violates(view, attack.epsilon_lower_bound)
        ],
    )


def _singled_out(view: RunView) -> list[page.Html]:
    """Per attack, the members it singles out at 0.1% FPR with their exact interval, and a tie
    at the top score that holds non-members (no threshold splits it); nothing for audits
    recorded before these numbers existed."""
    items = []
    for attack in view.attacks:
        found = attack.singled_out
        if found is None:
            continue
        low, high = found.members_interval
        item = (
            f"{attack.name}: {found.members_found} of {found.members} members "
            f"[{low:.0f}, {high:.0f}], with {found.nonmembers_flagged} of {found.nonmembers} "
            "non-members (a threshold set this way flags up to "
            f"{format_rate(found.fpr_interval[1])} of non-members)."
        )
        tied, tied_out = attack.tied_at_top, attack.tied_at_top_nonmembers
        if tied is not None and tied_out and tied > 1:
            below = format_rate(tied_out / max(attack.nonmembers, 1))
            item += (
                f" {tied} examples share the top score, {tied_out} of them non-members: no "
                f"threshold splits them, so the TPR is 0 at any FPR below {below}."
            )
        items.append(item)
    if not items:
        return []
    confidence = next(a.singled_out for a in view.attacks if a.singled_out).confidence
    return [
        page.paragraph(
            f"Members singled out at {format_rate(SINGLED_OUT_FPR)} FPR, with a "
            f"{confidence:.0%} exact (Clopper–Pearson) interval on how many such a threshold "
            "finds:"
        ),
        page.bullet_list(items),
    ]


def _thresholds_sentence(view: RunView) -> str:
    """How each ε lower bound chose its threshold: one clause when all attacks share it."""
    chosen = {attack.name: attack.threshold for attack in view.attacks if attack.threshold}
    if not chosen:
        return ""
    if len(set(chosen.values())) == 1:
        return f" ε lower bound: {next(iter(chosen.values()))}."
    each = "; ".join(f"{name}: {words}" for name, words in chosen.items())
    return f" ε lower bound: {each}."


def _canary_section(view: RunView, canary: CanaryView) -> page.Html:
    if not view.facts.dp_enabled:
        judged = "The run claims no DP guarantee, so there is no claim to check."
    elif not canary.judged:
        judged = (
            f"Not compared with the accountant's ε={format_epsilon(view.facts.epsilon)}: each "
            "secret was trained on more than once, and DP-SGD protects such a secret only as a "
            "group of rows."
        )
    elif canary.failed_checks:
        judged = (
            f"VIOLATION: the accountant's ε={format_epsilon(view.facts.epsilon)} does not apply: "
            "the training broke its assumptions ("
            + "; ".join(f"{check.check}: {check.detail}" for check in canary.failed_checks)
            + ")."
        )
    elif canary.violation or _violates(view, canary.epsilon_lower_bound):
        judged = (
            "VIOLATION: the audit contradicts the accountant's "
            f"ε={format_epsilon(view.facts.epsilon)}" + _why_violated(canary)
        )
    elif canary.unchecked:
        judged = (
            f"No contradiction of the accountant's ε={format_epsilon(view.facts.epsilon)} found, "
            f"but not verified: its assumptions {', '.join(canary.unchecked)} were not checked "
            "(below)."
        )
    else:
        judged = f"Consistent with the accountant's ε={format_epsilon(view.facts.epsilon)}."
    columns = [
        page.Column(glossary.CANARY_BOUND, True, shown="ε lower bound"),
        page.Column(Term("Confidence", "the probability with which the bound holds."), True),
        page.Column(Term("Canaries", "canaries drawn; each was trained on with probability 1/2."),
                    True),
        page.Column(Term("Trained on", "canaries whose coin put them into training."), True),
        page.Column(glossary.DELTA, True),
        page.Column(Term("Score", "the canary score whose bound is reported (loss or "
                         "gradient norm, Bonferroni-corrected over both)."), False),
        page.Column(glossary.MAX_EPSILON, True),
    ]
    row = [
        f"{canary.epsilon_lower_bound:.2f}", format_confidence(canary.confidence),
        str(canary.canaries),
        str(canary.included), format_delta(canary.delta) if canary.delta > 0 else "0",
        canary.best_score,
        f"{canary.max_epsilon:.2f}",
    ]
    return page.section(
        f"One-run canary audit ({canary.name}, threat model: "
        f"{canary.threat_model.replace('_', ' ')})",
        page.paragraph(
            f"ε ≥ {canary.epsilon_lower_bound:.2f} with "
            f"{format_confidence(canary.confidence)} confidence "
            f"(Steinke, Nasr and Jagielski 2023). {judged}"
            + _mechanism_sentence(canary.mechanism_check)
            + _gaussian_sentence(canary.gaussian_bound)
        ),
        page.table(columns, [row]),
        *([] if canary.secrets is None else [_secrets_table(canary.secrets)]),
        *([] if not canary.assumptions else [_assumptions_table(canary.assumptions)]),
    )


def _secrets_table(secrets: SecretCanaryRecord) -> page.Html:
    """Exposure and extraction of the secrets trained on, beside those never trained on."""
    columns = [
        page.Column(Term("Secrets", "trained on (by coin), or not: the control."), False),
        page.Column(Term("Canaries", "secrets in the group."), True),
        page.Column(Term("Mean exposure (bits)", "log2 |R| − log2 rank of the secret among "
                         "every possible one (Carlini et al. 2019), "
                         + (f"exact: all {secrets.candidates} ranked; " if secrets.enumerated else
                            f"estimated from {secrets.candidates} sampled candidates, which "
                            f"resolve it up to {secrets.exposure_cap:.1f} bits (of "
                            f"{secrets.space_bits:.1f}); ")
                         + "about 1.44 (1/ln 2) on average for secrets never seen."),
                    True),
        page.Column(Term("Max exposure (bits)", "the most exposed secret of the group."), True),
        page.Column(Term("Extracted [95% CI]", "greedy decoding from the prefix gives the "
                         "whole secret (Clopper–Pearson interval)."), True),
    ]

    def row(name: str, group: SecretGroupRecord) -> list[str]:
        if not group.canaries:
            return [name, "0", "—", "—", "—"]
        low, high = group.extraction_interval or (0.0, 1.0)
        return [name, str(group.canaries), f"{group.mean_exposure:.1f}",
                f"{group.max_exposure:.1f}",
                f"{group.extracted} ({group.extraction_rate:.0%}) [{low:.0%}, {high:.0%}]"]

    return page.table(columns, [row("trained on", secrets.included),
                                row("not trained on", secrets.excluded)])


def _gaussian_sentence(bound: GaussianBoundRecord | None) -> str:
    """The bound under the Gaussian assumption, labelled as such and outside the verdict."""
    if bound is None:
        return ""
    return (f" Beside it, not part of the verdict: {gaussian_bound_words(bound)}; it holds only "
            "if the canaries' scores are normal with equal variances, which small p-values "
            "contradict.")


def _assumptions_table(checks: list[AssumptionCheck]) -> page.Html:
    """Each assumption of the accountant: what it is, whether the training kept it, what was
    seen; a failed one is flagged (the claim does not apply)."""
    columns = [
        page.Column(Term("Check", "an assumption of the privacy accountant, checked against "
                         "what the training did."), False),
        page.Column(Term("The accountant assumes", "what its ε is the privacy of."), False),
        page.Column(Term("Result", "passed; FAILED (the claim does not apply); a warning (the "
                         "claim stands); not checked (what was missing is said)."), False),
        page.Column(Term("What was seen", "the evidence, with its p-value for a statistical "
                         "check; exact checks have none."), False),
    ]
    rows = [
        [check.check.replace("_", " "), check.assumption, CHECK_STATUS_WORDS[check.status],
         check.detail]
        for check in checks
    ]
    return page.table(columns, rows, flagged_rows=[
        index for index, check in enumerate(checks) if check.status == "failed"])


def _mechanism_sentence(check: MechanismCheckRecord | None) -> str:
    """The mechanism check in words (empty where it did not run)."""
    if check is None:
        return ""
    noise, rate, sensitivity = check.noise, check.sample_rate, check.sensitivity
    return (
        f" Mechanism check ({format_confidence(check.confidence)} confidence): the noisy "
        "updates carry a "
        f"noise multiplier of at most {noise.upper:.3f} (the accountant assumed "
        f"{noise.claimed:.3f})"
        + ("" if rate is None else
           f" and the batches were sampled at a rate of at least {rate.lower:.4g} (the "
           f"accountant assumed {rate.claimed:.4g})")
        + ("" if sensitivity is None else
           f"; {'the clipping probe' if sensitivity.probe else 'a sampled canary'}"
           f" moves the sum by at least {sensitivity.lower:.3g} "
           "× the clipping norm (clipping allows 1)")
        + f", so if the run is {check.family}, its ε is at least "
        f"{check.family_epsilon_lower_bound:.2f} (a bound within that family)"
        + (": more than claimed." if check.violation else ".")
    )


def _exposed_section(view: RunView) -> page.Html | None:
    strongest = view.exposing
    if strongest is None:
        if view.strongest is None or not view.strongest.most_exposed:
            return None
        best = view.strongest
        return page.section("Most exposed training examples", page.paragraph(
            "None shown: no attack finds members beyond chance at 1% FPR (the best, "
            f"{best.name}, finds {format_rate(best.tpr_at_fpr.get(0.01, 0.0))} of them, AUC "
            f"{best.auc:.3f}: within the noise of an attack at chance, 95%). Its highest-scoring "
            "members are no more exposed than any others, so listing them would show noise."
        ))
    if not strongest.most_exposed:
        return None
    blocks: list[str] = [page.paragraph(
        f"The training examples {strongest.name} is most sure were trained on (highest scores "
        "among members): what this model gives away first."
    )]
    if strongest.exposed_png is not None:
        blocks.append(page.figures(page.png_figure(
            strongest.exposed_png, f"{strongest.name}: most exposed members (#pool index, y=label)"
        ), wide=True))
    columns = [
        page.Column(Term("Example", "the example's index in the dataset's pool."), True),
        page.Column(Term("Label", "the example's class label."), True),
        page.Column(Term("Score", "the attack's membership score (higher = member)."), True),
    ]
    rows = [[f"#{item.example}", str(item.label), f"{item.score:.4g}"]
            for item in strongest.most_exposed]
    blocks.append(page.table(columns, rows))
    return page.section(f"Most exposed training examples ({strongest.name})", *blocks)


def render_run_page(view: RunView, outcome: Verdict) -> str:
    facts = view.facts
    blocks: list[str] = [_summary(view, outcome)]
    if view.attacks:
        blocks.append(page.section("Attacks", _attacks_table(view), *_singled_out(view)))
    blocks += [_canary_section(view, canary) for canary in view.canaries]
    blocks += [inference_section(item) for item in view.inference]
    roc = run_roc_figure(view)
    if roc is not None:
        svg = svg_element(roc.figure, prefix="roc", description=roc.caption)
        blocks.append(page.section("ROC curves", page.figures(page.svg_figure(svg, roc.caption))))
    exposed = _exposed_section(view)
    if exposed is not None:
        blocks.append(exposed)
    details = [
        f"{attack.name}: "
        + (", ".join(f"{key}={value}" for key, value in attack.settings.items()) or "defaults")
        for attack in view.attacks
    ]
    details += [f"left out {item.name}: {item.reason}" for item in view.skipped]
    if details:
        blocks.append(page.section("Attack settings and notes", page.bullet_list(details)))
    blocks.append(page.glossary([
        glossary.EPSILON_CLAIMED, glossary.DELTA, glossary.EPSILON_LOWER_BOUND, glossary.AUC,
        glossary.TPR_AT_FPR, glossary.ADVANTAGE, glossary.GDP_ESTIMATE, glossary.STRONGEST_ATTACK,
        glossary.CANARY_BOUND, glossary.MAX_EPSILON, glossary.VIOLATION, glossary.VAL_ACC,
        *([glossary.VAL_PERPLEXITY] if facts.val_perplexity is not None else []),
    ]))
    subtitle = " · ".join(
        part for part in (facts.label, facts.dataset, facts.arch, f"run {facts.run_dir}") if part
    )
    return page.page(title=f"Privacy audit: {facts.run_name}", subtitle=subtitle, blocks=blocks)

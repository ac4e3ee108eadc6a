"""IBM ART's attribute-inference and MI-Face attacks beside auditml's, on the same targets.

ART is a benchmark-only comparison, never a dependency of auditml: install it outside the
project's environment and put it on the path for this script only::

    .venv/bin/pip install --target /tmp/artlib --no-deps adversarial-robustness-toolbox six tqdm
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/artlib .venv/bin/python benchmarks/art_compare.py \
        [--diabetes-run RUN] [--digits-run RUN] [--skip-attribute] [--skip-inversion]
        [--miface-max-iter 1000] [--output-dir DIR]

Without ``--diabetes-run`` / ``--digits-run`` it trains the non-private targets of
``benchmarks/beyond_membership.py`` (diabetes seed 0; the demo's digits baseline) first.

Attribute inference (diabetes, sex): the run's own members and non-members and, as the
attacker's training data, the same population records auditml's ``attribute_inference`` uses
(``_population_indices`` of the audit runner). ART gets the sex column in the model's own
standardised encoding (its black-box attack queries the model on these rows); ART's sorted
unique values of that column are [sex=1, sex=2] = auditml's categories 0 and 1, and ART's
guesses are mapped back to the nearest of the two. Attacks, each with ART's logistic
regression (``lr``, the classifier auditml uses) and ART's default neural network (``nn``):
``AttributeInferenceBaseline`` (other features only), ``AttributeInferenceBaselineTrueLabel``
(other features + label: auditml's imputation baseline) and ``AttributeInferenceBlackBox``
(other features + label + the model's predicted class on the true record; auditml's
``model_output`` uses the whole softmax instead of the argmax).

Model inversion (digits): ART's ``MIFace`` with its defaults (window 100, threshold 0.99, lr
0.1) except ``max_iter``: 1000, auditml's miface step budget (ART's default, 10,000, ran over
20 min here under load and was stopped; ``--miface-max-iter 10000`` runs it), from x=0, in the
same per-pixel box auditml searches (the population's range; ART refuses min = max, so
constant pixels get a 1e-6 wide box), on the model followed by a softmax (ART's MIFace reads
``predict`` as class probabilities, and a PyTorch module returns logits). Its reconstructions
are judged by auditml's evaluator and member-vs-non-member test (``fit_evaluator``,
``member_vs_nonmember``) with the audit's seed, as auditml's own are.

Measured 2026-12-01 (auditml 5928440, ART 1.20.1) on 2 CPU cores shared with other jobs, with
OMP_NUM_THREADS=1 (18 s in all; at a162f80 with torch's 2 default threads: 733 s), on the
targets of beyond_membership.py's run (``diabetes_nodp_seed0``, ``dp_tutorial_baseline``; rows
abridged for the ε=5 target)::

    diabetes, no DP, seed 0        acc mem  acc non  adv mem over its baseline     p
    auditml imputation              0.753    0.680   -
    auditml model_output            0.727    0.713   -0.027 [-0.067, +0.013]   0.945
    auditml confidence              0.767    0.500   +0.013 [-0.087, +0.107]   0.447
    ART Baseline (lr)               0.727    0.667   -
    ART BaselineTrueLabel (lr)      0.773    0.667   -
    ART BlackBox (lr)               0.733    0.700   -0.040 [-0.080, -0.007]   0.996
    ART Baseline (nn)               0.693    0.667   -
    ART BaselineTrueLabel (nn)      0.693    0.653   -
    ART BlackBox (nn)               0.720    0.680   +0.027 [-0.020, +0.080]   0.212

    diabetes, DP eps=5, seed 1 (--diabetes-run .../diabetes_eps5_seed1 --skip-inversion)
    auditml imputation              0.633    0.687   -
    auditml model_output            0.740    0.800   +0.107 [+0.040, +0.180]   0.002
    ART BaselineTrueLabel (lr)      0.640    0.673   -
    ART BlackBox (lr)               0.680    0.733   +0.040 [-0.013, +0.093]   0.105
    ART BaselineTrueLabel (nn)      0.587    0.660   -
    ART BlackBox (nn)               0.673    0.720   +0.087 [+0.040, +0.133]   0.000

    digits baseline                 eval acc  member closer    p     mean p(class)  wall s
    auditml miface                    0.80        6/10       0.377        -           2.7
    auditml tv                        0.60        4/10       0.828        -           3.1
    ART MIFace (max_iter 1000)        0.70        5/10       0.623      0.999        10.1
    ART MIFace (max_iter 10000)       0.90        6/10       0.377      1.000        99.4

The two tools agree: on the non-private model neither black-box attack beats its baseline on
members; on the ε=5 model both gain on members and non-members alike (population inference).
ART's MIFace runs every iteration (its stopping test is inverted, see the printed note): at
10,000 iterations it pushes p(class) to 1.000 and its images are recognised more often (0.90)
than auditml's miface (0.80; it stops at p(class) >= 1 - 1e-6 or after 100 steps without
progress) at 37x the time; no method's reconstructions lie nearer the members (p >= 0.377).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from auditml.audit.runner import _population_indices, run_audit
from auditml.data import DATASETS, ArrayDataset, DatasetSpec, select
from auditml.metrics.attribute import advantage_over_imputation
from auditml.metrics.inversion import evaluation_accuracy, fit_evaluator, member_vs_nonmember
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, load_dataset


def import_art() -> ModuleType:
    try:
        import art
    except ImportError:
        print("error: IBM ART is not importable; install it outside the project's venv: "
              "`.venv/bin/pip install --target /tmp/artlib --no-deps "
              "adversarial-robustness-toolbox six tqdm`, then run with PYTHONPATH=/tmp/artlib",
              file=sys.stderr)
        raise SystemExit(2) from None
    return art


@dataclass(frozen=True)
class Target:
    """A trained run as the audit sees it: model, members, non-members, population."""

    run_dir: Path
    model: nn.Module
    members: ArrayDataset
    nonmembers: ArrayDataset
    population: ArrayDataset
    spec: DatasetSpec
    seed: int


def load_target(run_dir: Path) -> Target:
    run = RunDirectory(run_dir)
    config, split = run.read_config(), run.read_split()
    loaded = load_dataset(config)
    data = select(loaded, split)
    model = build_run_model(config)
    model.load_state_dict(run.read_model_state())
    # The audit's own population: the same records, the same order, the same cap.
    indices = _population_indices(split, config.seed)[: config.audit.population_size]
    return Target(run_dir, model.eval(), data.members, data.nonmembers,
                  loaded.pool.subset(indices), DATASETS.get(config.data.dataset), config.seed)


def train_default(kind: str, output_dir: Path) -> Path:
    """The non-private target of beyond_membership.py (``kind``: diabetes or digits)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from beyond_membership import attribute_config, train_run

    from auditml.demo import demo_configs

    raw = (attribute_config(output_dir, "no DP", 0) if kind == "diabetes"
           else demo_configs(output_dir)["dp_tutorial_baseline"])
    run_dir, val_acc, seconds = train_run(raw)
    print(f"trained {run_dir} (val_acc {val_acc:.3f}, {seconds:.0f} s)")
    return run_dir


def art_classifier(art: ModuleType, model: nn.Module, spec: DatasetSpec,
                   clip_values: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(),
                             input_shape=spec.input_shape, nb_classes=spec.num_classes,
                             clip_values=clip_values, device_type="cpu")


def compare_attribute(art: ModuleType, target: Target) -> None:
    from art.attacks.inference.attribute_inference import (
        AttributeInferenceBaseline,
        AttributeInferenceBaselineTrueLabel,
        AttributeInferenceBlackBox,
    )

    started = time.perf_counter()
    record: Any = run_audit(target.run_dir, ["attribute_inference"]).inference_audits[
        "attribute_inference"]
    auditml_seconds = time.perf_counter() - started
    sex = target.spec.sensitive
    assert sex is not None and len(sex.columns) == 1
    column, codes = sex.columns[0], sex.values[:, 0]
    auxiliary_x = target.population.x.reshape(len(target.population), -1)
    if not np.array_equal(np.unique(auxiliary_x[:, column]), np.sort(codes)):
        found = np.unique(auxiliary_x[:, column])
        raise SystemExit(f"error: the population's sex column holds {found}, not the two "
                         f"codes {codes}")
    records = np.concatenate([target.members.x, target.nonmembers.x])
    records = records.reshape(len(records), -1)
    labels = np.concatenate([target.members.y, target.nonmembers.y])
    is_member = np.r_[np.ones(len(target.members), bool), np.zeros(len(target.nonmembers), bool)]
    truth = sex.classes(records)
    others = np.delete(records, column, axis=1)
    classifier = art_classifier(art, target.model, target.spec)
    # The black-box threat model: the model's prediction for the person's true record.
    predicted = np.argmax(classifier.predict(records), axis=1).reshape(-1, 1)
    print(f"\n== attribute inference, {target.run_dir.name}: {is_member.sum()} members, "
          f"{(~is_member).sum()} non-members, {len(auxiliary_x)} auxiliary records")
    print(f"   sex column {column} given to ART as the model's input values "
          f"(sex=1 -> {codes[0]:+.4f}, sex=2 -> {codes[1]:+.4f}); ART's sorted values "
          "[sex=1, sex=2] = auditml's categories [0, 1]; ART's guesses mapped to the nearest code")
    print(f"{'tool':<8} {'attack':<26} {'acc mem':>7} {'acc non':>7}  "
          f"{'adv mem over its baseline [95% CI]':<36} {'p':>6} {'wall s':>7}")
    for name, result in record.attacks.items():
        advantage = result.advantage_members
        shown = (f"{advantage.advantage:+.3f} [{advantage.interval[0]:+.3f}, "
                 f"{advantage.interval[1]:+.3f}]" if advantage else "baseline")
        p = f"{advantage.p_value:.3f}" if advantage else ""
        print(f"{'auditml':<8} {name:<26} {result.members.accuracy:>7.3f} "
              f"{result.nonmembers.accuracy:>7.3f}  {shown:<36} {p:>6}")
    print(f"   (auditml: the whole attribute_inference audit, 3 attacks and their bootstrap "
          f"intervals, took {auditml_seconds:.1f} s)")
    for model_type in ("lr", "nn"):
        correct: dict[str, np.ndarray] = {}
        for name in ("Baseline", "BaselineTrueLabel", "BlackBox"):
            torch.manual_seed(target.seed)  # the nn attack model's initialisation and batches
            step = time.perf_counter()
            if name == "Baseline":
                art_baseline = AttributeInferenceBaseline(attack_model_type=model_type,
                                                          attack_feature=column)
                art_baseline.fit(auxiliary_x)
                guesses = art_baseline.infer(others)
            elif name == "BaselineTrueLabel":
                art_true_label = AttributeInferenceBaselineTrueLabel(
                    attack_model_type=model_type, attack_feature=column)
                art_true_label.fit(auxiliary_x, target.population.y)
                guesses = art_true_label.infer(others, y=labels)
            else:
                art_black_box = AttributeInferenceBlackBox(
                    classifier, attack_model_type=model_type, attack_feature=column)
                art_black_box.fit(auxiliary_x, y=target.population.y)
                guesses = art_black_box.infer(others, y=labels, pred=predicted)
            seconds = time.perf_counter() - step
            category = np.abs(np.asarray(guesses, float).reshape(-1, 1) - codes).argmin(axis=1)
            correct[name] = category == truth
            shown, p = "baseline", ""
            if name == "BlackBox":
                found = advantage_over_imputation(
                    correct[name][is_member], correct["BaselineTrueLabel"][is_member],
                    confidence=record.confidence, seed=target.seed)
                shown = (f"{found.advantage:+.3f} [{found.interval[0]:+.3f}, "
                         f"{found.interval[1]:+.3f}]")
                p = f"{found.p_value:.3f}"
            print(f"{'ART':<8} {f'{name} ({model_type})':<26} "
                  f"{correct[name][is_member].mean():>7.3f} "
                  f"{correct[name][~is_member].mean():>7.3f}  {shown:<36} {p:>6} "
                  f"{seconds:>7.1f}")
    print("   (auditml's advantages are over its imputation; ART BlackBox's over ART's "
          "BaselineTrueLabel of the same classifier kind, both by auditml's paired test)")


def compare_inversion(art: ModuleType, target: Target, output_dir: Path, max_iter: int
                      ) -> None:
    from art.attacks.inference.model_inversion import MIFace

    from auditml.figures.inversion_gallery import render_gallery

    spec, seed = target.spec, target.seed
    classes = np.arange(spec.num_classes)
    flat = target.population.x.reshape(len(target.population), -1)
    lower = flat.min(axis=0).reshape(spec.input_shape)
    upper = flat.max(axis=0).reshape(spec.input_shape)
    constant = upper <= lower
    evaluator = fit_evaluator(target.population.x, target.population.y, seed)
    print(f"\n== model inversion, {target.run_dir.name}: evaluator held-out accuracy "
          f"{evaluator.held_out_accuracy:.3f}; {int(constant.sum())} constant pixels")
    print(f"{'tool':<8} {'method':<22} {'eval acc':>8} {'member closer':>13} {'p':>6} "
          f"{'mean p(class)':>13} {'wall s':>7}")
    for method in ("miface", "tv"):
        started = time.perf_counter()
        report = run_audit(target.run_dir, ["model_inversion"],
                           {"model_inversion": {"method": method}})
        seconds = time.perf_counter() - started
        found: Any = report.inference_audits["model_inversion"]
        print(f"{'auditml':<8} {method:<22} {found.evaluation_accuracy:>8.2f} "
              f"{f'{found.member_closer}/{len(found.classes)}':>13} {found.p_value:>6.3f} "
              f"{'':>13} {seconds:>7.1f}")
    probabilities = nn.Sequential(target.model, nn.Softmax(dim=1)).eval()
    classifier = art_classifier(
        art, probabilities, spec,
        clip_values=(lower.astype(np.float32), np.where(constant, lower + 1e-6, upper)
                     .astype(np.float32)))
    # Counting predict calls counts MIFace's iterations (one cost evaluation per iteration).
    iterations = 0
    predict = classifier.predict

    def counted_predict(*args: Any, **kwargs: Any) -> np.ndarray:
        nonlocal iterations
        iterations += 1
        return predict(*args, **kwargs)

    classifier.predict = counted_predict
    art_miface = MIFace(classifier, max_iter=max_iter, batch_size=len(classes), verbose=False)
    started = time.perf_counter()
    reconstructions = art_miface.infer(None, y=classes)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        reached = probabilities(torch.as_tensor(reconstructions))[classes, classes].numpy()
    nearest = member_vs_nonmember(
        reconstructions, classes, target.members.x, target.members.y, target.nonmembers.x,
        target.nonmembers.y, seed=seed)
    accuracy = evaluation_accuracy(evaluator.predict(reconstructions), classes)
    print(f"{'ART':<8} {f'MIFace (max_iter {max_iter})':<22} {accuracy:>8.2f} "
          f"{f'{nearest.member_closer}/{len(classes)}':>13} {nearest.p_value:>6.3f} "
          f"{reached.mean():>13.3f} {seconds:>7.1f}")
    print(f"   ART MIFace ran {iterations} of max_iter={max_iter} iterations; min p(class) "
          f"{reached.min():.3f}. (ART 1.20.1 keeps a row active while its cost is <= threshold "
          "or not improving, the paper's stopping test read as the continue test, so with "
          "threshold 0.99 it iterates while p(class) >= 0.01, i.e. to max_iter.)")
    gallery = output_dir / f"{target.run_dir.name}_art_miface.png"
    render_gallery(gallery, reconstructions, target.members.x[nearest.member_indices],
                   [str(c) for c in classes], member_distances=nearest.member_distances,
                   title=f"{target.run_dir.name}: ART MIFace above each class's nearest member")
    print(f"   ART gallery {gallery}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diabetes-run", type=Path, default=None)
    parser.add_argument("--digits-run", type=Path, default=None)
    parser.add_argument("--skip-attribute", action="store_true")
    parser.add_argument("--skip-inversion", action="store_true")
    parser.add_argument("--miface-max-iter", type=int, default=1000,
                        help="ART MIFace's max_iter (ART's default is 10000: about 10x the time; "
                        "1000 matches auditml's miface steps)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="runs and galleries (default: a new folder in the temp dir)")
    args = parser.parse_args()
    art = import_art()
    # ART's own attack network calls nn.Softmax() without a dim; its warning is not ours to fix.
    warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")
    print(f"IBM ART {art.__version__}")
    output_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="auditml_art_"))
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not args.skip_attribute:
        run_dir = args.diabetes_run or train_default("diabetes", output_dir)
        compare_attribute(art, load_target(run_dir))
    if not args.skip_inversion:
        run_dir = args.digits_run or train_default("digits", output_dir)
        compare_inversion(art, load_target(run_dir), output_dir, args.miface_max_iter)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""The collapse questions (docs/collapse.md): horizon, dose, repair and detection.

Analysis functions are checked on hand-made curves whose answers are known; the
new experiment shapes (train temperature axis, synthetic share, repair
generations, mixed pool) on their config and data paths.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.dose import onset_text
from harness.analysis.questions import (
    SeedBootstrap,
    answer_all,
    dose_onsets,
    dose_slope_text,
    generations_to,
    recovery_ratio,
    render_questions,
)
from harness.commands._experiment import build_config
from harness.config import RunConfig, from_dict
from harness.errors import BadInput
from harness.experiment.arms import Arm, arms_of, validate
from harness.experiment.presets import DEFAULT_PRESET, PRESETS, preset_names, preset_overrides
from harness.experiment.regimes import Example, build_dataset, mix_fixed
from harness.runfiles.runs import load_run
from tests.run_fixtures import ArmSpec, RunSpec, write_run


# ------------------------------------------------------------------ horizon
def test_generations_to_is_the_first_generation_below_the_fraction() -> None:
    curve = [0.50, 0.48, 0.44, 0.30, 0.20]
    assert generations_to(curve, 0.9) == 2.0      # 0.44 < 0.45
    assert generations_to(curve, 0.5) == 4.0      # 0.20 < 0.25
    assert generations_to([0.5, 0.5, 0.49], 0.9) == math.inf   # never: censored
    assert math.isnan(generations_to([], 0.9))


def test_censored_bootstrap_uses_the_median_and_null_bounds_for_never() -> None:
    boot = SeedBootstrap(n_boot=500, seed=0)
    iv = boot.interval([2.0, 3.0, math.inf], censored=True)
    assert iv.mean == 3.0 and iv.ci_low == 2.0 and iv.ci_high is None
    assert boot.interval([math.inf, math.inf], censored=True).mean is None
    plain = boot.interval([0.4, 0.5, 0.6])
    assert plain.mean == pytest.approx(0.5) and plain.ci_low < 0.5 < plain.ci_high
    assert boot.interval([0.4]).ci_low is None          # one seed: no interval


# ------------------------------------------------------------------ repair
def test_recovery_ratio_by_direction() -> None:
    # pass@1 0.5 -> worst 0.2 -> back to 0.35: half the damage undone
    assert recovery_ratio([0.5, 0.3, 0.2, 0.3, 0.35], 2, "lower") == pytest.approx(0.5)
    assert recovery_ratio([0.5, 0.3, 0.2, 0.5], 2, "lower") == pytest.approx(1.0)
    assert recovery_ratio([0.5, 0.3, 0.2, 0.1], 2, "lower") == pytest.approx(-1 / 3)
    # tail perplexity: higher is damage
    assert recovery_ratio([2.0, 3.0, 4.0, 2.5], 2, "higher") == pytest.approx(0.75)
    # diversity: damage either way from generation 0
    assert recovery_ratio([0.4, 0.6, 0.5, 0.45], 2, "away") == pytest.approx(0.75)
    assert recovery_ratio([0.4, 0.2, 0.3, 0.35], 2, "away") == pytest.approx(0.75)
    # nothing to repair, or no repair generations: undefined
    assert math.isnan(recovery_ratio([0.5, 0.6, 0.7, 0.6], 2, "lower"))
    assert math.isnan(recovery_ratio([0.5, 0.3, 0.2], 2, "lower"))


# ------------------------------------------------------------------ dose
def test_dose_slope_names_where_pass1_starts_falling(tmp_path: Path) -> None:
    spec = RunSpec(arms=(ArmSpec("none", [0.5, 0.5], [0.4, 0.4], real_fraction=0.75),
                         ArmSpec("none", [0.5, 0.65], [0.4, 0.4], real_fraction=0.5),
                         ArmSpec("none", [0.5, 0.30], [0.4, 0.4], real_fraction=0.0)),
                   seeds=(0, 1), n_tasks=40)
    text = dose_slope_text(answer_all(load_run(write_run(tmp_path, spec)), SeedBootstrap(200)))
    assert "falls on 0.5->1" in text and "0.25->0.5" not in text.split(":")[-1]


def test_dose_section_states_where_the_fall_starts(tmp_path: Path) -> None:
    """The report fits the onset per series at the last generation (harness.analysis.dose):
    here final pass@1 is flat from share 0 to 0.25 and falls past it."""
    finals = {1.0: 0.5, 0.95: 0.5, 0.75: 0.5, 0.5: 0.35, 0.0: 0.2}    # real fraction -> pass@1
    spec = RunSpec(arms=tuple(ArmSpec("none", [0.5, (0.5 + p) / 2, p], [0.4, 0.4, 0.4],
                                      real_fraction=f) for f, p in finals.items()),
                   seeds=(0, 1, 2), n_tasks=40)
    answers = answer_all(load_run(write_run(tmp_path, spec)), SeedBootstrap(300))
    [(label, generation, onset)] = dose_onsets(answers, SeedBootstrap(300))
    assert label == "" and generation == 2 and onset.reference == 0.0
    assert onset.knee.share is not None and 0.1 < onset.knee.share < 0.5
    assert onset.falls and onset.first_drop == 0.5
    text = "\n".join(render_questions(answers, {a.key: a.key.label() for a in answers}, {},
                                      SeedBootstrap(300)))
    line = onset_text(onset, "final pass@1 (generation 2)")
    assert line in text.split("\n") and "is flat (0.5" in line
    assert text.index("Slope of final pass@1") < text.index(line)


def test_questions_section_has_horizon_and_dose_tables(tmp_path: Path) -> None:
    spec = RunSpec(arms=(ArmSpec("none", [0.5, 0.4, 0.2], [0.4, 0.5, 0.6], real_fraction=0.5),
                         ArmSpec("none", [0.5, 0.3, 0.1], [0.4, 0.5, 0.6], real_fraction=0.0)),
                   seeds=(0, 1, 2), n_tasks=40)
    run = write_run(tmp_path, spec)
    answers = answer_all(load_run(run), SeedBootstrap(200))
    text = "\n".join(render_questions(answers, {a.key: a.key.label() for a in answers}, {}))
    assert "### Horizon" in text and "### Dose-response" in text
    assert "### Repair" not in text and "### Detection" not in text   # no data: left out


# ------------------------------------------------------------------ config shapes
def test_train_temperature_is_an_arm_axis_with_default_one() -> None:
    cfg = RunConfig()
    assert cfg.train_temperatures == [1.0]
    cfg.train_temperatures = [0.8, 1.0]
    arms = arms_of(cfg)
    assert [a.arm_id for a in arms[:4]] == [
        "f-tests__r-replace__real-0.0__t-0.8__s-0", "f-tests__r-replace__real-0.0__s-0",
        "f-none__r-replace__real-0.0__t-0.8__s-0", "f-none__r-replace__real-0.0__s-0"]
    cfg.train_temperatures = [1.0, 1.0]
    with pytest.raises(BadInput, match=r"train_temperatures lists 1\.0 more than once"):
        validate(cfg)


def test_configs_written_before_the_axis_still_load() -> None:
    cfg = from_dict(RunConfig, {"sampling": {"temperature": 0.8, "train_temperature": 0.8}})
    assert cfg.train_temperatures == [0.8] and cfg.sampling.temperature == 0.8


def test_synthetic_share_sets_real_fractions_at_a_fixed_size() -> None:
    cfg = build_config({}, None, None, {"synthetic_share": "0.25,1.0",
                                        "train_prompts": "128"})
    assert cfg.real_fractions == [0.75, 0.0] and cfg.training_set_size == 128
    with pytest.raises(BadInput, match="give one of --synthetic-share and --real-fractions"):
        build_config({}, None, None, {"synthetic_share": "0.5", "real_fractions": "0.1"})
    with pytest.raises(BadInput, match=r"must be in \(0, 1\]"):
        build_config({}, None, None, {"synthetic_share": "0"})


def test_fixed_size_mix_has_the_share_and_the_size() -> None:
    synth = [Example(f"s{i}", "p", "c", "self", 1) for i in range(100)]
    real = [Example(f"r{i}", "p", "c", "real", 0) for i in range(100)]
    data = mix_fixed(synth, real, 0.75, 40, np.random.default_rng(0))
    assert len(data) == 40 and sum(e.source == "self" for e in data) == 10
    via_regime = build_dataset("replace", [synth], real, 0.0, 512, np.random.default_rng(0),
                               fixed_size=40)
    assert len(via_regime) == 40 and all(e.source == "self" for e in via_regime)
    few = mix_fixed(synth[:3], real, 0.5, 40, np.random.default_rng(0))
    assert sum(e.source == "self" for e in few) == 3 and len(few) == 23   # counts recorded


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_a_valid_config(name: str) -> None:
    cfg = build_config(preset_overrides(name), None, None, {})
    validate(cfg)
    if name.startswith(DEFAULT_PRESET):    # the default ablate grid: one seed, as `run`
        return
    assert len(cfg.seeds) >= 3
    if not name.endswith("-full"):
        assert cfg.generations <= 4


def test_presets_answer_their_question() -> None:
    assert set(PRESETS) == {DEFAULT_PRESET, "horizon", "replace", "poison", "recovery",
                            "detect"}
    assert build_config(preset_overrides("replace"), None, None, {}).regimes == [
        "replace", "accumulate", "accumulate-subsample"]
    assert len(build_config(preset_overrides("horizon"), None, None, {}).train_temperatures) > 1
    assert build_config(preset_overrides("recovery"), None, None, {}).recover > 0
    assert build_config(preset_overrides("detect"), None, None, {}).human_pool_share > 0
    with pytest.raises(BadInput, match="unknown preset"):
        preset_overrides("horizon-fast")


def test_poison_full_asks_the_low_doses_against_an_all_human_control() -> None:
    """Dohmatob et al. (ICLR 2025): a synthetic share as small as 1 in 1000 can still
    collapse a model. The full preset starts at 0.01 and 0.05, each with synthetic
    examples in every generation's set, next to share 0 (nothing synthetic)."""
    from harness.experiment.regimes import synthetic_count

    cfg = build_config(preset_overrides("poison-full"), None, None, {})
    shares = sorted(round(1.0 - f, 6) for f in cfg.real_fractions)
    assert shares[:3] == [0.0, 0.01, 0.05] and shares[-1] == 1.0
    counts = [synthetic_count(f, cfg.training_set_size) for f in sorted(cfg.real_fractions,
                                                                         reverse=True)]
    assert counts[:3] == [0, 5, 26] and counts[-1] == cfg.training_set_size == 512


def test_recover_counts_in_the_planned_generations() -> None:
    cfg = RunConfig()
    cfg.generations, cfg.recover = 3, 2
    assert cfg.total_generations == 5
    arm = Arm.of(filter="none", regime="replace", real_fraction=0.0, seed=0, restart="merge",
                 train_temperature=1.0)
    assert arm.arm_id == "f-none__r-replace__real-0.0__s-0"


# ------------------------------------------------------------------ data paths, real run
@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.model.tiny import ensure_tiny_model
    from tests.model_helpers import SMALL_SPEC

    cache = tmp_path_factory.mktemp("model-cache")
    return ensure_tiny_model(str(cache), progress=False, spec=SMALL_SPEC)


@pytest.mark.slow
@pytest.mark.docker
def test_mixed_pool_detector_and_repair_generations_end_to_end(
        small_model: Path, tmp_path: Path, docker_executor: object) -> None:
    """One real run with a mixed pool, a detector filter and a repair generation:
    human candidates are executed and judged with provenance, detection is scored
    against it, and the repair generation trains on human references only."""
    from harness.analysis.report import write_report
    from harness.experiment.loop import run_experiment
    from harness.runfiles.store import read_json, read_jsonl
    from tests.test_loop import small_config

    cfg = small_config(small_model, tmp_path, filters=["detect:loglik:0.9", "none"],
                       generations=1, recover=1, human_pool_share=0.5,
                       train_temperatures=[0.9])
    store = run_experiment(cfg, docker_executor, lambda _: None)  # type: ignore[arg-type]
    arm_id = "f-detect_loglik_0.9__r-replace__real-0.0__t-0.9__s-0"
    gen1, gen2 = store.gen_dir(arm_id, 1), store.gen_dir(arm_id, 2)

    verdicts = list(read_jsonl(gen1 / "verdicts.jsonl"))
    humans = [v for v in verdicts if v["split"] == "human-pool"]
    selfs = [v for v in verdicts if v["split"] == "train"]
    assert len(humans) == len(selfs) == cfg.train_prompts * cfg.n_train   # share 0.5
    assert all(v["status"] == "passed" for v in humans)     # references pass their tests
    m1 = read_json(gen1 / "metrics.json")
    det = m1["detection"]
    assert det["n_ai"] == len(selfs) and det["n_human"] == len(humans)
    assert 0.0 <= det["auroc"] <= 1.0 and det["threshold"] is not None and det["roc"]
    kept = list(read_jsonl(gen1 / "kept.jsonl"))
    kept_humans = sum(v["kept"] for v in humans)
    assert sum(e["source"] == "real" for e in kept) == kept_humans > 0
    assert m1["phase"] == "self-training" and m1["collapse"]["mode"] in (
        "stable", "sharpening", "noise")
    assert m1["tail_perplexity"] > 1.0 and m1["renderings"]["n_passing"] >= 0

    m2 = read_json(gen2 / "metrics.json")
    train2 = list(read_jsonl(gen2 / "train.jsonl"))
    assert m2["phase"] == "recovery" and m2["filter"] is None
    assert train2 and all(e["source"] == "real" for e in train2)
    assert m2["train_composition"] == {"self": 0, "real": len(train2)} == {
        "self": 0, "real": cfg.train_prompts}
    summary = read_json(store.root / "summary.json")
    assert summary["planned_generations"] == 2
    assert all(a["complete"] and a["train_temperature"] == 0.9
               for a in summary["arms"].values())

    report = write_report(store.root, n_boot=100)
    text = report.markdown.read_text()
    assert "## Collapse questions" in text and "### Repair" in text and "### Detection" in text

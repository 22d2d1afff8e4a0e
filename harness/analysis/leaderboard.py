"""Leaderboard: merge run directories into one versioned, schema-checked document.

One entry per (model, train suite/split, eval suite/split, arm group: filter,
regime, real fraction, restart policy, train temperature, i.e. every arm axis but
the seed, `entry_key_fields`); arms of that entry from every given run are pooled as
seeds, so two runs with seeds 0-1 and 2-3 make one entry with four seeds. (The
restart policy is part of the identity too: pooling arms trained differently
would mix two experiments.) The same seed of the same entry in two runs is
refused: equal config and seed give identical metrics, so it would count one
measurement twice.

Runs are pooled only when their settings (config.toml) are identical apart from
the seed and the arm grid (`harness.config.pool_ignored`); otherwise export stops
with the differing fields named, since an entry that silently mixed learning
rates, problem sets or generation counts would report a number nobody measured.
`pool_different_settings=True` pools them anyway and records, per entry, what
differed (`pooled_settings`).

Incomplete arms (fewer generations than planned) are included and marked:
`complete: false` on the entry, and listed in `incomplete_arms` at the top;
`skip_incomplete=True` leaves them out (still listed, with `included: false`).

Rank: entries are sorted by the area under the pass@1 curve (`collapse.pass1_auc`
mean: trapezoid over generations / number of self-training generations, i.e. the
mean pass@1 over the run), highest first; rank 1 is the best. Ties and missing
values (sorted last) are broken by the entry's identity, so the order is total
and reproducible. The area rewards an arm that starts well and stays well, which
is what "resists collapse" means on a fixed budget of generations.

Protocols: an entry whose runs all ran one benchmark protocol (`run --protocol`)
records it (`protocol`: name, version, hash) next to the settings its runs share
(`config`, flattened, without where and how fast they ran), so anyone can check
the claim: export refuses a run whose config is not the protocol it claims, and
`validate_leaderboard` refuses such an entry. `headline` holds the numbers the
model board ranks by (`harness.analysis.headline`).

Also-eval: an entry whose runs were scored with `run --also-eval SUITE` carries, in
`also_eval`, each suite's per-generation greedy pass@1 and perplexity (with intervals,
`harness.analysis.also_eval`). They are context, never ranked: rank, collapse and
headline come from the primary eval suite only. The field is optional (`{}` without
`--also-eval`), so exports written before it existed stay valid at schema 1.0.

The document's shape is `harness/schemas/leaderboard.schema.json` (shipped in the
package); `validate_leaderboard` checks a document against it and reports the
first bad field by its JSON path (`entries[0].generations[2].pass_at_k`).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import tomllib
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness import __version__
from harness.analysis.also_eval import also_eval_stats, suites_of
from harness.analysis.headline import headline
from harness.analysis.stats import (
    CI_LEVEL,
    COLLAPSE_KEYS,
    DEFAULT_BOOT_SEED,
    DEFAULT_N_BOOT,
    GroupStats,
    Interval,
    group_stats,
    intervals_to_dict,
)
from harness.config import NO_NUMBER, axis_value, group_dimensions, settings_with
from harness.errors import BadInput
from harness.experiment.protocols import CLAIM_KEY, check_claim, check_entry_protocol, parse_claim
from harness.runfiles.runs import ArmResult, RunResult, load_run

SCHEMA_VERSION = "1.0"
RANK_BY = "collapse.pass1_auc.mean"
_RUN_KEY = ("model", "train_suite", "train_split", "eval_suite", "eval_split")


def entry_key_fields() -> tuple[str, ...]:
    """What an entry is: the run's model and suites, then the arm group's axes
    (`harness.config.group_dimensions`); also the entry's first keys, in this order."""
    return (*_RUN_KEY, *group_dimensions())


def _entry_key(run: RunResult, arm: ArmResult) -> tuple[Any, ...]:
    return (*(getattr(run, k) for k in _RUN_KEY), *(v for _, v in arm.key.values))


def _generation_dict(stats: GroupStats, index: int) -> dict[str, Any]:
    gen = stats.generations[index]
    return {
        "generation": gen.generation,
        "pass_at_k": intervals_to_dict({f"pass@{k}": iv for k, iv in gen.pass_at_k.items()}),
        "diversity": gen.diversity.to_dict(),
        "perplexity": gen.perplexity.to_dict(),
        "filter_acceptance_rate": gen.filter_acceptance_rate.to_dict(),
        "filter_precision": gen.filter_precision.to_dict(),
        "filter_recall": gen.filter_recall.to_dict(),
        "n_train_examples": gen.n_train_examples.to_dict(),
    }


def also_eval_curves(arms: Sequence[ArmResult], generations: Sequence[int], n_boot: int,
                     boot_seed: int) -> dict[str, Any]:
    """{suite: {seeds, n_problems_resampled, generations}} for the entry's --also-eval suites.

    One point per generation of the entry (null estimates where the suite was not
    recorded), so every curve of an entry has the same length and `export --validate`
    can hold it to that. Kept apart from `generations` so nothing ranks by it."""
    out: dict[str, Any] = {}
    for suite in suites_of(arms):
        st = also_eval_stats(arms, suite, n_boot=n_boot, seed=boot_seed)
        if st is None:
            continue
        by_gen = {g.generation: g for g in st.generations}
        none = Interval(None)
        out[suite] = {
            "seeds": st.seeds,
            "n_problems_resampled": st.n_problems,
            "generations": [
                {"generation": g,
                 "greedy_pass_at_1": (by_gen[g].pass_at_k.get(1, none) if g in by_gen
                                      else none).to_dict(),
                 "perplexity": (by_gen[g].perplexity if g in by_gen else none).to_dict()}
                for g in generations],
        }
    return out


def _differences(runs: Sequence[RunResult]) -> dict[str, list[Any]]:
    """{setting: its distinct values} for settings that differ between `runs`."""
    keys = sorted({k for r in runs for k in (r.settings or {})})
    out: dict[str, list[Any]] = {}
    for key in keys:
        values = [(r.settings or {}).get(key) for r in runs]
        distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values))
        if len(distinct) > 1:
            out[key] = [json.loads(v) for v in distinct]
    return out


def _check_poolable(members: list[tuple[RunResult, ArmResult]]) -> dict[str, list[Any]]:
    """What differs between the runs of one entry; BadInput when it cannot be checked."""
    runs = list({run.run_id: run for run, _ in members}.values())
    if len(runs) < 2:
        return {}
    unknown = [r.run_id for r in runs if r.settings is None]
    if unknown:
        raise BadInput(f"run {unknown[0]} has no readable config.toml, so it cannot be checked "
                       "to have the same settings as the runs it would be pooled with; export "
                       "it separately or pass --pool-different-settings")
    return _differences(runs)


MACHINE_LOCAL = settings_with(NO_NUMBER)
"""Settings an entry's `config` leaves out: where and how fast its runs ran (the
fields marked NO_NUMBER in harness.config)."""


def run_config(run: RunResult) -> dict[str, Any] | None:
    """A run's config.toml, flattened as written; None when it has none."""
    from harness.config import flatten

    try:
        with open(run.path / "config.toml", "rb") as fh:
            return dict(flatten(tomllib.load(fh)))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _shared_config(configs: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Settings every run of an entry has, with one value, minus the machine-local ones."""
    if not configs or any(c is None for c in configs):
        return {}
    first, *rest = [c for c in configs if c is not None]
    return {k: v for k, v in sorted(first.items()) if k not in MACHINE_LOCAL
            and all(k in c and c[k] == v for c in rest)}


def _protocol_of(configs: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """{name, version, hash} when every run of the entry claims one and the same protocol."""
    claims = {(c or {}).get(CLAIM_KEY) or "" for c in configs}
    if len(claims) != 1 or not (claim := claims.pop()):
        return None
    name, version, digest = parse_claim(claim)
    return {"name": name, "version": version, "hash": digest}


def _entry(key: tuple[Any, ...], members: list[tuple[RunResult, ArmResult]],
           n_boot: int, boot_seed: int, pooled: dict[str, list[Any]],
           configs: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    arms = [arm for _, arm in members]
    stats = group_stats(arms, n_boot=n_boot, seed=boot_seed)
    extra = headline(arms, n_boot=n_boot, seed=boot_seed)
    by_seed = {arm.seed: run for run, arm in members}
    member_configs = [configs[r] for r in sorted({run.run_id for run, _ in members})]
    generations = [_generation_dict(stats, i) for i in range(len(stats.generations))]
    for gen, tail in zip(generations, extra.tail_curve or [], strict=False):
        gen["tail_perplexity"] = tail.to_dict()
    return {
        "rank": 0,  # filled in after sorting
        **dict(zip(entry_key_fields(), key, strict=True)),
        "seeds": stats.seeds,
        "n_seeds": len(stats.seeds),
        "run_ids": sorted({run.run_id for run, _ in members}),
        "config_hashes": sorted({run.config_hash for run, _ in members}),
        "complete": all(arm.complete for arm in arms),
        "pooled_settings": pooled,
        "ks": stats.ks,
        "n_generations": len(stats.generations),
        "n_problems_resampled": stats.n_problems,
        "protocol": _protocol_of(member_configs),
        "config": _shared_config(member_configs),
        "generations": generations,
        "collapse": intervals_to_dict(stats.collapse),
        "headline": extra.to_dict(),
        "also_eval": also_eval_curves(arms, [g.generation for g in stats.generations], n_boot,
                                      boot_seed),
        "per_seed": [
            {"seed": seed, "run_id": by_seed[seed].run_id,
             "arm_id": next(a.arm_id for a in arms if a.seed == seed),
             "config_hash": by_seed[seed].config_hash,
             "collapse": summary.to_dict()}
            for seed, summary in zip(stats.seeds, stats.per_seed_collapse, strict=True)
        ],
    }


def _rank_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    auc = entry["collapse"]["pass1_auc"]["mean"]
    identity = tuple(str(axis_value(entry, k)) for k in entry_key_fields())
    return (auc is None, -(auc or 0.0), identity)


def _load_all(run_dirs: Sequence[str | Path]) -> list[RunResult]:
    if not run_dirs:
        raise BadInput("give at least one run directory")
    runs: list[RunResult] = []
    seen: dict[str, Path] = {}
    for run_dir in run_dirs:
        run = load_run(run_dir)
        if run.run_id in seen:
            raise BadInput(f"run {run.run_id} given twice ({seen[run.run_id]} and {run.path})")
        seen[run.run_id] = run.path
        runs.append(run)
    return runs


def metrics_digest(run_dir: Path) -> str:
    """sha256 over the run's per-generation metrics files (arms/*/gen-*/metrics.json).

    What every number of an entry is computed from; recorded per run in the export
    and carried onto the board, so a board says which runs it was built from, and
    anyone holding those run directories can recompute the digest and compare. It is
    the sha256 of "sha256(file)  path" lines in path order (`sha256sum`'s format).
    """
    lines = []
    for path in sorted(Path(run_dir).glob("arms/*/gen-*/metrics.json")):
        rel = path.relative_to(run_dir).as_posix()
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def incomplete_arms(runs: Sequence[RunResult], skip_incomplete: bool) -> list[dict[str, Any]]:
    """Every arm without all its planned generations, and whether it is in the entries."""
    out: list[dict[str, Any]] = []
    planned = {r.run_id: r.planned_generations for r in runs}
    for run in runs:
        for arm in sorted(run.arms.values(), key=lambda a: a.arm_id):
            if not arm.complete:
                out.append({"run_id": run.run_id, "arm_id": arm.arm_id,
                            "generations_done": len(arm.generations),
                            "generations_planned": None if planned[run.run_id] is None
                            else planned[run.run_id] + 1,
                            "included": bool(arm.generations) and not skip_incomplete})
        for arm_id in run.not_started:
            out.append({"run_id": run.run_id, "arm_id": arm_id, "generations_done": 0,
                        "generations_planned": None if planned[run.run_id] is None
                        else planned[run.run_id] + 1, "included": False})
    return out


def build_leaderboard(run_dirs: Sequence[str | Path], *, n_boot: int = DEFAULT_N_BOOT,
                      boot_seed: int = DEFAULT_BOOT_SEED, skip_incomplete: bool = False,
                      pool_different_settings: bool = False,
                      display_name: str = "") -> dict[str, Any]:
    """Merge run directories into a leaderboard document (valid against the schema).

    See the module docstring for what may be pooled and how incomplete arms show.
    display_name: what a board calls the model (`export --name`), recorded in every
    entry next to `model`, which stays the path or hub id the runs loaded. A label
    only: it ranks nothing, and the runs must all be of one model.
    """
    runs = _load_all(run_dirs)
    if display_name:
        models = sorted({run.model for run in runs})
        if len(models) > 1:
            raise BadInput(f"--name names one model, but these runs ran {len(models)} "
                           f"({', '.join(models)}): export each model separately")
    configs = {run.run_id: run_config(run) for run in runs}
    for run in runs:  # a protocol run is exactly its protocol's experiment, or not exported
        claim = (configs[run.run_id] or {}).get(CLAIM_KEY)
        if claim:
            check_claim(claim, configs[run.run_id] or {}, f"run {run.run_id} ({run.path})")
    grouped: dict[tuple[Any, ...], list[tuple[RunResult, ArmResult]]] = {}
    for run in runs:
        for arm in run.arms.values():
            if not arm.generations or (skip_incomplete and not arm.complete):
                continue
            members = grouped.setdefault(_entry_key(run, arm), [])
            clash = next((r for r, a in members if a.seed == arm.seed), None)
            if clash is not None:
                raise BadInput(f"seed {arm.seed} of arm {arm.arm_id} is in both run "
                               f"{clash.run_id} and run {run.run_id}; export them separately")
            members.append((run, arm))
    pooled: dict[tuple[Any, ...], dict[str, list[Any]]] = {}
    for key, members in grouped.items():
        pooled[key] = _check_poolable(members)
        if pooled[key] and not pool_different_settings:
            ids = sorted({run.run_id for run, _ in members})
            shown = "; ".join(f"{k}: {' vs '.join(map(str, v))}"
                              for k, v in list(pooled[key].items())[:6])
            more = f" (and {len(pooled[key]) - 6} more)" if len(pooled[key]) > 6 else ""
            raise BadInput(f"runs {', '.join(ids)} differ in more than the seed ({shown}{more}); "
                           "pooling them would mix experiments: export them separately, or "
                           "pass --pool-different-settings to pool anyway (the entry then "
                           "records what differed)")
    if not grouped:
        raise BadInput("no arm left to export" + (" (all incomplete: drop --skip-incomplete)"
                                                 if skip_incomplete else ""))
    entries = [_entry(key, members, n_boot, boot_seed, pooled[key], configs)
               for key, members in grouped.items()]
    entries.sort(key=_rank_key)
    for rank, entry in enumerate(entries, start=1):
        entry["rank"] = rank
        if display_name:
            entry["display_name"] = display_name
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "rank_by": RANK_BY,
        "statistics": {
            "ci_level": CI_LEVEL,
            "method": "percentile bootstrap resampling seeds and eval problems (paired "
                      "across generations); see harness/analysis/stats.py",
            "n_boot": n_boot,
            "seed": boot_seed,
        },
        "runs": [
            {"run_id": r.run_id, "config_hash": r.config_hash,
             "harness_version": r.harness_version, "model": r.model,
             "train_suite": r.train_suite, "eval_suite": r.eval_suite, "n_arms": len(r.arms),
             "metrics_sha256": metrics_digest(r.path)}
            for r in runs
        ],
        "incomplete_arms": incomplete_arms(runs, skip_incomplete),
        "entries": entries,
    }


# ----------------------------------------------------------------------- validation


@cache
def leaderboard_schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package (harness/schemas/leaderboard.schema.json)."""
    text = resources.files("harness").joinpath("schemas/leaderboard.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document root)"


def validate_leaderboard(doc: Any) -> None:
    """Raise BadInput naming the first invalid field by JSON path, e.g.
    `entries[0].generations[2].pass_at_k: 'x' is not of type 'object'`."""
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(leaderboard_schema())
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            path.append(missing[0])
            raise BadInput(f"{_json_path(path)}: required field is missing")
        raise BadInput(f"{_json_path(path)}: {error.message}")
    models = {r["run_id"]: r["model"] for r in doc["runs"]}
    for i, entry in enumerate(doc["entries"]):
        if entry["rank"] != i + 1:
            raise BadInput(f"entries[{i}].rank: expected {i + 1} (entries are sorted by rank), "
                           f"got {entry['rank']}")
        check_entry_numbers(entry, f"entries[{i}]")
        check_entry_also_eval(entry, f"entries[{i}]")
        check_entry_model(entry, models, f"entries[{i}]")
        if entry.get("protocol"):
            check_entry_protocol(entry, f"entries[{i}]")
        if i and _rank_key(doc["entries"][i - 1])[:2] > _rank_key(entry)[:2]:
            raise BadInput(f"entries[{i}].rank: its pass@1 AUC "
                           f"{entry['collapse']['pass1_auc']['mean']} is above the entry "
                           f"ranked before it ({RANK_BY}, highest first)")


_TOLERANCE = 1e-9


def _same_number(stored: Any, computed: float | None) -> bool:
    """A stored mean equals one recomputed from the curves (None = not computable)."""
    if computed is None or (isinstance(computed, float) and not math.isfinite(computed)):
        return stored is None
    if isinstance(stored, bool) or not isinstance(stored, int | float):
        return False
    return abs(stored - computed) <= _TOLERANCE * max(1.0, abs(computed))


def _means(gens: list[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> list[Any]:
    out = []
    for gen in gens:
        try:
            out.append(get(gen)["mean"])
        except (KeyError, TypeError):
            out.append(None)
    return out


def check_entry_numbers(entry: dict[str, Any], where: str) -> None:
    """BadInput unless every headline of `entry` is what its own curves give.

    An entry carries its per-generation mean curves; every summary the board or a
    reader ranks by (collapse: AUC, slope, first generation below half, diversity
    retention; headline: relative AUC, generations to 90%/50%, gain, tail ratio) is a
    function of those means (harness.analysis.stats, .headline), so it is recomputed
    here and must match. pass@1 may not exceed pass@k at any generation (true of the
    unbiased estimator), and the mean of the per-seed AUCs and slopes is the AUC and
    slope of the mean curve (both are linear). So a hand edit of one number shows;
    a forger who rewrites every one of them consistently is caught only by the
    metrics digest against the runs (`runs[].metrics_sha256`).
    """
    import numpy as np

    from harness.analysis.headline import first_below, relative_aucs
    from harness.analysis.stats import _aucs, _first_below_half, _retentions, _slopes

    gens = entry["generations"]
    if entry["n_generations"] != len(gens):
        raise BadInput(f"{where}.n_generations: {entry['n_generations']}, but the entry has "
                       f"{len(gens)} generations")
    x = np.asarray([g["generation"] for g in gens], dtype=float)
    if x.size > 1 and np.any(np.diff(x) <= 0):
        raise BadInput(f"{where}.generations: generation numbers must increase")
    pass1 = _means(gens, lambda g: g["pass_at_k"]["pass@1"])
    for g, gen in enumerate(gens):
        p1 = pass1[g]
        for name, iv in gen["pass_at_k"].items():
            if name != "pass@1" and p1 is not None and iv.get("mean") is not None \
                    and p1 > iv["mean"] + _TOLERANCE:
                raise BadInput(f"{where}.generations[{g}].pass_at_k.pass@1: {p1} is above "
                               f"{name} {iv['mean']}, which no run can give")
    checks: list[tuple[str, Any, float | None]] = []
    if x.size and all(v is not None for v in pass1):
        y = np.asarray(pass1, dtype=float)[None, :]
        first = _first_below_half(x, y)[0]
        collapse, head = entry["collapse"], entry.get("headline") or {}
        checks += [
            ("collapse.pass1_auc", collapse["pass1_auc"]["mean"], float(_aucs(x, y)[0])),
            ("collapse.pass1_slope", collapse["pass1_slope"]["mean"], float(_slopes(x, y)[0])),
            ("collapse.first_gen_below_half", collapse["first_gen_below_half"]["mean"],
             float(first)),
        ]
        computed_head = {
            "pass1_auc_rel": float(relative_aucs(x, y)[0]),
            "gens_to_90": float(first_below(x, y, 0.9)[0]),
            "gens_to_50": float(first_below(x, y, 0.5)[0]),
            "pass1_gain": float(y[0, -1] - y[0, 0]),
        }
        for key, value in computed_head.items():
            if isinstance(head.get(key), dict):
                checks.append((f"headline.{key}", head[key]["mean"], value))
        per_seed = [s["collapse"] for s in entry.get("per_seed", [])]
        for key in ("pass1_auc", "pass1_slope"):
            seeds = [s.get(key) for s in per_seed]
            if seeds and all(isinstance(v, int | float) for v in seeds):
                mean = collapse[key]["mean"]
                if mean is None or abs(float(np.mean(seeds)) - mean) > 1e-6:
                    raise BadInput(f"{where}.collapse.{key}: {mean}, but its seeds "
                                   f"(per_seed) average {float(np.mean(seeds)):.6g}")
    diversity = _means(gens, lambda g: g["diversity"])
    if x.size and all(v is not None for v in diversity):
        d = np.asarray(diversity, dtype=float)[None, :]
        checks.append(("collapse.diversity_retention",
                       entry["collapse"]["diversity_retention"]["mean"],
                       float(_retentions(d)[0])))
    tail = _means(gens, lambda g: g["tail_perplexity"])
    head = entry.get("headline") or {}
    if x.size and all(v is not None for v in tail) and isinstance(
            head.get("tail_perplexity_ratio"), dict):
        ratio = tail[-1] / tail[0] if tail[0] > 0 else None
        checks.append(("headline.tail_perplexity_ratio",
                       head["tail_perplexity_ratio"]["mean"], ratio))
    for path, stored, computed in checks:
        if not _same_number(stored, computed):
            shown = "none" if computed is None or not math.isfinite(computed) else f"{computed:.6g}"
            raise BadInput(f"{where}.{path}: {stored}, but the entry's own per-generation "
                           f"curves give {shown}")


def check_entry_also_eval(entry: dict[str, Any], where: str) -> None:
    """BadInput unless every also-eval curve lines up with the entry's own generations.

    The schema already holds pass@1 to [0, 1] and perplexity to >= 1; what it cannot
    say is that a curve has one point per generation of the entry, at the same
    generation numbers, from seeds the entry has, with no interval upside down. A
    truncated or shifted curve would otherwise be plotted against the wrong generation.
    """
    numbers = [g["generation"] for g in entry["generations"]]
    seeds = set(entry["seeds"])
    for suite, block in (entry.get("also_eval") or {}).items():
        at = f"{where}.also_eval.{suite}"
        got = [g["generation"] for g in block["generations"]]
        if len(got) != entry["n_generations"]:
            raise BadInput(f"{at}.generations: {len(got)} points, but the entry has "
                           f"{entry['n_generations']} generations")
        if got != numbers:
            raise BadInput(f"{at}.generations: generation numbers {got} are not the entry's "
                           f"{numbers}")
        if not set(block["seeds"]) <= seeds:
            raise BadInput(f"{at}.seeds: {sorted(set(block['seeds']) - seeds)} are not seeds "
                           "of the entry")
        for g, gen in enumerate(block["generations"]):
            for name in ("greedy_pass_at_1", "perplexity"):
                low, high = gen[name]["ci_low"], gen[name]["ci_high"]
                if low is not None and high is not None and low > high:
                    raise BadInput(f"{at}.generations[{g}].{name}: interval [{low}, {high}] "
                                   "is upside down")


def check_entry_model(entry: dict[str, Any], models: dict[str, str], where: str) -> None:
    """BadInput unless the entry's model is the one its runs and its config name."""
    model = entry["model"]
    for run_id in entry["run_ids"]:
        if run_id not in models:
            raise BadInput(f"{where}.run_ids: run {run_id} is not in the document's runs")
        if models[run_id] != model:
            raise BadInput(f"{where}.model: {model!r}, but its run {run_id} ran "
                           f"{models[run_id]!r}")
    named = (entry.get("config") or {}).get("model.name")
    if named is not None and named != model:
        raise BadInput(f"{where}.model: {model!r}, but its config names {named!r}")


def load_leaderboard(path: str | Path) -> dict[str, Any]:
    """Read and validate a leaderboard file someone produced."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON: {exc}") from None
    try:
        validate_leaderboard(doc)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    return doc


# ------------------------------------------------------------------------------ CSV


def _flat(prefix: str, interval: dict[str, Any]) -> dict[str, Any]:
    return {prefix: interval["mean"], f"{prefix}_ci_low": interval["ci_low"],
            f"{prefix}_ci_high": interval["ci_high"]}


def _also_columns(entry: dict[str, Any], generation: int,
                  suites: Sequence[str]) -> dict[str, Any]:
    """`also_eval.SUITE.greedy_pass_at_1` (+ bounds) and `.perplexity` for one CSV row;
    every row gets every suite's columns (empty where it lacks one), as CSV needs."""
    none = Interval(None).to_dict()
    out: dict[str, Any] = {}
    for suite in suites:
        points = (entry.get("also_eval") or {}).get(suite, {}).get("generations", [])
        point = next((p for p in points if p["generation"] == generation), {})
        for name in ("greedy_pass_at_1", "perplexity"):
            out.update(_flat(f"also_eval.{suite}.{name}", point.get(name, none)))
    return out


def leaderboard_csv(doc: dict[str, Any]) -> str:
    """One row per (entry, generation); collapse summaries repeated on every row, then
    the --also-eval suites' columns (none without)."""
    ks = sorted({k for e in doc["entries"] for k in e["ks"]})
    suites = sorted({s for e in doc["entries"] for s in e.get("also_eval") or {}})
    rows: list[dict[str, Any]] = []
    for entry in doc["entries"]:
        ident = {k: axis_value(entry, k) for k in ("rank", *entry_key_fields())}
        ident["seeds"] = ";".join(str(s) for s in entry["seeds"])
        ident["run_ids"] = ";".join(entry["run_ids"])
        ident["complete"] = entry["complete"]
        collapse: dict[str, Any] = {}
        for name in COLLAPSE_KEYS:
            collapse.update(_flat(name, entry["collapse"][name]))
        for gen in entry["generations"]:
            row: dict[str, Any] = {**ident, "generation": gen["generation"]}
            for k in ks:
                row.update(_flat(f"pass@{k}", gen["pass_at_k"].get(
                    f"pass@{k}", {"mean": None, "ci_low": None, "ci_high": None})))
            for name in ("diversity", "perplexity", "filter_acceptance_rate",
                         "filter_precision", "filter_recall"):
                row.update(_flat(name, gen[name]))
            rows.append({**row, **collapse, **_also_columns(entry, gen["generation"], suites)})
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


FORMATS = {".json": "json", ".csv": "csv"}


def format_for(path: Path, fmt: str | None) -> str:
    """The output format: the one asked for, else the file's suffix (`-`: JSON)."""
    if fmt is not None:
        return fmt
    if str(path) == "-":
        return "json"
    if path.suffix.lower() in FORMATS:
        return FORMATS[path.suffix.lower()]
    raise BadInput(f"cannot tell the format of {path} from its suffix; name it .json or .csv, "
                   "or pass --format json|csv")


def leaderboard_text(doc: dict[str, Any], fmt: str) -> str:
    """Validate `doc` and render it as JSON or CSV."""
    validate_leaderboard(doc)
    if fmt == "json":
        return json.dumps(doc, indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return leaderboard_csv(doc)
    raise BadInput(f"unknown format {fmt!r}; use json or csv")


def write_leaderboard(doc: dict[str, Any], path: str | Path, fmt: str = "json") -> Path:
    """Validate `doc`, then write it atomically as JSON or CSV."""
    from harness.atomic import atomic_write_text

    text = leaderboard_text(doc, fmt)
    path = Path(path)
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None
    return path

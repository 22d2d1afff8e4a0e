"""The model board: exported entries from many runs and machines, one row per model.

`export` ranks the arm groups of the runs it is given; the board compares *models*,
which is only meaningful when they ran the same experiment. So it takes only
entries that ran a benchmark protocol (`run --protocol`, checked by
`load_leaderboard`), makes one board per protocol, and refuses to mix two versions
of one protocol. Within a board, one row per model; its arms are the protocol's
grid (filters x regimes x real fractions x train temperatures), and a model
missing one is kept and marked incomplete.

Headline columns (`COLUMNS`), each an estimate with its 95% bootstrap interval as
export computed it (`harness.analysis.headline`, `harness.analysis.stats`):

* collapse resistance of the unverified arm (filter `none`): area under pass@1
  relative to generation 0, and generations until pass@1 falls below 90% / 50%
  of generation 0's (censored: "never" when it does not within the run);
* the verified arm's (filter `tests`) gain: last-generation minus gen-0 pass@1;
* diversity retention of the unverified arm (last / gen-0 diversity);
* tail-perplexity growth of the unverified arm (last / gen 0), shown only when
  some model's entries recorded `tail_perplexity`;
* and, for context, the base model's pass@1 at generation 0.

Ranks with ties (`rank_columns`): a model's rank in a column is 1 + the number of
models that are better beyond doubt, i.e. whose interval lies entirely on the better
side of its own (the rule of Chatbot Arena's leaderboard). Models whose intervals
overlap can share a rank; a shared rank is a tie, shown as `2=`. Without
intervals (one seed and no per-problem data) the means decide. The row rank is the
rank in `RANK_BY`.

The board is deterministic: the same entry files, in any order, give the same
bytes apart from `created`. Its shape is harness/schemas/board.schema.json.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config import axis_value, group_axes, group_dimensions, legacy_settings
from harness.errors import BadInput

SCHEMA_VERSION = "1.0"
UNVERIFIED, VERIFIED = "none", "tests"
RANK_BY = "none_auc_rel"
FLOOR_PASS1 = 0.10
"""At the floor: generation-0 pass@1 below this. Such a model has almost nothing to
lose, so "relative to generation 0" columns cannot show collapse (0.077 held
"perfectly" and tied for rank 1): it is flagged and left out of every collapse
column's ranking (gen-0 pass@1, which only describes the base model, still ranks it)."""
RANK_RULE = ("rank = 1 + number of models whose 95% interval lies entirely on the better "
             "side of this model's; a shared rank is a tie (2=); a value without an "
             "interval (e.g. tail ppl growth of a one-seed entry) is shown but not ranked; "
             f"a model at the floor (gen-0 pass@1 < {FLOOR_PASS1:g}) is flagged and not "
             "ranked on collapse columns")

Estimate = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """A headline column: where its estimate comes from, and which way is better."""

    id: str
    label: str
    description: str
    arm: str                      # the filter whose entry it reads
    better: str                   # "higher" | "lower"
    kind: str                     # "rate" | "ratio" | "delta" | "generations"
    get: Callable[[dict[str, Any]], Estimate | None]
    any_arm: bool = False         # every arm has it (generation 0 is the same base model)

    def public(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "description": self.description,
                "arm": self.arm, "better": self.better, "kind": self.kind}


def _headline(key: str) -> Callable[[dict[str, Any]], Estimate | None]:
    return lambda entry: (entry.get("headline") or {}).get(key)


def _gen0_pass1(entry: dict[str, Any]) -> Estimate | None:
    gens = entry.get("generations") or []
    return gens[0]["pass_at_k"].get("pass@1") if gens else None


COLUMNS: tuple[Column, ...] = (
    Column("pass1_gen0", "gen-0 pass@1", "pass@1 of the base model at generation 0, before "
           "any self-training (context, not collapse)", UNVERIFIED, "higher", "rate",
           _gen0_pass1, any_arm=True),
    Column("none_auc_rel", "AUC vs gen 0 (none)", "unverified arm: area under pass@1 relative "
           "to generation 0, per generation; 1 = kept its level, < 1 = collapsed",
           UNVERIFIED, "higher", "ratio", _headline("pass1_auc_rel")),
    Column("none_gens_to_90", "gens to 90% (none)", "unverified arm: first generation whose "
           "pass@1 is below 90% of generation 0's; > G = not within the run", UNVERIFIED,
           "higher", "generations", _headline("gens_to_90")),
    Column("none_gens_to_50", "gens to 50% (none)", "unverified arm: first generation whose "
           "pass@1 is below half of generation 0's; > G = not within the run", UNVERIFIED,
           "higher", "generations", _headline("gens_to_50")),
    Column("tests_gain", "gain (tests)", "verified arm: pass@1 at the last generation minus "
           "at generation 0", VERIFIED, "higher", "delta", _headline("pass1_gain")),
    Column("none_diversity_retention", "diversity kept (none)", "unverified arm: headline "
           "diversity at the last generation / at generation 0", UNVERIFIED, "higher",
           "ratio", lambda e: (e.get("collapse") or {}).get("diversity_retention")),
    Column("none_tail_ratio", "tail ppl growth (none)", "unverified arm: tail perplexity at "
           "the last generation / at generation 0 (lower = tails kept)", UNVERIFIED, "lower",
           "ratio", _headline("tail_perplexity_ratio")),
)
OPTIONAL_COLUMNS = frozenset({"none_tail_ratio"})
"""Shown only when some model of the board has a value (the metric is optional)."""

def arm_fields() -> tuple[str, ...]:
    """What a board arm is: the arm group's axes (`harness.config.group_dimensions`)."""
    return group_dimensions()


# ------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Source:
    """One export file: its name (no directories), content hash and document."""

    file: str
    sha256: str
    doc: dict[str, Any]


def read_sources(paths: Sequence[str | Path]) -> list[Source]:
    """Read and validate export files (schema and protocol claims), sorted by name."""
    from harness.analysis.leaderboard import validate_leaderboard

    if not paths:
        raise BadInput("give at least one exported entry file (collapse-bench export ... "
                       "--out FILE.json)")
    sources: dict[str, Source] = {}
    for path in map(Path, paths):
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise BadInput(f"no such file: {path}") from None
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(f"{path}: not valid JSON: {exc}") from None
        try:
            validate_leaderboard(doc)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None
        digest = hashlib.sha256(blob).hexdigest()
        if digest in sources:
            raise BadInput(f"{path} is the same file as {sources[digest].file}; give it once")
        sources[digest] = Source(path.name, digest, doc)
    return sorted(sources.values(), key=lambda s: (s.file, s.sha256))


@dataclass(frozen=True)
class _Entry:
    source: Source
    index: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.source.file}: entries[{self.index}]"

    @property
    def arm_key(self) -> tuple[Any, ...]:
        return tuple(axis_value(self.data, k) for k in arm_fields())


def _by_protocol(sources: list[Source]) -> dict[str, list[_Entry]]:
    """Entries grouped by protocol name; refuses entries without one and mixed versions."""
    groups: dict[str, list[_Entry]] = {}
    first: dict[str, _Entry] = {}
    for source in sources:
        for i, data in enumerate(source.doc["entries"]):
            entry = _Entry(source, i, data)
            claim = data.get("protocol")
            if not claim:
                raise BadInput(f"{entry.where} ({data['model']}, filter {data['filter']}) ran "
                               "no benchmark protocol; only `run --protocol NAME` runs go on a "
                               "board")
            seen = first.setdefault(claim["name"], entry)
            other = seen.data["protocol"]
            if (other["version"], other["hash"]) != (claim["version"], claim["hash"]):
                raise BadInput(f"cannot mix {claim['name']} v{other['version']} "
                               f"({seen.where}) and v{claim['version']} ({entry.where}) on one "
                               "board: build one board per protocol version")
            groups.setdefault(claim["name"], []).append(entry)
    return groups


# ---------------------------------------------------------------------- ranking


def has_interval(entry: dict[str, Any]) -> bool:
    """Whether export could resample anything for this entry (else bounds are null)."""
    return entry.get("n_seeds", 0) >= 2 or entry.get("n_problems_resampled", 0) >= 2


def _interval_of(estimate: Estimate, kind: str, entry: dict[str, Any]) -> bool:
    """Whether an estimate has an interval. For censored generations null bounds are
    "not reached", so it is whether export could resample the entry at all."""
    if kind == "generations":
        return has_interval(entry)
    return estimate.get("ci_low") is not None or estimate.get("ci_high") is not None


def bounds(estimate: Estimate | None, kind: str,
           interval: bool) -> tuple[float, float, float] | None:
    """(low, mean, high) as numbers for comparing; None when there is no value.

    Censored generations (`kind == "generations"`): null means "not within the run",
    which is +inf (the best); without an interval both bounds are the mean."""
    if estimate is None:
        return None
    mean, lo, hi = estimate.get("mean"), estimate.get("ci_low"), estimate.get("ci_high")
    if kind == "generations":
        m = math.inf if mean is None else float(mean)
        if not interval:
            return m, m, m
        return (math.inf if lo is None else float(lo), m, math.inf if hi is None else float(hi))
    if mean is None:
        return None
    m = float(mean)
    return (m if lo is None else float(lo), m, m if hi is None else float(hi))


def arena_ranks(values: Sequence[tuple[float, float, float] | None],
                better: str) -> list[int | None]:
    """1 + how many values are better beyond doubt (see the module docstring)."""
    def beats(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
        return a[0] > b[2] if better == "higher" else a[2] < b[0]

    return [None if v is None else 1 + sum(1 for w in values if w is not None and beats(w, v))
            for v in values]


def at_floor(model: dict[str, Any]) -> bool:
    """Whether the model's generation-0 pass@1 is below FLOOR_PASS1 (see there)."""
    cell = model["columns"].get("pass1_gen0")
    mean = None if cell is None else cell.get("mean")
    return isinstance(mean, int | float) and mean < FLOOR_PASS1


def rank_columns(models: list[dict[str, Any]], columns: Sequence[Column]) -> None:
    """Fill each model's `columns[id].rank` and `.tied`, then its row `rank`/`tied`.

    Models at the floor get no rank in the collapse columns (`at_floor`), and a cell
    without an interval gets none in its column (issue 25: the one-seed tail ratio was
    ranked strictly by its mean)."""
    for model in models:
        model["at_floor"] = at_floor(model)
    for column in columns:
        cells = [m["columns"][column.id] for m in models]
        # a mean without an interval ranks nothing: it cannot be told from its neighbours
        ranked = [c if c is not None and c["interval"] and (
                      column.id == "pass1_gen0" or not m["at_floor"]) else None
                  for c, m in zip(cells, models, strict=True)]
        values = [None if c is None else bounds(c, column.kind, c["interval"]) for c in ranked]
        ranks = arena_ranks(values, column.better)
        for cell, rank in zip(cells, ranks, strict=True):
            if cell is not None:  # an unranked (floor) cell keeps rank None
                cell["rank"] = rank
                cell["tied"] = rank is not None and ranks.count(rank) > 1
    for model in models:
        cell = model["columns"].get(RANK_BY)
        model["rank"] = None if cell is None else cell["rank"]
        model["tied"] = bool(cell and cell["tied"])


def _sort_key(model: dict[str, Any]) -> tuple[Any, ...]:
    cell = model["columns"].get(RANK_BY)
    mean = None if cell is None else cell["mean"]
    return (model["rank"] is None, model["rank"] or 0,
            -(mean if isinstance(mean, int | float) else -math.inf), model["model"])


# ------------------------------------------------------------------------- models


def arm_label(arm: dict[str, Any], settings: dict[str, Any]) -> str:
    """`tests`, or `tests / accumulate / real 0.5 / T 0.8` where the protocol varies more:
    the first axis (the filter, which the columns are of) always, each other list axis
    of the protocol's grid where it has more than one value."""
    axes = [f for f in group_axes() if f.is_list and f.axis is not None]
    known = {**legacy_settings(), **settings}
    return " / ".join(f.axis.show(axis_value(arm, f.axis.name)) for i, f in enumerate(axes)
                      if f.axis is not None and (i == 0 or len(known[f.path]) > 1))


def _expected_arms(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every arm group of a protocol's grid, in grid order (each list axis in turn); a
    protocol released before an axis existed ran its legacy value."""
    axes = [f for f in group_axes() if f.axis is not None]
    known = {**legacy_settings(), **settings}
    grid = [known[f.path] if f.is_list else [known[f.path]] for f in axes]
    return [{f.axis.name: v for f, v in zip(axes, point, strict=True) if f.axis is not None}
            for point in itertools.product(*grid)]


def _curves(entry: dict[str, Any]) -> dict[str, Any]:
    gens = entry["generations"]
    curves: dict[str, Any] = {"generations": [g["generation"] for g in gens]}
    for k in entry["ks"]:
        curves[f"pass@{k}"] = [g["pass_at_k"].get(f"pass@{k}") for g in gens]
    curves["diversity"] = [g["diversity"] for g in gens]
    if gens and all("tail_perplexity" in g for g in gens):
        curves["tail_perplexity"] = [g["tail_perplexity"] for g in gens]
    return curves


def _common(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Keys all dicts share with one value, sorted (a model's config across its arms)."""
    if not dicts:
        return {}
    first, *rest = dicts
    return {k: v for k, v in sorted(first.items()) if all(k in d and d[k] == v for d in rest)}


def _model_row(model: str, entries: list[_Entry], protocol: Any,
               columns: Sequence[Column]) -> dict[str, Any]:
    settings = protocol.settings
    by_arm: dict[tuple[Any, ...], _Entry] = {}
    for entry in entries:
        clash = by_arm.get(entry.arm_key)
        if clash is not None:
            raise BadInput(f"model {model!r}, arm {arm_label(entry.data, settings)} of "
                           f"{protocol.label} is in both {clash.where} and {entry.where}; "
                           "give each run's entries once")
        by_arm[entry.arm_key] = entry
    expected = _expected_arms(settings)
    ordered = [by_arm.get(tuple(axis_value(a, k) for k in arm_fields())) for a in expected]
    missing = [arm_label(a, settings) for a, e in zip(expected, ordered, strict=True) if e is None]
    present = [e for e in ordered if e is not None]
    cells: dict[str, Any] = {}
    for column in columns:
        source = next((e for e in present if e.data["filter"] == column.arm),
                      present[0] if column.any_arm and present else None)
        estimate = None if source is None else column.get(source.data)
        cells[column.id] = None if estimate is None or source is None else {
            "mean": estimate.get("mean"), "ci_low": estimate.get("ci_low"),
            "ci_high": estimate.get("ci_high"),
            "interval": _interval_of(estimate, column.kind, source.data),
            "rank": None, "tied": False}
    runs: dict[str, dict[str, Any]] = {}
    for entry in present:
        for run in entry.source.doc["runs"]:
            if run["run_id"] in entry.data["run_ids"]:
                runs[run["run_id"]] = {"run_id": run["run_id"], "config_hash": run["config_hash"],
                                       "harness_version": run["harness_version"],
                                       "metrics_sha256": run.get("metrics_sha256"),
                                       "source": entry.source.file}
    names = sorted({e.data["display_name"] for e in entries if e.data.get("display_name")})
    if len(names) > 1:
        raise BadInput(f"model {model!r} is named {' and '.join(map(repr, names))} by its "
                       "entries' export --name: re-export them with one name")
    return {
        "model": model,
        **({"display_name": names[0]} if names else {}),
        "rank": None,
        "tied": False,
        "at_floor": False,  # set by rank_columns
        "complete": not missing and all(e.data["complete"] for e in present),
        "missing_arms": missing,
        "n_generations": max((e.data["n_generations"] for e in present), default=0),
        "columns": cells,
        "arms": [{
            "label": arm_label(e.data, settings),
            **{k: axis_value(e.data, k) for k in arm_fields()},
            "seeds": e.data["seeds"], "run_ids": e.data["run_ids"],
            "complete": e.data["complete"], "n_generations": e.data["n_generations"],
            "collapse": e.data["collapse"], "source": e.source.file,
            "curves": _curves(e.data),
        } for e in present],
        "config": _common([e.data.get("config") or {} for e in present]),
        "runs": [runs[k] for k in sorted(runs)],
    }


def _board(entries: list[_Entry]) -> dict[str, Any]:
    from harness.experiment.protocols import get_protocol

    claim = entries[0].data["protocol"]
    protocol = get_protocol(f"{claim['name']}@{claim['version']}:{claim['hash']}")
    by_model: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_model.setdefault(entry.data["model"], []).append(entry)
    rows = [_model_row(m, by_model[m], protocol, COLUMNS) for m in sorted(by_model)]
    columns = [c for c in COLUMNS if c.id not in OPTIONAL_COLUMNS
               or any(r["columns"][c.id] is not None for r in rows)]
    for row in rows:
        row["columns"] = {c.id: row["columns"][c.id] for c in columns}
    rank_columns(rows, columns)
    rows.sort(key=_sort_key)
    return {
        "protocol": {**protocol.identity(), "description": protocol.description,
                     "expected_time": protocol.expected_time},
        "arms": [arm_label(a, protocol.settings) for a in _expected_arms(protocol.settings)],
        "rank_by": RANK_BY,
        "columns": [c.public() for c in columns],
        "models": rows,
    }


def build_board(paths: Sequence[str | Path], *, created: str | None = None) -> dict[str, Any]:
    """Merge exported entry files into one board per protocol (see the module docstring)."""
    sources = read_sources(paths)
    levels = {s.doc["statistics"]["ci_level"] for s in sources}
    if len(levels) > 1:
        raise BadInput(f"the files use different interval levels ({sorted(levels)}); "
                       "re-export them alike")
    groups = _by_protocol(sources)
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "created": created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "ranking": {"rank_by": RANK_BY, "rule": RANK_RULE, "ci_level": levels.pop()},
        "sources": [{"file": s.file, "sha256": s.sha256, "created": s.doc["created"],
                     "harness_version": s.doc["harness_version"],
                     "n_entries": len(s.doc["entries"]), "statistics": s.doc["statistics"]}
                    for s in sources],
        "boards": [_board(groups[name]) for name in sorted(groups)],
    }


# ------------------------------------------------------------------------ output


@cache
def board_schema() -> dict[str, Any]:
    """harness/schemas/board.schema.json, shipped in the package."""
    text = resources.files("harness").joinpath("schemas/board.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def validate_board(board: Any) -> None:
    """BadInput naming the first invalid field of a board document by its JSON path."""
    import jsonschema
    from jsonschema.exceptions import best_match

    error = best_match(jsonschema.Draft202012Validator(board_schema()).iter_errors(board))
    if error is not None:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise BadInput(f"board{path}: {error.message}")


def board_json(board: dict[str, Any]) -> str:
    """The board as the bytes `leaderboard build` writes (validated first)."""
    validate_board(board)
    return json.dumps(board, indent=2, allow_nan=False, ensure_ascii=False) + "\n"

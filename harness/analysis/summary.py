"""summary.json and the end-of-run table: per arm, metrics per generation.

summary.json is rebuilt from the per-generation metrics.json files (the source of
truth) after every arm, so it is always consistent with what is on disk, including
after a resume.
"""

from __future__ import annotations

from typing import Any

from harness import __version__
from harness.analysis.stats import collapse_summary, generation_text
from harness.atomic import atomic_write_json
from harness.config import RunConfig, config_hash
from harness.experiment.arms import arms_of
from harness.runfiles.store import RunStore, read_json


def arm_generations(store: RunStore, arm_id: str) -> list[dict[str, Any]]:
    """Metrics of the arm's complete generations, in order, stopping at the first gap."""
    out: list[dict[str, Any]] = []
    g = 0
    while store.is_done(arm_id, g):
        out.append(read_json(store.gen_dir(arm_id, g) / "metrics.json"))
        g += 1
    return out


def build_summary(store: RunStore, cfg: RunConfig) -> dict[str, Any]:
    """summary.json: run facts, then per arm its generations and collapse summary.

    `n_eval_problems` is what the generations were actually scored on (per_task of
    the metrics), so a reader never has to trust a requested size.
    """
    arms: dict[str, Any] = {}
    n_problems: int | None = None
    for arm in arms_of(cfg):
        gens = arm_generations(store, arm.arm_id)
        if not gens:
            continue
        n_problems = len(gens[0].get("per_task") or {})
        arms[arm.arm_id] = {
            **arm.to_json(),
            "complete": len(gens) == cfg.total_generations + 1,
            "generations": gens,
            "collapse": collapse_summary([m["pass_at_k"]["pass@1"] for m in gens],
                                         [m["diversity"]["diversity"] for m in gens]).to_dict(),
        }
    return {
        "run_id": store.run_id,
        "harness_version": __version__,
        "config_hash": config_hash(cfg),
        "model": cfg.model.name,
        "train_suite": cfg.train_suite, "train_split": cfg.train_split,
        "eval_suite": cfg.eval_suite, "eval_split": cfg.eval_split,
        "ks": list(cfg.ks),
        "n_eval_problems": n_problems,
        "planned_generations": cfg.total_generations,
        "arms": arms,
    }


def write_summary(store: RunStore, cfg: RunConfig) -> dict[str, Any]:
    summary = build_summary(store, cfg)
    atomic_write_json(store.root / "summary.json", summary)
    return summary


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_tables(summary: dict[str, Any]) -> str:
    """One plain-text table per arm: generation x pass@k, diversity, perplexity, kept."""
    blocks: list[str] = []
    for arm_id, arm in summary["arms"].items():
        ks = list(arm["generations"][0]["pass_at_k"]) if arm["generations"] else []
        header = ["gen", *ks, "diversity", "ppl", "kept", "train_n"]
        rows = []
        for m in arm["generations"]:
            filt = m.get("filter") or {}
            rows.append([str(m["generation"]), *(_fmt(m["pass_at_k"][k]) for k in ks),
                         _fmt(m["diversity"]["diversity"]), _fmt(m["perplexity"], 2),
                         _fmt(filt.get("acceptance_rate")), str(m["n_train_examples"])])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines = [f"arm {arm_id}",
                 "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
                 *("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)]
        c = arm["collapse"]
        lines.append(f"pass@1 slope/gen={_fmt(c['pass1_slope'], 4)}  "
                     f"auc={_fmt(c['pass1_auc'])}  "
                     f"first gen below half={generation_text(c['first_gen_below_half'])}  "
                     f"diversity retention={_fmt(c['diversity_retention'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


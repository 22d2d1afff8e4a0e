"""`collapse-bench report`: markdown summary and PNG plots of one run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False),
              help="Output directory (default: RUN_DIR/report).")
@click.option("--n-boot", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Bootstrap replicates for the 95% intervals.")
@click.option("--boot-seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap (same seed, same intervals).")
@click.option("--skip-incomplete", is_flag=True,
              help="Leave out arms that lack planned generations (the report still lists "
                   "them). Default: include and mark them.")
def report(run_dir: Path, out: Path | None, n_boot: int, boot_seed: int,
           skip_incomplete: bool) -> None:
    """Write RUN_DIR's report: report.md plus plots of each metric vs generation.

    \b
    Plots: pass@1 and pass@k vs generation (95% CI bands with several seeds),
    diversity and perplexity vs generation, filter acceptance vs precision,
    diversity vs pass@1 across generations. A run with --also-eval gets a
    table per extra suite (greedy pass@1, perplexity); the primary suite stays the
    headline.
    """
    from harness.analysis.report import write_report

    result = write_report(run_dir, out, n_boot=n_boot, boot_seed=boot_seed,
                          skip_incomplete=skip_incomplete)
    if result.incomplete:
        verb = "left out" if skip_incomplete else "included, marked (incomplete)"
        click.echo(f"warning: {len(result.incomplete)} incomplete arm(s) {verb}: "
                   + "; ".join(result.incomplete), err=True)
    also = (f"; also-eval suite(s) {', '.join(result.also_eval)} shown after the primary "
            "tables" if result.also_eval else "")
    click.echo(f"wrote {result.markdown} ({result.n_groups} arm groups, "
               f"{len(result.plots)} plots: {', '.join(p.name for p in result.plots.values())}"
               f"){also}")

"""`collapse-bench export`: run directories -> leaderboard JSON/CSV, or check a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.errors import BadInput


@click.command("export")
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Where to write the leaderboard; - for standard output.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default=None,
              help="json: the versioned document; csv: one row per (entry, generation) for "
                   "spreadsheets. Default: from the --out suffix (.json, .csv; - is json).")
@click.option("--validate", "validate_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Only check FILE against the shipped leaderboard schema.")
@click.option("--skip-incomplete", is_flag=True,
              help="Leave out arms that do not have every planned generation (they are "
                   "still listed under incomplete_arms). Default: include and mark them.")
@click.option("--pool-different-settings", is_flag=True,
              help="Pool runs whose settings differ in more than the seed into one entry "
                   "anyway; the entry records what differed (pooled_settings).")
@click.option("--name", "display_name", default="", metavar="TEXT",
              help="What a board calls the model (e.g. 'SmolLM2-135M-Instruct'), recorded "
                   "in every entry; the entries keep the model path or hub id too. The runs "
                   "must all be of one model.")
@click.option("--n-boot", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Bootstrap replicates for the 95% intervals.")
@click.option("--boot-seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap (same seed, same intervals).")
def export(run_dirs: tuple[Path, ...], out: Path | None, fmt: str | None,
           validate_file: Path | None, skip_incomplete: bool, pool_different_settings: bool,
           display_name: str, n_boot: int, boot_seed: int) -> None:
    """Merge RUN_DIR... into a leaderboard (validated against the shipped schema).

    \b
    Examples:
      collapse-bench export results/RUN --out leaderboard.json
      collapse-bench export results/A results/B --out board.csv
      collapse-bench export results/* --skip-incomplete --out - | jq .entries
      collapse-bench export --validate leaderboard.json

    One entry per (model, train suite, eval suite, filter, regime, real fraction,
    restart), seeds pooled across runs whose settings are otherwise identical,
    ranked by area under the pass@1 curve. Runs of a benchmark protocol (`run
    --protocol`) carry it into their entries, checked against their config; such
    entries from many machines make a model board (`leaderboard build`).
    """
    from harness.analysis.leaderboard import (
        build_leaderboard,
        format_for,
        leaderboard_schema,
        leaderboard_text,
        load_leaderboard,
        write_leaderboard,
    )
    from harness.runfiles.outputs import STDOUT, check_output_file

    if validate_file is not None:
        if run_dirs or out is not None:
            raise BadInput("--validate FILE takes no run directories and no --out")
        doc = load_leaderboard(validate_file)
        click.echo(f"{validate_file}: valid leaderboard (schema {doc['schema_version']}, "
                   f"{len(doc['entries'])} entries){_protocols(doc)}")
        return
    if not run_dirs:
        raise BadInput("give at least one RUN_DIR (or --validate FILE); see export --help")
    display_name = display_name.strip()
    longest = leaderboard_schema()["$defs"]["entry"]["properties"]["display_name"]["maxLength"]
    if len(display_name) > longest or not display_name.isprintable():
        raise BadInput(f"--name must be printable text of at most {longest} characters")
    if out is None:
        raise BadInput("--out FILE is required (- for standard output)")
    fmt = format_for(out, fmt)
    check_output_file(out)
    doc = build_leaderboard(run_dirs, n_boot=n_boot, boot_seed=boot_seed,
                            skip_incomplete=skip_incomplete,
                            pool_different_settings=pool_different_settings,
                            display_name=display_name)
    incomplete = doc["incomplete_arms"]
    if incomplete:
        def state(a: dict[str, object]) -> str:
            return "included, marked complete=false" if a["included"] else "left out"

        listed = "; ".join(f"{a['run_id']}/{a['arm_id']} ({a['generations_done']} of "
                           f"{a['generations_planned'] or '?'} generations, {state(a)})"
                           for a in incomplete)
        hint = "" if skip_incomplete else " (--skip-incomplete leaves them out)"
        click.echo(f"warning: {len(incomplete)} incomplete arm(s){hint}: {listed}", err=True)
    if out == STDOUT:
        click.echo(leaderboard_text(doc, fmt), nl=False)
        return
    path = write_leaderboard(doc, out, fmt)
    rows = "" if fmt == "json" else f", {sum(len(e['generations']) for e in doc['entries'])} rows"
    click.echo(f"wrote {path} ({fmt}): {len(doc['entries'])} entries from "
               f"{len(doc['runs'])} run(s){rows}{_protocols(doc)}")


def _protocols(doc: dict[str, Any]) -> str:
    """`; protocol cpu-synth v1 (claims checked)` when entries ran protocols, else ''."""
    names = sorted({f"{e['protocol']['name']} v{e['protocol']['version']}"
                    for e in doc["entries"] if e.get("protocol")})
    return f"; protocol {', '.join(names)} (claims checked)" if names else ""

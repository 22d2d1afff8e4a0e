"""`collapse-bench leaderboard build`: exported entries -> a model board and its web page."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import BadInput


@click.group("leaderboard")
def leaderboard() -> None:
    """Compare models across runs and machines (benchmark-protocol runs only)."""


@leaderboard.command("build")
@click.argument("entry_files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory to write board.json and index.html into (created if missing).")
def build(entry_files: tuple[Path, ...], out: Path) -> None:
    """Merge ENTRY.json... (what `export` writes) into one board per protocol.

    \b
    Example:
      collapse-bench run --protocol cpu-synth --model builtin:tiny
      collapse-bench export results/RUN --out tiny.json
      collapse-bench leaderboard build tiny.json other.json --out board/

    Every entry must come from a `run --protocol` run whose config is that protocol
    (checked); two versions of one protocol are never mixed. Writes board.json
    (harness/schemas/board.schema.json) and index.html, one self-contained page
    (no server, no network): open it in a browser.
    """
    from harness.analysis.board import board_json, build_board
    from harness.analysis.board_page import render_page
    from harness.atomic import atomic_write_text

    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    for name in ("board.json", "index.html"):
        target = out / name
        if target.exists() and not target.is_file():
            raise BadInput(f"{target} exists and is not a regular file; not replacing it")
    board = build_board(entry_files)
    text = board_json(board)
    page = render_page(board)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "board.json", text)
        atomic_write_text(out / "index.html", page)
    except OSError as exc:
        raise BadInput(f"cannot write to {out}: {exc.strerror or exc}") from None
    summary = "; ".join(f"{b['protocol']['name']} v{b['protocol']['version']}: "
                        f"{len(b['models'])} model(s)" for b in board["boards"])
    click.echo(f"wrote {out / 'board.json'} and {out / 'index.html'} ({summary})")

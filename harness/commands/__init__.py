"""CLI commands, one module each; `harness.cli` adds every command listed here.

A command module imports only click at import time; heavy libraries are imported
inside the command body so `collapse-bench --help` stays fast.
"""

from __future__ import annotations

import click

from harness.commands.ablate import ablate
from harness.commands.eval_cmd import eval_cmd
from harness.commands.export import export
from harness.commands.leaderboard_cmd import leaderboard
from harness.commands.model_cmd import model
from harness.commands.report import report
from harness.commands.run import run
from harness.commands.sandbox_cmd import sandbox
from harness.commands.tasks_cmd import tasks

COMMANDS: list[click.Command] = [run, ablate, eval_cmd, export, leaderboard, report, sandbox,
                                 tasks, model]

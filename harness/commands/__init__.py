"""CLI commands, one module each; `harness.cli` adds every command listed here.

A command module imports only click at import time; heavy libraries are imported
inside the command body so `collapse-bench --help` stays fast.
"""

from __future__ import annotations

import importlib

import click

# module name -> attribute holding the click command/group
_COMMAND_MODULES: dict[str, str] = {
    "run": "run",
    "ablate": "ablate",
    "eval_cmd": "eval_cmd",
    "export": "export",
    "report": "report",
    "sandbox_cmd": "sandbox",
    "tasks_cmd": "tasks",
    "model_cmd": "model",
}


def _load() -> list[click.Command]:
    commands: list[click.Command] = []
    for module_name, attr in _COMMAND_MODULES.items():
        try:
            module = importlib.import_module(f"harness.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.commands.{module_name}":
                continue  # not written yet
            raise
        commands.append(getattr(module, attr))
    return commands


COMMANDS: list[click.Command] = _load()

"""The `--ray` options of `run`, `ablate` and `eval`, and their translation.

Kept apart from the config tree on purpose: where the work runs changes no number a
run writes, so it is not a setting of the experiment (not in config.toml, free on
every `--resume`). Without `--ray`, a command behaves exactly as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import click
from click.core import ParameterSource

from harness.commands._help import SectionOption
from harness.errors import BadInput
from harness.scaleout.cluster import RaySettings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_ADDRESS_HELP = ("Run on Ray: alone (or `auto`) starts or joins a local Ray instance; "
                 "HOST:PORT joins that cluster's head (docs/ray.md). Ray must be installed: "
                 "pip install 'collapse-bench[ray]'.")


def _address_option(help_text: str) -> Decorator:
    return click.option("--ray", "ray_address", is_flag=False, flag_value="auto",
                        default=None, metavar="[ADDRESS]", help=help_text,
                        cls=SectionOption, section="scale-out")


def ray_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--ray [ADDRESS], --ray-cpus, --ray-gpus, for the commands that run arms."""
    func = click.option("--ray-gpus", "ray_gpus", type=float, default=0.0, show_default=True,
                        cls=SectionOption, section="scale-out",
                        help="GPUs Ray reserves per arm; a fraction (0.25) lets several "
                             "small-model arms share one card. Needs --ray.")(func)
    func = click.option("--ray-cpus", "ray_cpus", type=float, default=1.0, show_default=True,
                        cls=SectionOption, section="scale-out",
                        help="CPUs Ray reserves per arm (also its torch threads and sandbox "
                             "containers when those are automatic). Needs --ray.")(func)
    return _address_option(_ADDRESS_HELP + " Each arm is one Ray task; gen 0 runs once per "
                           "seed; each node executes programs in its own sandbox.")(func)


def eval_ray_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--ray [ADDRESS] for `eval`: programs spread over every node's sandbox pool."""
    return _address_option(_ADDRESS_HELP + " The programs run in chunks on every node's "
                           "warm sandbox pool; the results are the same as without.")(func)


def take_ray_settings(options: MutableMapping[str, Any]) -> RaySettings | None:
    """Remove the --ray options from a command's options; RaySettings, or None without
    --ray (BadInput when --ray-cpus / --ray-gpus were given without it)."""
    address = options.pop("ray_address", None)
    cpus = options.pop("ray_cpus", 1.0)
    gpus = options.pop("ray_gpus", 0.0)
    if address is None:
        ctx = click.get_current_context()
        typed = [f"--{name.replace('_', '-')}" for name in ("ray_cpus", "ray_gpus")
                 if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
        if typed:
            raise BadInput(f"{' and '.join(typed)} {'needs' if len(typed) == 1 else 'need'} "
                           "--ray")
        return None
    settings = RaySettings(address, float(cpus), float(gpus))
    settings.check()
    return settings

"""`run --protocol NAME`: a protocol's config, and nothing that would change it.

A protocol run is only comparable with other models' runs of the same protocol if
it is exactly that experiment, so every way of changing a frozen setting is
refused up front with one line: a typed option (named by its flags), a --config
file, or a --resume correction. What stays free is `harness.experiment.protocols.FREE_SETTINGS`.
A config file or run directory that already claims a protocol (a copy of a
protocol run's config.toml) is held to that claim the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.commands._experiment import _field_for, build_config
from harness.errors import BadInput, EnvironmentProblem

NOT_SETTINGS = {"synthetic_share": "real_fractions"}
"""Options that are not config fields, and the frozen setting each one changes."""


def _refuse_fixed(protocol: Any, options: Mapping[str, Any]) -> None:
    from harness.experiment.protocols import FREE_SETTINGS

    fixed: list[str] = []
    for name in options:
        if name in NOT_SETTINGS:
            fixed.append("--" + name.replace("_", "-"))
            continue
        spec = _field_for(name)
        if spec.path not in FREE_SETTINGS:
            fixed.append(" / ".join(spec.flags))
    if fixed:
        free = ", ".join(min(_field_for(p).flags, key=len) for p in FREE_SETTINGS)
        raise BadInput(f"protocol {protocol.label} fixes {', '.join(fixed)}; only {free} "
                       "may be set")


def _flat(cfg: Any) -> dict[str, Any]:
    from harness.config import flatten, to_dict

    return dict(flatten(to_dict(cfg)))


def protocol_run_config(config_file: Path | None, resume: Path | None,
                        options: dict[str, Any]) -> Any:
    """The RunConfig of `run`: the plain one, or a protocol's (see the module docstring).

    `options` are the options the user typed (`given_options`); `protocol` among them
    is the protocol spec (NAME, NAME@VERSION or a full claim).
    """
    from harness.experiment.protocols import check_claim, check_config, get_protocol, parse_claim

    spec = options.pop("protocol", None)
    if resume is not None:
        cfg = build_config({}, None, resume, options)
        if cfg.protocol:
            name = parse_claim(cfg.protocol)[0]
            if spec is not None and get_protocol(spec).name != name:
                raise BadInput(f"{resume} ran protocol {name}; --protocol {spec} cannot change it")
            _refuse_fixed(get_protocol(cfg.protocol), options)
            check_claim(cfg.protocol, _flat(cfg), f"{resume}")
        elif spec is not None:
            raise BadInput(f"{resume} follows no protocol; a protocol run starts fresh "
                           f"(drop --resume)")
        return cfg
    if spec is None:
        cfg = build_config({}, config_file, None, options)
        if not cfg.protocol:
            return cfg
        spec = cfg.protocol  # a copy of a protocol run's config.toml runs that protocol
    protocol = get_protocol(spec)
    _refuse_fixed(protocol, options)
    cfg = build_config(protocol.tree(), config_file, None, options)
    check_config(protocol, _flat(cfg), str(config_file))
    cfg.protocol = protocol.claim
    return cfg


def check_protocol_data(cfg: Any) -> None:
    """Before a protocol run starts: its train suite loads, or the error names the
    protocol to run instead (humaneval-gpu without MBPP -> humaneval-gpu-synth)."""
    from harness.experiment.protocols import get_protocol

    if not cfg.protocol:
        return
    protocol = get_protocol(cfg.protocol)
    if not protocol.alternative:
        return
    from tasks.registry import load_suite

    try:
        load_suite(cfg.train_suite)  # cached: the run's own load reuses it
    except (EnvironmentProblem, BadInput) as exc:
        raise type(exc)(f"{exc}; or run --protocol {protocol.alternative} (the same experiment "
                        "on another train suite, its own board)") from None

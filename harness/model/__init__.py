"""The model stack: load a causal LM, sample from it, LoRA-train it, build the builtin.

Layered so that nothing imports upwards (docs/design.md, "Layout"):

* `runtime`: device, dtype, threads, tokenizer padding, quiet loading; no harness
  imports beyond config and errors.
* `sampling` and `training`: batched sampling and LoRA training, on `runtime` only.
* `tiny`: the `builtin:tiny` / `builtin:random` recipe and the shipped, checksummed
  copy (`builtin_models/tiny`); pretraining uses `training`'s loop.
* `loading`: `load_model(cfg)` for a hub id, a directory or a builtin (via `tiny`).

Scoring a model (pass@k in the sandbox) is not here: it lives with the experiment
(`harness.experiment.evaluation`, `harness.experiment.heldout`).
"""

"""One experiment: the generational loop and the pieces it is configured from.

* `loop`: the loop itself, top to bottom (sample, verify, train, score, write).
* `arms`: a config expanded into arms (filter x regime x real fraction x train
  temperature x seed) and validated once, before anything starts.
* `filters`, `regimes`, `detection`: which completions become training data, and
  how they are mixed with earlier generations and human references.
* `evaluation`, `heldout`: pass@k and diversity from sandboxed executions.
* `presets`: named experiment shapes of `ablate` (the default grid, `--quick`, the
  collapse questions), one tunable registry.
* `protocols`: frozen, versioned, hashed experiments (leaderboard protocols), kept
  apart from presets so that tuning a preset never moves one (docs/design.md).
"""

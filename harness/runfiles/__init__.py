"""The files of a run directory (format: results/README.md), written crash-safe.

* `store`: atomic writes, the run directory layout, DONE markers.
* `runs`: reading a run back (config, arms, per-generation metrics records).
* `outputs`: where a command's own output files go, refusing to overwrite silently.
"""

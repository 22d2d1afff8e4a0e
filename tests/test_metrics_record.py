"""The typed metrics record: what the loop writes is what every reader gets back."""

from __future__ import annotations

import pytest

from harness.errors import BadInput
from harness.metrics.record import GenerationRecord
from harness.runfiles.runs import parse_metrics


def record(**changes: object) -> GenerationRecord:
    base = GenerationRecord(
        arm_id="f-none__r-replace__real-0.0__s-0", generation=2, phase="self-training",
        pass_at_k={"pass@1": 0.5, "pass@10": 0.9},
        diversity={"diversity": 0.2, "all": {}, "passing": None},
        per_task={"synth/eval/0": {"n": 10, "c": 5, "diversity": 0.1}},
        status_counts={"passed": 5, "failed": 5}, perplexity=1.1, tail_perplexity=1.6,
        head_perplexity=1.05, collapse={"mode": "noise", "garbage_rate": 0.1},
        filter={"name": "none", "acceptance_rate": 1.0, "precision": 0.5, "recall": 1.0},
        train_composition={"self": 10, "real": 0}, n_train_examples=10, train_loss=0.3,
        timings_s={"evaluation": 1.0})
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_round_trip_is_exact() -> None:
    rec = record()
    assert GenerationRecord.from_json(rec.to_json()) == rec
    view = parse_metrics(rec.to_json(), "m")
    assert view.record == rec and view.pass_at_k == {1: 0.5, 10: 0.9}
    assert view.diversity == 0.2 and view.filter_precision == 0.5


def test_runs_written_before_the_new_fields_load_with_nulls() -> None:
    old = {k: v for k, v in record().to_json().items()
           if k not in ("phase", "tail_perplexity", "head_perplexity", "renderings",
                        "collapse", "detection", "train_composition")}
    rec = GenerationRecord.from_json(old)
    assert rec.phase == "self-training" and rec.tail_perplexity is None
    assert GenerationRecord.from_json({**old, "generation": 0}).phase == "base"


@pytest.mark.parametrize(("change", "message"), [
    ({"generation": -1}, r"m\.generation: expected an integer >= 0"),
    ({"generation": True}, r"m\.generation: expected an integer >= 0"),
    ({"phase": "warm"}, r"m\.phase: expected one of base, warmup, self-training, recovery"),
    ({"pass_at_k": {"pass@1": "high"}}, r"m\.pass_at_k\.pass@1: expected a number"),
    ({"pass_at_k": None}, r"m\.pass_at_k: expected an object"),
    ({"tail_perplexity": "1.2"}, r"m\.tail_perplexity: expected a number or null"),
    ({"collapse": [1, 2]}, r"m\.collapse: expected an object or null, got list"),
])
def test_a_bad_field_is_one_line_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        GenerationRecord.from_json({**record().to_json(), **change}, "m")


def test_missing_pass_at_k_is_named() -> None:
    data = record().to_json()
    del data["pass_at_k"]
    with pytest.raises(BadInput, match="m: missing key 'pass_at_k'"):
        GenerationRecord.from_json(data, "m")

"""The harness side of the runner's JSON-lines protocol (see `sandbox/runner.py`).

Kept apart from transport so the Docker pool and the local executor speak it the same
way: one `ExecRequest` becomes one request line; one answer line becomes an `ExecResult`.

Answers are validated field by field: anything malformed is that request's
`sandbox_error`, never an exception. Call checks are judged here, with expected
values that were never sent (`sandbox.values`); everything else is judged by the
judge process in the container, and its per-assert verdicts arrive in the answer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sandbox.executor import STATUSES, ExecRequest, ExecResult, Status
from sandbox.values import CallCheck, ConstCheck, call_verdict


def request_steps(req: ExecRequest) -> list[dict[str, Any]]:
    """Values path: one step per assert, a bare call or a skip (constant)."""
    steps: list[dict[str, Any]] = []
    for i in range(len(req.asserts)):
        check = req.check_of(i)
        steps.append(check.step() if isinstance(check, CallCheck) else {"skip": True})
    return steps


def judge_spec(req: ExecRequest) -> dict[str, Any]:
    """Judge path: what the judge runs (prompt helpers, test code, asserts or final)."""
    return {"prelude": req.helpers, "preamble": req.preamble, "entry": req.entry_point,
            "steps": list(req.asserts), "final": "" if req.asserts else req.final}


def encode_request(req: ExecRequest, key: str, output_limit: int) -> bytes:
    """The request line for `req`; `key` is the pool's id for this attempt.

    The program's process is sent the program and the expected-value-free
    `program_preamble` only; test code and expected values go to the judge (judge
    path) or stay in the harness (values path)."""
    body: dict[str, Any] = {
        "id": key,
        "program": req.program,
        "preamble": req.program_preamble,
        "timeout_s": req.timeout_s,
        "memory_mb": req.memory_mb,
        "output_limit": output_limit,
    }
    if req.verdict_path == "values":
        body["steps"] = request_steps(req)
    else:
        body["judge"] = judge_spec(req)
    return (json.dumps(body) + "\n").encode("utf-8", "surrogatepass")


def _number(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def decode_result(msg: dict[str, Any], req: ExecRequest) -> ExecResult:
    """The ExecResult for an answer line; sandbox_error if any field is malformed."""
    status = msg.get("status")
    if status not in STATUSES:
        return sandbox_error(req, f"runner answered an unknown status {status!r}")
    code = msg.get("exit_code")
    duration = _number(msg.get("duration_s", 0.0))
    tails = [msg.get(k, "") for k in ("stdout_tail", "stderr_tail", "error")]
    if (code is not None and type(code) is not int) or duration is None \
            or not all(isinstance(t, str) for t in tails):
        return sandbox_error(req, "runner answered malformed fields")
    n = len(req.asserts)
    verdicts, values = msg.get("assert_verdicts"), msg.get("values")
    if n and not (isinstance(verdicts, list) and isinstance(values, list)
                  and len(verdicts) == n and len(values) == n
                  and all(v is None or type(v) is bool for v in verdicts)):
        return sandbox_error(req, "runner answered malformed verdicts")

    assert_verdicts: tuple[bool, ...] | None = None
    error = tails[2]
    if n:
        judged: list[bool] = []
        why_not = ""
        values_path = req.verdict_path == "values"
        for i in range(n):
            check = req.check_of(i) if values_path else None
            if isinstance(check, CallCheck):
                ok, why = call_verdict(check, values[i])
            elif isinstance(check, ConstCheck):
                ok, why = check.holds_always, "constant assert is false"
            else:
                ok, why = verdicts[i] is True, "assert failed in the judge"
            judged.append(ok)
            if not ok and not why_not:
                why_not = f"assert {i}: {why}"
        assert_verdicts = tuple(judged)
        if status == "passed" and not all(judged):
            status, error = "failed", why_not
    return ExecResult(
        request_id=req.request_id,
        status=status,
        exit_code=code,
        duration_s=duration,
        assert_verdicts=assert_verdicts,
        stdout_tail=tails[0],
        stderr_tail=tails[1],
        error=error,
        verdict_path=req.verdict_path,
    )


def sandbox_error(req: ExecRequest, error: str) -> ExecResult:
    """The result for a request the sandbox itself failed to run."""
    status: Status = "sandbox_error"
    verdicts = (False,) * len(req.asserts) if req.asserts else None
    return ExecResult(request_id=req.request_id, status=status, assert_verdicts=verdicts,
                      error=error, verdict_path=req.verdict_path)

"""The harness side of the runner's JSON-lines protocol (see `sandbox/runner.py`).

Kept apart from transport so the Docker pool and the local executor speak it the same
way: one `ExecRequest` becomes one request line; one answer line becomes an `ExecResult`.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.executor import STATUSES, ExecRequest, ExecResult, Status


def encode_request(req: ExecRequest, key: str, output_limit: int) -> bytes:
    """The request line for `req`; `key` is the pool's id for this attempt."""
    return (json.dumps({
        "id": key,
        "program": req.program,
        "asserts": list(req.asserts),
        "final": req.final,
        "timeout_s": req.timeout_s,
        "memory_mb": req.memory_mb,
        "output_limit": output_limit,
    }) + "\n").encode("utf-8", "surrogatepass")


def decode_result(msg: dict[str, Any], req: ExecRequest) -> ExecResult:
    """The ExecResult for an answer line, tolerant of a runner from another version."""
    status = msg.get("status")
    if status not in STATUSES:
        return sandbox_error(req, f"runner answered an unknown status {status!r}")
    verdicts = msg.get("assert_verdicts")
    if req.asserts:
        got = [bool(v) for v in verdicts] if isinstance(verdicts, list) else []
        got = (got + [False] * len(req.asserts))[:len(req.asserts)]
        assert_verdicts: tuple[bool, ...] | None = tuple(got)
    else:
        assert_verdicts = None
    code = msg.get("exit_code")
    return ExecResult(
        request_id=req.request_id,
        status=status,
        exit_code=code if isinstance(code, int) else None,
        duration_s=float(msg.get("duration_s") or 0.0),
        assert_verdicts=assert_verdicts,
        stdout_tail=str(msg.get("stdout_tail", "")),
        stderr_tail=str(msg.get("stderr_tail", "")),
        error=str(msg.get("error", "")),
    )


def sandbox_error(req: ExecRequest, error: str) -> ExecResult:
    """The result for a request the sandbox itself failed to run."""
    status: Status = "sandbox_error"
    verdicts = (False,) * len(req.asserts) if req.asserts else None
    return ExecResult(request_id=req.request_id, status=status, assert_verdicts=verdicts,
                      error=error)

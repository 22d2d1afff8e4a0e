"""Any text a model writes reaches the sandbox and comes back as a verdict.

NUL bytes, lone surrogates, U+FFFD from byte-level decoding, BOMs, form feeds, CR,
enormous lines and deep nesting: the request line is always ASCII JSON (lone
surrogates travel as escapes), and the runner turns whatever does not compile into
that sample's "error" - never a sandbox_error, a dead runner or an exception.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.executor import Executor, SandboxSettings
from sandbox.local import LocalExecutor
from sandbox.protocol import encode_request
from tasks.programs import build_request
from tasks.schema import Task

TASK = Task("text/add", "def add(a, b):\n", "add", "    return a + b\n",
            "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n",
            ("assert add(2, 3) == 5", "assert add(-1, 1) == 0"), "", "text", "eval")

HOSTILE = ["\x00", "\ud800", "\udfff", "\ufffd", "\ufeff", "\r", "\r\n", "\x0c", "\t", "\x1b",
           "\u2028", "'''", '"', "(", ")", "[" * 50, "]", "\\", "\n", "    ", "@", "#"]
FRAGMENTS = ["    return a + b", "    return a - b", "def f(", "lambda x:", "1_000", "0x",
             "import os", "print(", "if True:", "class C:", "yield", "await x", "f'{", "é", "日本"]

completions = st.lists(st.sampled_from(HOSTILE + FRAGMENTS) | st.text(max_size=6),
                       max_size=12).map("".join)

DEFINED = {"passed", "failed", "error", "timeout", "oom"}

pytestmark = pytest.mark.text


@settings(max_examples=300, deadline=None)
@given(completions)
def test_every_completion_encodes_as_an_ascii_request_line(completion: str) -> None:
    line = encode_request(build_request(TASK, completion, "r"), "k", 4096)
    assert line.endswith(b"\n") and line.isascii()


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with LocalExecutor(SandboxSettings(pool_size=1)) as ex:
        yield ex


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(completion=completions)
def test_every_completion_gets_a_defined_verdict(completion: str, executor: Executor) -> None:
    [result] = executor.run([build_request(TASK, completion, "r", timeout_s=3.0)])
    assert result.status in DEFINED, (completion, result)


@pytest.mark.parametrize("completion", [
    "    return a + b\x00",
    "    return '\ud800'",
    "\ufeff    return a + b",
    "    return (" * 5000,
    "    return " + "-" * 5000 + "1",
    "    return " + " + ".join(["1"] * 1200),
    "    return 1" + "\x0c\r\n" * 3,
    "    x = '" + "y" * 2_000_000 + "'\n    return a + b",
])
def test_degenerate_completions(completion: str, executor: Executor) -> None:
    [result] = executor.run([build_request(TASK, completion, "r", timeout_s=5.0)])
    assert result.status in DEFINED, result

"""The fork server itself (sandbox/runner.py), driven over its JSON-lines protocol.

These run the runner as a host subprocess, exactly as the local executor does, so
they pin its semantics without Docker: verdicts and statuses, the success token,
timeouts, output caps, scratch wiping, rlimits, and killing escaped descendants.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "sandbox" / "runner.py"

ADD = "def add(a, b):\n    return a + b\n"
CHECK = "def check(f):\n    assert f(1, 2) == 3\n"


def req(rid: str, program: str, final: str = "", asserts: tuple[str, ...] = (),
        timeout_s: float = 3.0, prelude: str = "", **extra: Any) -> dict[str, Any]:
    """A request; with `final` or `asserts`, judged: the judge runs CHECK, the asserts
    (or the final call), with `add` bound to a proxy of the program's `add`."""
    body: dict[str, Any] = {"id": rid, "program": program, "timeout_s": timeout_s, **extra}
    if final or asserts:
        body["judge"] = {"prelude": prelude, "preamble": CHECK, "entry": "add",
                         "steps": list(asserts), "final": "" if asserts else final}
    return body


def serve(requests: list[dict[str, Any]], scratch: Path, *args: str,
          env: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Run the runner on `requests`; its ready line and answers by id."""
    data = "".join(json.dumps(r) + "\n" for r in requests).encode()
    proc = subprocess.run([sys.executable, str(RUNNER), "--scratch", str(scratch), *args],
                          input=data, capture_output=True, timeout=120, env=env, check=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    answers = {str(m["id"]): m for m in lines[1:]}
    assert len(answers) == len(requests)
    return lines[0], answers


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


def test_ready_line_names_the_runner_version(scratch: Path) -> None:
    ready, _ = serve([], scratch)
    assert ready["ready"] is True
    assert ready["sha256"] == hashlib.sha256(RUNNER.read_bytes()).hexdigest()


def test_per_assert_verdicts_from_the_judge(scratch: Path) -> None:
    asserts = ("assert add(1, 1) == 2", "assert add(1, 1) == 3", "assert add(2, 2) == 4")
    _, got = serve([
        req("all-ok", ADD, "", ("assert add(1, 1) == 2", "assert add(0, 0) == 0")),
        req("one-fails", ADD, "", asserts),
        req("final-ok", ADD, "check(add)"),
        req("final-fails", "def add(a, b):\n    return a - b\n", "check(add)"),
        req("assert-raises", ADD, "", ("assert add(1, 1) == 2", "add(None, 1)")),
    ], scratch)
    # A failing assert does not stop the later ones.
    assert got["all-ok"]["status"] == "passed"
    assert got["all-ok"]["assert_verdicts"] == [True, True]
    assert got["one-fails"]["status"] == "failed"
    assert got["one-fails"]["assert_verdicts"] == [True, False, True]
    assert got["final-ok"]["status"] == "passed" and got["final-ok"]["assert_verdicts"] is None
    assert got["final-fails"]["status"] == "failed"
    assert got["assert-raises"]["status"] == "failed"
    assert got["assert-raises"]["assert_verdicts"] == [True, False]
    assert "TypeError" in got["assert-raises"]["error"]


def test_test_code_never_reaches_the_program_process(scratch: Path) -> None:
    """The program looks for the test (`check`, its constants) and for the reporter in
    its own process: on the judge path neither helps it."""
    peek = ("def add(a, b):\n    g = globals()\n"
            "    assert 'check' not in g and 'CHECK' not in repr(g)\n    return a + b\n")
    forge = ("import os, sys\nf = sys._getframe(0)\nwhile f is not None:\n"
             "    rep = f.f_locals.get('report')\n    if callable(rep):\n"
             "        rep({'k': 'done', 'status': 'passed', 'error': ''})\n"
             "        os._exit(0)\n    f = f.f_back\n")
    _, got = serve([req("peek", peek, "check(add)"), req("forge", forge, "check(add)")],
                   scratch)
    assert got["peek"]["status"] == "passed", got["peek"]
    assert got["forge"]["status"] == "failed", got["forge"]


@pytest.mark.parametrize(("program", "status", "why"), [
    ("class A:\n    def __eq__(self, o):\n        return True\n"
     "def add(a, b):\n    return A()\n", "error", "not plain data"),
    ("class I(int):\n    def __eq__(self, o):\n        return True\n"
     "def add(a, b):\n    return I(0)\n", "error", "not plain data"),
    ("def add(a, b):\n    return lambda: 3\n", "error", "not plain data"),
    ("def add(a, b):\n    raise ValueError('no')\n", "failed", "ValueError"),
    ("import sys\ndef add(a, b):\n    sys.exit(0)\n", "failed", "SystemExit"),
])
def test_only_plain_data_crosses_into_the_judge(scratch: Path, program: str, status: str,
                                                 why: str) -> None:
    _, got = serve([req("r", program, "", ("assert add(1, 2) == 3",))], scratch)
    assert got["r"]["status"] == status, got["r"]
    assert why in got["r"]["error"], got["r"]
    assert got["r"]["assert_verdicts"] == [False]


def test_the_judge_uses_the_prompts_helpers_and_builtin_exception_types(scratch: Path) -> None:
    prelude = 'def double(x):\n    return 2 * x\n\n\ndef add(a, b):\n    """stub"""\n'
    rebinds = "def double(x):\n    return 0\n\n\ndef add(a, b):\n    return 0\n"
    raises = ("def add(a, b):\n    if a is None:\n        raise ValueError('none')\n"
              "    return a + b\n")
    expects = ("try:\n    add(None, 1)\nexcept ValueError as e:\n"
               "    assert str(e) == 'ValueError: none', str(e)\nelse:\n    assert False\n")
    _, got = serve([
        req("helper", ADD, "", ("assert add(double(1), 0) == double(1)",), prelude=prelude),
        req("rebound", rebinds, "", ("assert add(double(1), 0) == double(1)",),
            prelude=prelude),
        req("exception", raises, "", (expects,)),
    ], scratch)
    assert got["helper"]["status"] == "passed", got["helper"]
    assert got["rebound"]["status"] == "failed", got["rebound"]  # double() is the prompt's
    assert got["exception"]["status"] == "passed", got["exception"]


def test_calls_of_one_request_share_one_process(scratch: Path) -> None:
    counter = "n = [0]\ndef add(a, b):\n    n[0] += 1\n    return n[0]\n"
    _, got = serve([req("r", counter, "", ("assert add(0, 0) == 1", "assert add(0, 0) == 2"))],
                   scratch)
    assert got["r"]["status"] == "passed", got["r"]


def test_the_runner_caps_each_value_it_is_sent(scratch: Path) -> None:
    """A program can report through the child's own reporter, past the child's
    encoder: the runner measures every value itself."""
    big = ("import sys\nf = sys._getframe(0)\nwhile f is not None:\n"
           "    rep = f.f_locals.get('report')\n    if callable(rep):\n"
           "        rep({'k': 'v', 'i': 0, 'v': 'x' * ((1 << 20) + 1000)})\n        break\n"
           "    f = f.f_back\ndef add(a, b):\n    return a + b\n")
    step = {"call": "add", "args": [{"i": "1"}, {"i": "2"}]}
    _, got = serve([{"id": "r", "program": big, "steps": [step]}], scratch)
    assert got["r"]["values"][0] == {"e": "return value larger than 1048576 bytes"}


def test_each_program_gets_a_new_working_directory(scratch: Path) -> None:
    mark = ("import os\nfor trick in (lambda: os.utime('.', (1234567, 1234567)),\n"
            "              lambda: os.chmod('.', 0o700)):\n"
            "    try:\n        trick()\n    except OSError:\n        pass\n")
    look = ("import os\nst = os.stat('.')\nassert int(st.st_mtime) != 1234567\n"
            "assert st.st_mode & 0o7777 == 0o1777, oct(st.st_mode)\n")
    _, got = serve([req("mark", mark), req("look", look)], scratch)
    assert got["look"]["status"] == "passed", got["look"]


def test_test_code_is_refused_outside_the_judge(scratch: Path) -> None:
    _, got = serve([{"id": "r", "program": ADD, "final": "check(add)"},
                    {"id": "s", "program": ADD, "steps": [{"source": "assert add(1, 2) == 3"}]}],
                   scratch)
    assert got["r"]["status"] == got["s"]["status"] == "sandbox_error"


@pytest.mark.parametrize("program", [
    "import os\nos._exit(0)\n" + ADD,
    "import sys\nsys.exit(0)\n" + ADD,
    "raise SystemExit(0)\n" + ADD,
    "exit(0)\n" + ADD,
    "import os\ndef add(a, b):\n    os._exit(0)\n",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    # A forged success line: right shape, wrong token.
    "import os\nos.write(3, b'{\"token\": \"x\", \"done\": true, \"status\": \"passed\"}\\n')\n"
    "os._exit(0)\n",
])
def test_leaving_before_the_tests_end_is_a_failure(scratch: Path, program: str) -> None:
    _, got = serve([req("r", program, "", ("assert add(1, 2) == 3",))], scratch)
    assert got["r"]["status"] == "failed", got["r"]
    assert got["r"]["assert_verdicts"] == [False]


@pytest.mark.parametrize(("program", "status"), [
    ("def f(:\n", "error"),
    ("1 / 0\n", "error"),
    ("x = bytearray(10 * 2**30)\n", "oom"),
    ("input()\n", "error"),
    ("import sys\nassert sys.stdin.read() == ''\n", "passed"),
])
def test_statuses(scratch: Path, program: str, status: str) -> None:
    _, got = serve([req("r", program)], scratch)
    assert got["r"]["status"] == status, got["r"]


@pytest.mark.parametrize("program", [
    "while True:\n    pass\n",
    "import time\ntime.sleep(60)\n",
    "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
])
def test_timeouts_kill_on_the_wall_clock(scratch: Path, program: str) -> None:
    t0 = time.monotonic()
    _, got = serve([req("r", program, timeout_s=0.5), req("next", ADD, "check(add)")],
                   scratch)
    assert got["r"]["status"] == "timeout"
    assert 0.5 <= got["r"]["duration_s"] < 1.5
    assert got["next"]["status"] == "passed"
    assert time.monotonic() - t0 < 5


def test_output_is_capped_and_a_flood_does_not_stall(scratch: Path) -> None:
    flood = "import sys\nsys.stdout.write('x' * 100_000_000)\nprint('end')\n" \
            "sys.stderr.write('e' * 1_000_000)\n"
    _, got = serve([req("r", flood, timeout_s=10, output_limit=100)], scratch)
    r = got["r"]
    assert r["status"] == "passed"
    assert r["duration_s"] < 5
    assert r["stdout_tail"].endswith("x" * 96 + "end\n")
    assert len(r["stdout_tail"]) < 200 and "dropped" in r["stdout_tail"]
    assert len(r["stderr_tail"]) < 200


def test_scratch_is_wiped_and_each_program_starts_in_an_empty_cwd(scratch: Path) -> None:
    plant = ("import os, tempfile\nos.makedirs('sub/deep')\nopen('sub/deep/f', 'w').write('1')\n"
             "open(os.path.join(tempfile.gettempdir(), 'left'), 'w').write('1')\n"
             "os.symlink('/', 'escape')\nos.chmod('sub', 0)\n")
    look = ("import os, tempfile\nassert os.listdir('.') == [], os.listdir('.')\n"
            "assert not os.path.exists(os.path.join(tempfile.gettempdir(), 'left'))\n"
            "assert tempfile.gettempdir() == os.environ['TMPDIR']\n")
    _, got = serve([req("plant", plant), req("look", look)], scratch)
    assert got["plant"]["status"] == "passed"
    assert got["look"]["status"] == "passed", got["look"]
    assert os.listdir(scratch) in ([], ["run"])


def test_escaped_descendants_are_killed(scratch: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    escape = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              f"        open({str(pidfile)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
              "        time.sleep(60)\n    os._exit(0)\ntime.sleep(0.3)\n")
    _, got = serve([req("r", escape)], scratch)
    assert got["r"]["status"] == "passed"
    pid = int(pidfile.read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_rlimits_process_group_and_environment_are_the_childs_own(scratch: Path) -> None:
    probe = ("import os, resource\n"
             "assert os.getpgid(0) == os.getpid() == os.getsid(0)\n"
             "assert resource.getrlimit(resource.RLIMIT_AS)[0] == 256 * 2**20\n"
             "assert resource.getrlimit(resource.RLIMIT_CPU)[0] == 3\n"
             "assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == 7 * 2**20\n"
             "assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 128\n"
             "assert resource.getrlimit(resource.RLIMIT_NPROC)[0] != resource.RLIM_INFINITY\n"
             "assert 'HARNESS_SECRET' not in os.environ\n"
             "fds = os.listdir('/proc/self/fd')  # one of them is this listing's own\n"
             "assert len(set(fds) - {'0', '1', '2', '3'}) == 1, fds\n")
    env = {**os.environ, "HARNESS_SECRET": "s3cret"}
    _, got = serve([req("r", probe, timeout_s=1.5, memory_mb=256)], scratch,
                   "--fsize-mb", "7", env=env)
    assert got["r"]["status"] == "passed", got["r"]


def test_bad_requests_are_answered_and_the_runner_keeps_serving(scratch: Path) -> None:
    data = b'not json\n{"id": "x", "program": 5}\n' + \
        (json.dumps(req("ok", ADD, "check(add)")) + "\n").encode()
    proc = subprocess.run([sys.executable, str(RUNNER), "--scratch", str(scratch)],
                          input=data, capture_output=True, timeout=60, check=True)
    answers = [json.loads(line) for line in proc.stdout.splitlines()[1:]]
    assert [a["status"] for a in answers] == ["sandbox_error", "sandbox_error", "passed"]
    assert answers[1]["id"] == "x" and "program" in answers[1]["error"]


def test_many_requests_in_flight_are_answered_in_order(scratch: Path) -> None:
    reqs = [req(str(i), f"def add(a, b):\n    return a + b + {i % 2}\n", "check(add)")
            for i in range(40)]
    _, got = serve(reqs, scratch)
    assert [got[str(i)]["status"] for i in range(40)] == ["passed", "failed"] * 20

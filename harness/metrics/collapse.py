"""Which way a self-trained model is collapsing: towards a mode, or into noise.

Two failure modes look alike on pass@1 but opposite on diversity. Below sampling
temperature 1, self-training *sharpens*: the model keeps what it already writes most
often, so samples of a problem become alike (diversity falls) and nothing new
appears. At temperature 1 an unverified arm *drifts into noise*: each generation
trains on its own tail, so diversity RISES while the samples stop being code (prose
such as "for v in descending order. Add 1 to each number. Keep the comdadd" inside a
body, loops of one token, programs that no longer parse). A single diversity number
cannot tell a healthy spread from noise, so this module adds per-generation
measures that can, and one rule that names the mode.

All inputs are model text (policy: `tasks.model_text`): every function here has a
value for any `str` (NUL, lone surrogates, 100 kB lines, 5,000 brackets) and never
raises on it. A measure with no sample to stand on is None (JSON null), as in
`harness.metrics.diversity`.

Garbage ("not code")
====================

A completion is *garbage* when it holds a prose run, a junk character or a
degenerate repetition (`garbage_reason` says which):

* **prose run**: `PROSE_RUN` (3) or more identifiers in a row, none a Python keyword
  (soft keywords ``match``/``case``/``type`` count as keywords), outside strings and
  comments, on one line. Python's grammar never puts two plain identifiers next to
  each other (``x y`` is a syntax error in every context), so in code such a run
  only appears when the text is English: "to each number", "Keep the comdadd". The
  example above has two. Words inside string literals, docstrings (even multi-line
  ones) and ``#`` comments are not looked at, so documented code is never prose.
  The lexer is a small regex scanner (`scan`), not `tokenize`, so the verdict is
  the same on every Python version and for text `tokenize` refuses; an unclosed
  string runs to the end of its line (triple-quoted: to the end of the text) and
  is skipped like any string.
* **junk character**: outside strings and comments, a character that is bytes, not
  text: a control character other than tab, newline, carriage return and form
  feed (NUL, ESC, DEL, C1 controls), U+2028/U+2029, U+FFFD (what a byte-level
  tokenizer decodes broken UTF-8 to) or a lone surrogate. Python rejects every one
  of them there, and nobody types them; inside a string literal they are data.
  This is what random-token soup is made of when it has no three words in a row.
* **degenerate repetition**, any of:

  - a unit of 1-`MAX_TOKEN_PERIOD` (4) significant tokens repeated back to back at
    least `MIN_TOKEN_REPEATS` (16) times: ``) ) ) ...``, ``x x x ...``,
    ``+ a + a ...``. A literal list of 16+ equal items counts; shorter tables do not.
  - a block of 1-`MAX_LINE_PERIOD` (4) non-blank lines repeated back to back at
    least `MIN_LINE_REPEATS` (4) times (lines compared with their indentation, so
    nested closing brackets on their own lines differ).
  - text of at least `MIN_COMPRESS_BYTES` (1,024) UTF-8 bytes that zlib shrinks to
    under `MAX_COMPRESS_RATIO` (0.1) of its size. This catches long loops whose
    period is too long for the two rules above.

Unparsable text is *not* garbage by itself: a body with a missing colon is broken
code, not prose. It is measured separately (`unparsable_fraction`, with the same
criterion as the `syntax` filter: prompt + completion as one program).

Measured (CPython 3.11 sources, every function body as a completion): 0 of 17,613
bodies of the standard library flagged; 33 of 39,906 bodies of its test suite, all
for repetition (deliberately repeated test lines). On eval samples of this
project's runs: builtin:tiny generation 0, 0.35% garbage (every one prose or
mangled identifiers, 3.3% unparsable); builtin:random, 94% (99% unparsable).

Novelty and the mode
====================

`novelty_vs_reference`: per task, the share of the current samples' token n-grams
(`harness.metrics.diversity.code_tokens`, default n = 3, n-grams within a sample)
that occur in no generation-0 sample of that task; averaged over the tasks that
have both. Generation 0 against itself is 0. Sharpening keeps to what generation 0
already wrote (novelty near 0); noise invents text (novelty up).

`collapse_mode(gen0, now)` names the mode with simple, fixed thresholds; the first
rule that fires decides:

1. **noise** if the garbage rate or the unparsable fraction rose by at least
   `RATE_RISE` (0.02, i.e. two percentage points, absolute: these rates start near
   0, where a relative change means nothing).
2. **sharpening** if diversity fell by more than `DIVERSITY_CHANGE` (10%) relative
   to generation 0 (novelty, when known, is reported as corroboration: near 0 means
   the model narrowed onto what it already wrote).
3. **noise** if diversity rose by more than 10% and novelty is at least
   `NOVELTY_NOISE` (0.10): more spread, made of text generation 0 never wrote.
4. **stable** otherwise (also when diversity rose on generation 0's own material:
   novelty under 0.10).

A signal that is None (undefined) on either side is skipped.
"""

from __future__ import annotations

import keyword
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from harness.metrics.diversity import code_tokens
from tasks.model_text import parse_python, utf8

PROSE_RUN = 3
MAX_TOKEN_PERIOD = 4
MIN_TOKEN_REPEATS = 16
MAX_LINE_PERIOD = 4
MIN_LINE_REPEATS = 4
MIN_COMPRESS_BYTES = 1024
MAX_COMPRESS_RATIO = 0.1

NOVELTY_N = 3
DIVERSITY_CHANGE = 0.10
RATE_RISE = 0.02
NOVELTY_NOISE = 0.10

_EPS = 1e-9  # 0.03 - 0.01 is 0.0199999...: a rise of exactly a threshold reaches it

KEYS: tuple[str, ...] = ("unparsable_fraction", "garbage_rate", "mean_length_chars",
                         "novelty_vs_gen0", "mode", "mode_reason")

# Hard-coded rather than keyword.softkwlist: that list differs between Python
# versions (3.11 lacks "type"), and the verdict must not.
_KEYWORDS = frozenset(keyword.kwlist) | {"match", "case", "type"}

# One token per match. Strings first (with up to two prefix letters), so that the
# words inside them are never names; an unclosed quote runs to the end of its line,
# an unclosed triple quote to the end of the text. Every alternative consumes at
# least one character and no two overlap, so the scan is linear in the text.
_SCAN = re.compile(r"""
    (?P<string>[rRbBuUfF]{0,2}(?:
          \"\"\"[\s\S]*?(?:\"\"\"|\Z)
        | '''[\s\S]*?(?:'''|\Z)
        | "(?:\\[\s\S]|[^"\\\n])*(?:"|(?=\n)|\Z)
        | '(?:\\[\s\S]|[^'\\\n])*(?:'|(?=\n)|\Z)))
  | (?P<comment>\#[^\n]*)
  | (?P<name>[^\W\d]\w*)
  | (?P<number>\d[\w.]*)
  | (?P<newline>\n)
  | (?P<space>[^\S\n]+)
  | (?P<other>[\s\S])
""", re.VERBOSE)
# Characters Python rejects outside strings and comments that no one types: what a
# byte-level tokenizer emits when a model has lost track of text (U+FFFD, control
# bytes), plus lone surrogates for text that skipped `tasks.model_text.clean_text`.
_JUNK = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffd\ud800-\udfff]")


def _lex(text: str) -> list[tuple[str, str]]:
    """(kind, text) of every token of `text`, spaces included: they tile `text`."""
    return [(m.lastgroup or "other", m.group()) for m in _SCAN.finditer(text)]


def scan(text: str) -> list[tuple[str, str]]:
    """(kind, text) of every token of `text`, spaces left out.

    Kinds: string, comment, name (keywords included), number, newline, other (one
    character). Never raises; the tokens' texts, with the spaces put back, are
    `text` again.
    """
    return [tok for tok in _lex(text) if tok[0] != "space"]


def _junk(lexed: Sequence[tuple[str, str]]) -> str | None:
    for kind, text in lexed:
        if kind not in ("string", "comment"):
            m = _JUNK.search(text)
            if m is not None:
                return m.group()
    return None


def junk_character(completion: str) -> str | None:
    """The first character outside strings and comments that is bytes, not text
    (control characters, U+FFFD, lone surrogates ...; module doc), or None."""
    return _junk(_lex(completion))


def _prose(lexed: Sequence[tuple[str, str]], min_run: int) -> tuple[str, ...] | None:
    run: list[str] = []
    for kind, text in lexed:
        if kind == "space":
            continue
        if kind == "name" and text not in _KEYWORDS:
            run.append(text)
            continue
        if len(run) >= min_run:
            return tuple(run)
        run = []
    return tuple(run) if len(run) >= min_run else None


def prose_run(completion: str, min_run: int = PROSE_RUN) -> tuple[str, ...] | None:
    """The first run of `min_run`+ adjacent non-keyword identifiers outside strings
    and comments (module doc), or None when there is none."""
    return _prose(_lex(completion), min_run)


def _periodic_run(items: Sequence[object], max_period: int, min_repeats: int) -> int | None:
    """The smallest period p <= max_period such that some unit of p items repeats
    back to back at least min_repeats times in `items`; None if none does."""
    for p in range(1, max_period + 1):
        need = (min_repeats - 1) * p  # items equal to the one p before them, in a row
        same = 0
        for i in range(p, len(items)):
            same = same + 1 if items[i] == items[i - p] else 0
            if same >= need:
                return p
    return None


def _repetition(completion: str, lexed: Sequence[tuple[str, str]]) -> str | None:
    tokens = [t for kind, t in lexed if kind not in ("space", "newline", "comment")]
    period = _periodic_run(tokens, MAX_TOKEN_PERIOD, MIN_TOKEN_REPEATS)
    if period is not None:
        return f"a unit of {period} token(s) repeated >= {MIN_TOKEN_REPEATS} times"
    lines = [line.rstrip() for line in completion.split("\n")]
    period = _periodic_run([line for line in lines if line.strip()], MAX_LINE_PERIOD,
                           MIN_LINE_REPEATS)
    if period is not None:
        return f"a block of {period} line(s) repeated >= {MIN_LINE_REPEATS} times"
    raw = utf8(completion)
    if len(raw) >= MIN_COMPRESS_BYTES:
        ratio = len(zlib.compress(raw, 9)) / len(raw)
        if ratio < MAX_COMPRESS_RATIO:
            return f"compresses to {ratio:.3f} of its size (< {MAX_COMPRESS_RATIO})"
    return None


def repetition_reason(completion: str) -> str | None:
    """Why `completion` is a degenerate repetition (module doc), or None."""
    return _repetition(completion, _lex(completion))


@lru_cache(maxsize=65536)
def garbage_reason(completion: str) -> str | None:
    """Why `completion` is not code (prose run, junk character or degenerate
    repetition; module doc), or None. Cached: sharpened samples repeat a lot."""
    lexed = _lex(completion)
    run = _prose(lexed, PROSE_RUN)
    if run is not None:
        return "prose: " + " ".join(run)[:80]
    junk = _junk(lexed)
    if junk is not None:
        return f"junk character U+{ord(junk):04X} in code"
    return _repetition(completion, lexed)


def is_garbage(completion: str) -> bool:
    """Whether `completion` is garbage (module doc); any str has an answer."""
    return garbage_reason(completion) is not None


def garbage_rate(completions: Sequence[str]) -> float | None:
    """Share of `completions` that are garbage; None for no completions."""
    if not completions:
        return None
    return sum(is_garbage(c) for c in completions) / len(completions)


def unparsable_fraction(prompts: Sequence[str], completions: Sequence[str]) -> float | None:
    """Share of samples whose program (prompt + completion) Python cannot parse, the
    `syntax` filter's criterion; None for no samples."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
    if not completions:
        return None
    bad = sum(parse_python(p + c) is None for p, c in zip(prompts, completions, strict=True))
    return bad / len(completions)


def mean_length(completions: Sequence[str]) -> float | None:
    """Mean completion length in characters (noise grows it, sharpening rarely
    changes it much); None for no completions."""
    if not completions:
        return None
    return sum(len(c) for c in completions) / len(completions)


def _ngrams(samples: Iterable[str], n: int) -> list[tuple[str, ...]]:
    grams: list[tuple[str, ...]] = []
    for s in samples:
        toks = code_tokens(s)
        grams.extend(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return grams


def novelty_vs_reference(reference_by_task: Mapping[str, Sequence[str]],
                         completions_by_task: Mapping[str, Sequence[str]],
                         n: int = NOVELTY_N) -> float | None:
    """Mean over tasks of: share of the current samples' token n-grams (all
    occurrences) absent from every reference sample of the same task.

    Tasks missing from the reference, or whose current samples have no n-gram, are
    left out; None when no task remains. Reference against itself: 0.0.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    shares: list[float] = []
    for task, samples in completions_by_task.items():
        if task not in reference_by_task:
            continue
        grams = _ngrams(samples, n)
        if not grams:
            continue
        seen = set(_ngrams(reference_by_task[task], n))
        shares.append(sum(g not in seen for g in grams) / len(grams))
    return sum(shares) / len(shares) if shares else None


@dataclass(frozen=True)
class ModeInputs:
    """The per-generation numbers `collapse_mode` compares (None = undefined).

    diversity: the headline diversity (`diversity.HEADLINE`) of the eval samples.
    novelty: `novelty_vs_reference` against generation 0 (0.0 or None at gen 0).
    """

    diversity: float | None
    garbage_rate: float | None
    unparsable_fraction: float | None
    novelty: float | None = None

    @classmethod
    def from_metrics(cls, collapse: Mapping[str, object],
                     diversity: float | None) -> ModeInputs:
        """From a `collapse_metrics` dict and that generation's diversity."""
        def num(key: str) -> float | None:
            value = collapse.get(key)
            return float(value) if isinstance(value, (int, float)) else None

        return cls(diversity=diversity, garbage_rate=num("garbage_rate"),
                   unparsable_fraction=num("unparsable_fraction"),
                   novelty=num("novelty_vs_gen0"))


def _relative(before: float | None, after: float | None) -> float | None:
    """(after - before) / before; +-inf from 0; None when either is undefined."""
    if before is None or after is None or math.isnan(before) or math.isnan(after):
        return None
    if before == 0:
        return 0.0 if after == 0 else math.copysign(math.inf, after)
    return (after - before) / abs(before)


def _rise(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or math.isnan(before) or math.isnan(after):
        return None
    return after - before


def collapse_mode(gen0: ModeInputs, now: ModeInputs) -> tuple[str, str]:
    """(mode, one-line reason): "stable", "sharpening" or "noise"; rules in the module doc."""
    for name, before, after in (("garbage rate", gen0.garbage_rate, now.garbage_rate),
                                ("unparsable fraction", gen0.unparsable_fraction,
                                 now.unparsable_fraction)):
        rise = _rise(before, after)
        if rise is not None and rise >= RATE_RISE - _EPS:
            return "noise", (f"{name} {before:.3f} -> {after:.3f} "
                             f"(+{rise:.3f} >= {RATE_RISE})")
    change = _relative(gen0.diversity, now.diversity)
    novelty = "n/a" if now.novelty is None else f"{now.novelty:.3f}"
    if change is not None:
        what = f"diversity {gen0.diversity:.3f} -> {now.diversity:.3f} ({change:+.0%})"
        if change < -DIVERSITY_CHANGE:
            return "sharpening", f"{what}, novelty {novelty}"
        if change > DIVERSITY_CHANGE:
            if now.novelty is not None and now.novelty >= NOVELTY_NOISE - _EPS:
                return "noise", f"{what} with novelty {novelty} >= {NOVELTY_NOISE}"
            return "stable", f"{what} but novelty {novelty} < {NOVELTY_NOISE}"
        return "stable", f"{what} within {DIVERSITY_CHANGE:.0%}; no rate rose {RATE_RISE}"
    return "stable", f"diversity undefined; no rate rose {RATE_RISE}"


def group_by_task(task_ids: Sequence[str], completions: Sequence[str]) -> dict[str, list[str]]:
    """task id -> its completions, in order."""
    if len(task_ids) != len(completions):
        raise ValueError(f"{len(task_ids)} task ids for {len(completions)} completions")
    out: dict[str, list[str]] = {}
    for task, completion in zip(task_ids, completions, strict=True):
        out.setdefault(task, []).append(completion)
    return out


def collapse_metrics(prompts: Sequence[str], completions: Sequence[str],
                     task_ids: Sequence[str],
                     gen0_completions_by_task: Mapping[str, Sequence[str]] | None,
                     diversity: float | None, gen0: ModeInputs | None,
                     ) -> dict[str, float | str | None]:
    """The collapse block of one generation's eval samples, JSON-ready (`KEYS`).

    prompts/completions/task_ids: one entry per sample. gen0_completions_by_task
    and gen0: generation 0's eval completions per task and its `ModeInputs`; both
    None at generation 0, where novelty and mode are None. diversity: this
    generation's headline diversity.
    """
    if not len(prompts) == len(completions) == len(task_ids):
        raise ValueError(f"{len(prompts)} prompts, {len(completions)} completions, "
                         f"{len(task_ids)} task ids")
    out: dict[str, float | str | None] = {
        "unparsable_fraction": unparsable_fraction(prompts, completions),
        "garbage_rate": garbage_rate(completions),
        "mean_length_chars": mean_length(completions),
        "novelty_vs_gen0": None, "mode": None, "mode_reason": None,
    }
    if gen0_completions_by_task is not None:
        out["novelty_vs_gen0"] = novelty_vs_reference(
            gen0_completions_by_task, group_by_task(task_ids, completions))
    if gen0 is not None:
        now = ModeInputs.from_metrics(out, diversity)
        out["mode"], out["mode_reason"] = collapse_mode(gen0, now)
    return out

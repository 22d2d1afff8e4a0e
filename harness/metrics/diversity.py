"""Code diversity of a model's samples, per problem, averaged over problems.

Model collapse shows up as samples for the same problem becoming alike long before
pass@1 moves, so these measure how different a problem's n samples are from each
other. Inputs are *completions* (the prompt is shared by all samples of a problem
and would only dilute the differences). Every metric is computed per problem and
then averaged over the problems where it is defined; a metric defined for no
problem is None (JSON null), never a made-up number.

Inputs may be any ``str`` a model wrote (NUL, lone surrogates, U+FFFD, 5,000
nested brackets ...): every metric has a defined value for every input, and the
parser's warnings about model code are never printed. The policy is in
`tasks.model_text`.

Tokens are Python tokens from `tokenize` (names, operators, numbers, strings;
layout tokens - NEWLINE, NL, INDENT, DEDENT - comments and empty tokens dropped).
A "\\r" not followed by "\\n" counts as a space (`tasks.model_text.tokenizer_view`).
Text that `tokenize` rejects part-way (an unclosed string; on Python 3.12+ also
NUL bytes and other input its C tokenizer refuses) is tokenized by a regex
(``\\w+`` or one non-space character) from there on.

Per problem with samples s_1..s_n:

* ``distinct_k`` (k = 1..4): |distinct k-grams over all samples| / |k-grams over all
  samples| (Li et al., 2016), k-grams taken within each sample. Undefined when no
  sample has k tokens.
* ``unique_ast_fraction``: |distinct canonical ASTs| / |parsable samples|. The
  canonical AST drops docstrings (every bare string statement) and comments, and
  renames every name bound in the sample (assignment targets, parameters, defs,
  loop and comprehension variables, ...) to v0, v1, ... in order of first
  appearance; free names (builtins, the prompt's parameters) are kept, so
  ``sum(x)`` and ``len(x)`` stay different. A completion that does not parse on
  its own is retried inside ``def _():`` (function bodies). "Does not parse" covers
  every parser failure, including RecursionError/MemoryError on deep nesting; a
  tree that parses is canonicalised without recursion, however deep. Undefined
  when none parse.
* ``unparsable_fraction``: samples that parse neither way / n.
* ``mean_pairwise_dissimilarity`` (headline): mean over pairs i < j of
  lev(t_i, t_j) / max(|t_i|, |t_j|), with lev the token-level Levenshtein distance
  (0 for two empty samples). Undefined for n < 2. Identical samples are grouped so
  each distinct pair is computed once; a sample longer than `MAX_EDIT_TOKENS`
  tokens is compared on its first `MAX_EDIT_TOKENS` (bounds the cost of degenerate
  samples: the distance is quadratic in length); when a problem has more than
  `MAX_PAIRS` distinct pairs, `MAX_PAIRS` sample pairs are drawn uniformly (seeded
  by the problem id, so the value is reproducible) and their mean is used.
* ``functional_diversity``: |distinct per-assert pass/fail signatures| / n, where a
  sample without verdicts (None) counts as one more signature. Undefined when no
  sample of the problem has verdicts (tests not separable).
"""

from __future__ import annotations

import ast
import itertools
import random
import re
import tokenize
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from tasks.model_text import parse_python, python_tokens, tokenizer_view

KEYS: tuple[str, ...] = ("distinct_1", "distinct_2", "distinct_3", "distinct_4",
                         "unique_ast_fraction", "unparsable_fraction",
                         "mean_pairwise_dissimilarity", "functional_diversity")
HEADLINE = "mean_pairwise_dissimilarity"
MAX_PAIRS = 2000
MAX_EDIT_TOKENS = 5000

Signature = tuple[bool, ...] | None
Metrics = dict[str, float | None]

_SKIP = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT,
         tokenize.ENCODING, tokenize.ENDMARKER}
_FALLBACK = re.compile(r"\w+|[^\w\s]")


@lru_cache(maxsize=65536)
def code_tokens(code: str) -> tuple[str, ...]:
    """Significant Python tokens of `code` (see module docstring); any str has some."""
    out: list[str] = []
    view = tokenizer_view(code)  # what tokenize reads ("\r" handled; see tasks.model_text)
    consumed = 0  # offset in `view` of the end of the last token read
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(view) if ch == "\n")
    tokens, complete = python_tokens(code)
    for tok in tokens:
        if tok.type not in _SKIP and tok.string:  # 3.12+ yields empty FSTRING_MIDDLEs
            out.append(tok.string)
        row, col = tok.end
        if 0 < row <= len(starts):
            consumed = max(consumed, starts[row - 1] + col)
    if not complete:
        out.extend(_FALLBACK.findall(view[consumed:]))
    return tuple(out)


def _interned(seqs: Sequence[Sequence[Hashable]], cap: int | None = MAX_EDIT_TOKENS,
              ) -> list[list[int]]:
    """`seqs` (each cut to its first `cap` items) with every item replaced by a small
    int, one id per distinct item across all of them: rapidfuzz then compares ints,
    so two items are equal exactly when they are, never by an accident of hashing."""
    ids: dict[Hashable, int] = {}
    return [[ids.setdefault(x, len(ids)) for x in seq[:cap]] for seq in seqs]


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Edit distance between two sequences: exact, unit costs.

    rapidfuzz's bit-parallel algorithm (Hyyrö; 64 columns per machine word, in C++)
    on interned items: O(|a| * |b| / 64) word operations, far cheaper than the same
    algorithm on Python ints of arbitrary width.
    """
    ia, ib = _interned((a, b), cap=None)
    return Levenshtein.distance(ia, ib)


def _normalized_distance(a: Sequence[int], b: Sequence[int]) -> float:
    longest = max(len(a), len(b))
    return Levenshtein.distance(a, b) / longest if longest else 0.0


def dissimilarity(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """lev(a, b) / max(|a|, |b|), 0 for two empty sequences; on the first
    `MAX_EDIT_TOKENS` items of each."""
    return _normalized_distance(*_interned((a, b)))


def _canonicalize(tree: ast.AST) -> None:
    """Drop docstrings and rename bound names in place, in one walk over the tree."""
    bound: set[str] = set()
    seen: list[tuple[int, int, str, ast.AST, str]] = []  # (line, col, name, node, attr)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr)
                                            and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            if len(kept) != len(body):
                node.body = kept or [ast.Pass()]  # type: ignore[attr-defined]
        if isinstance(node, ast.Name):
            attr = "id"
            if not isinstance(node.ctx, ast.Load):
                bound.add(node.id)
        elif isinstance(node, ast.arg):
            attr = "arg"
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
                isinstance(node, ast.ExceptHandler) and node.name):
            attr = "name"
            bound.add(node.name)  # type: ignore[arg-type]
        else:
            continue
        seen.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                     getattr(node, attr), node, attr))
    seen.sort(key=lambda item: (item[0], item[1]))
    names: dict[str, str] = {}
    for _, _, name, node, attr in seen:
        if name in bound:
            setattr(node, attr, names.setdefault(name, f"v{len(names)}"))


def parse_sample(code: str) -> ast.Module | None:
    """`code` parsed as a module, or as the body of a function; None if neither works."""
    for text in (code, "def _():\n" + code):
        tree = parse_python(text)
        if tree is not None:
            return tree
    return None


@lru_cache(maxsize=65536)
def canonical_ast(code: str) -> str | None:
    """A string equal for samples that differ only in bound names, docstrings, comments."""
    tree = parse_sample(code)
    if tree is None:
        return None
    _canonicalize(tree)
    return dump_tree(tree)


class _Text(str):
    """Output text queued on `dump_tree`'s stack (as opposed to a value to render)."""


_CLOSE_NODE, _CLOSE_LIST = _Text("),"), _Text("],")


def dump_tree(tree: ast.AST) -> str:
    """A string equal for two trees exactly when their node types and fields are equal.

    Like `ast.dump(tree, annotate_fields=False)` (positions left out), but with an
    explicit stack instead of recursion, so a parsable sample nested deeper than the
    recursion limit (1,200 chained ``+``, 5,000 unary minuses) still has a canonical
    form; ints are written in hex, which has no digit limit. Every value is followed
    by a comma, which keeps adjacent values apart.
    """
    out: list[str] = []
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        cls = type(item)
        if cls is _Text:
            out.append(item)  # type: ignore[arg-type]
        elif cls is list:
            out.append("[")
            stack.append(_CLOSE_LIST)
            stack.extend(reversed(item))  # type: ignore[call-overload]
        elif isinstance(item, ast.AST):
            out.append(cls.__name__ + "(")
            stack.append(_CLOSE_NODE)
            stack.extend([getattr(item, name, None) for name in reversed(item._fields)])
        elif cls is int:
            out.append(f"int:{item:#x},")
        else:
            out.append(repr(item) + ",")
    return "".join(out)


def distinct_n(token_seqs: Sequence[Sequence[str]], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the samples; None without any n-gram."""
    grams: list[tuple[str, ...]] = []
    for toks in token_seqs:
        grams.extend(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return len(set(grams)) / len(grams) if grams else None


def mean_pairwise_dissimilarity(token_seqs: Sequence[Sequence[str]],
                                seed: str = "") -> float | None:
    """Mean normalized token edit distance over sample pairs (capped; see module doc)."""
    n = len(token_seqs)
    if n < 2:
        return None
    counts = Counter(tuple(t) for t in token_seqs)
    uniq = list(counts)
    ids = dict(zip(uniq, _interned(uniq), strict=True))
    n_pairs = n * (n - 1) // 2
    if len(uniq) * (len(uniq) - 1) // 2 <= MAX_PAIRS:
        total = 0.0
        for u, v in itertools.combinations(uniq, 2):
            total += counts[u] * counts[v] * _normalized_distance(ids[u], ids[v])
        return total / n_pairs
    rng = random.Random(f"pairs:{seed}")
    cache: dict[tuple[int, int], float] = {}
    index = {u: i for i, u in enumerate(uniq)}
    total = 0.0
    for _ in range(MAX_PAIRS):
        i, j = rng.sample(range(n), 2)
        a, b = tuple(token_seqs[i]), tuple(token_seqs[j])
        key = tuple(sorted((index[a], index[b])))
        if key not in cache:
            cache[key] = _normalized_distance(ids[a], ids[b])  # type: ignore[index]
        total += cache[key]  # type: ignore[index]
    return total / MAX_PAIRS


def functional_diversity(signatures: Sequence[Signature]) -> float | None:
    """Distinct per-assert signatures / n; None when no sample has verdicts."""
    if not signatures or all(s is None for s in signatures):
        return None
    return len(set(signatures)) / len(signatures)


def problem_metrics(samples: Sequence[str], signatures: Sequence[Signature] | None = None,
                    problem_id: str = "") -> Metrics:
    """All of `KEYS` for one problem's samples (None where undefined)."""
    token_seqs = [code_tokens(s) for s in samples]
    canon = [canonical_ast(s) for s in samples]
    parsable = [c for c in canon if c is not None]
    out: Metrics = {f"distinct_{k}": distinct_n(token_seqs, k) for k in (1, 2, 3, 4)}
    out["unique_ast_fraction"] = len(set(parsable)) / len(parsable) if parsable else None
    out["unparsable_fraction"] = (len(canon) - len(parsable)) / len(canon) if canon else None
    out["mean_pairwise_dissimilarity"] = mean_pairwise_dissimilarity(token_seqs, problem_id)
    out["functional_diversity"] = (functional_diversity(signatures)
                                   if signatures is not None else None)
    return out


def per_problem_metrics(groups: Mapping[str, Sequence[str]],
                        signatures: Mapping[str, Sequence[Signature]] | None = None,
                        ) -> dict[str, Metrics]:
    """`problem_metrics` for every problem with samples.

    groups: problem id -> its samples' completions. signatures: problem id -> one
    per-assert verdict tuple (or None) per sample, in the same order.
    """
    out: dict[str, Metrics] = {}
    for pid, samples in groups.items():
        if not samples:
            continue
        sigs = signatures.get(pid) if signatures is not None else None
        if sigs is not None and len(sigs) != len(samples):
            raise ValueError(f"{pid}: {len(sigs)} signatures for {len(samples)} samples")
        out[pid] = problem_metrics(samples, sigs, pid)
    return out


def average_metrics(per_problem: Mapping[str, Metrics]) -> Metrics:
    """Each of `KEYS` averaged over the problems where it is defined (None if nowhere)."""
    sums: dict[str, float] = dict.fromkeys(KEYS, 0.0)
    counts: dict[str, int] = dict.fromkeys(KEYS, 0)
    for metrics in per_problem.values():
        for key, value in metrics.items():
            if value is not None:
                sums[key] += value
                counts[key] += 1
    return {k: (sums[k] / counts[k] if counts[k] else None) for k in KEYS}


def diversity_metrics(groups: Mapping[str, Sequence[str]],
                      signatures: Mapping[str, Sequence[Signature]] | None = None) -> Metrics:
    """Each of `KEYS` averaged over the problems where it is defined (None if nowhere)."""
    return average_metrics(per_problem_metrics(groups, signatures))


def diversity_report(groups: Mapping[str, Sequence[str]],
                     passed: Mapping[str, Sequence[bool]],
                     signatures: Mapping[str, Sequence[Signature]] | None = None,
                     all_per_problem: Mapping[str, Metrics] | None = None,
                     ) -> dict[str, object]:
    """The results/README.md block: {"diversity": headline, "all": {...}, "passing": {...}}.

    "passing" uses only passing samples, over problems with at least 2 of them.
    all_per_problem: `per_problem_metrics(groups, signatures)` when the caller already
    has it (it also wants the per-problem values), so it is not computed twice.
    """
    pass_groups: dict[str, list[str]] = {}
    pass_sigs: dict[str, list[Signature]] = {}
    for pid, samples in groups.items():
        flags = passed.get(pid, [False] * len(samples))
        keep = [i for i, ok in enumerate(flags) if ok]
        if len(keep) >= 2:
            pass_groups[pid] = [samples[i] for i in keep]
            if signatures is not None and pid in signatures:
                pass_sigs[pid] = [signatures[pid][i] for i in keep]
    if all_per_problem is None:
        all_per_problem = per_problem_metrics(groups, signatures)
    all_block = average_metrics(all_per_problem)
    passing_block = diversity_metrics(pass_groups, pass_sigs if signatures is not None else None)
    return {"diversity": all_block[HEADLINE], "all": all_block, "passing": passing_block}

"""Series colours, one rule for the report's plots and the board's page.

Colours were assigned by position before, so the report drew `none` blue and
`tests` orange while the board drew them the other way round. A filter now keeps
its colour wherever it is drawn: the verified and unverified arms have fixed ones,
and other series take the remaining palette colours in order.
"""

from __future__ import annotations

from collections.abc import Sequence

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255",
           "#444444")
"""Okabe-Ito colours (distinguishable with colour-vision deficiencies), then two more."""

FILTER_COLOURS = {"tests": PALETTE[0], "none": PALETTE[1]}
"""Verified (blue) and unverified (vermillion) arms, the same in every picture."""


def series_colours(names: Sequence[str], filters: Sequence[str] | None = None
                   ) -> dict[str, str]:
    """name -> colour. When `filters` (one per name) are all different, each name gets
    its filter's colour (FILTER_COLOURS, then the rest of the palette in order);
    otherwise the names take the palette in order."""
    if filters is None or len(set(filters)) != len(filters):
        return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    spare = [c for c in PALETTE if c not in FILTER_COLOURS.values()]
    out: dict[str, str] = {}
    for i, (name, flt) in enumerate(zip(names, filters, strict=True)):
        if flt in FILTER_COLOURS:
            out[name] = FILTER_COLOURS[flt]
        else:
            out[name] = spare[i % len(spare)]
    return out

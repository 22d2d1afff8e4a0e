"""The board as one self-contained web page: `index.html` next to board.json.

No server and no network: the CSS and the small sorting script are inline, every
plot is an inline SVG drawn here (polylines with a shaded 95% band), and nothing
is fetched. Every piece of text that came from an entry (model names are user
input, as are run ids and config values) goes through `html.escape`; nothing from
an entry reaches the script, which only reads `data-value` attributes.

Per protocol: a table of models (header cells hold real <button>s, so a column
sorts on click, Enter or Space, with `aria-sort` on the sorted header; the URL
hash `#sort=COLUMN` or `#sort=COLUMN:asc|desc` sorts on load), overview curves
(pass@1, pass@10, diversity, and tail perplexity where recorded; unverified arm
solid, verified arm dashed, one colour per model), and a <details> view per
model with its protocol hash, arms, runs, per-arm curves and config.

The page is a pure function of the board: the same board gives the same bytes.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.palette import PALETTE, series_colours
from harness.analysis.stats import generation_text


def esc(value: Any) -> str:
    """Text or attribute value, escaped (quotes too)."""
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------- numbers


def fmt_value(mean: Any, kind: str, n_generations: int) -> str:
    """One number as the table shows it (`never` for a generation count censored at the
    end of the run, as in the report)."""
    if kind == "generations":
        return generation_text(mean)
    if mean is None:
        return "-"
    return f"{mean:+.3f}" if kind == "delta" else f"{mean:.3f}"


def sort_value(cell: dict[str, Any] | None, kind: str) -> str:
    """What the script sorts by: a number, `Infinity` (never collapsed), or empty."""
    if cell is None:
        return ""
    if kind == "generations" and cell["mean"] is None:
        return "Infinity"
    return "" if cell["mean"] is None else repr(float(cell["mean"]))


def _cell(cell: dict[str, Any] | None, kind: str, n_gen: int) -> str:
    if cell is None:
        return "-"
    text = esc(fmt_value(cell["mean"], kind, n_gen))
    if cell["interval"] and (cell["ci_low"] is not None or cell["ci_high"] is not None
                             or kind == "generations"):
        lo = fmt_value(cell["ci_low"], kind, n_gen)
        hi = fmt_value(cell["ci_high"], kind, n_gen)
        text += f' <span class="ci">[{esc(lo)}, {esc(hi)}]</span>'
    if cell["rank"] is not None:
        mark = f"{cell['rank']}=" if cell["tied"] else str(cell["rank"])
        tip = "tied: intervals overlap" if cell["tied"] else "rank in this column"
        cls = "rk tie" if cell["tied"] else "rk"
        text += f' <span class="{cls}" title="{tip}">#{esc(mark)}</span>'
    return text


# ---------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Series:
    """One line: (generation, estimate or None) points, a colour and a dash pattern."""

    label: str
    color: str
    dash: str
    points: list[tuple[int, dict[str, Any] | None]]


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _y_range(series: Sequence[Series], unit: bool) -> tuple[float, float, float]:
    values = [v for s in series for _, e in s.points if e
              for v in (e.get("mean"), e.get("ci_low"), e.get("ci_high")) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if unit:
        lo, hi = max(0.0, lo), min(1.0, hi)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if unit:
        lo, hi = max(0.0, lo), min(1.0, hi) if hi > lo else lo + step
    return lo, hi, step


def line_chart(title: str, series: Sequence[Series], *, x_max: int, unit: bool,
               chart_id: str, bands: bool) -> str:
    """An inline SVG line chart (generation on x); empty series give a 'no data' note."""
    width, height = 380, 230
    left, right, top, bottom = 48, 12, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    if not any(e for s in series for _, e in s.points):
        return (f'<figure><figcaption>{esc(title)}</figcaption><p class="note">Not recorded '
                "by this protocol's runs.</p></figure>")
    y_lo, y_hi, step = _y_range(series, unit)
    x_span = max(x_max, 1)

    def px(x: float) -> float:
        return left + plot_w * x / x_span

    def py(y: float) -> float:
        return top + plot_h * (1 - (y - y_lo) / (y_hi - y_lo))

    out = [f'<svg role="img" aria-labelledby="{chart_id}-t" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" class="chart">',
           f'<title id="{chart_id}-t">{esc(title)} by generation: '
           f'{esc(", ".join(s.label for s in series))}</title>',
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot"/>']
    n_ticks = round((y_hi - y_lo) / step)
    for i in range(n_ticks + 1):
        y = y_lo + i * step
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    x_step = max(1, math.ceil(x_span / 10))
    for g in range(0, x_max + 1, x_step):
        out.append(f'<text x="{px(g):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{g}'
                   "</text>")
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" '
               'class="axis">generation</text>')
    for s in series:
        runs = _segments(s.points)
        if bands:
            for run in runs:
                upper = [(g, e["ci_high"]) for g, e in run if e.get("ci_high") is not None]
                lower = [(g, e["ci_low"]) for g, e in run if e.get("ci_low") is not None]
                if len(upper) == len(run) == len(lower) and len(run) > 1:
                    pts = " ".join(f"{px(g):.1f},{py(v):.1f}" for g, v in [*upper, *lower[::-1]])
                    out.append(f'<polygon points="{pts}" fill="{s.color}" class="band"/>')
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for run in runs:
            pts = " ".join(f"{px(g):.1f},{py(e['mean']):.1f}" for g, e in run)
            if len(run) > 1:
                out.append(f'<polyline points="{pts}" stroke="{s.color}"{dash} class="line"/>')
            for g, e in run:
                out.append(f'<circle cx="{px(g):.1f}" cy="{py(e["mean"]):.1f}" r="2.6" '
                           f'fill="{s.color}"><title>{esc(s.label)}, generation {g}: '
                           f'{e["mean"]:.3f}</title></circle>')
    out.append("</svg>")
    return f'<figure><figcaption>{esc(title)}</figcaption>{"".join(out)}</figure>'


def _segments(points: list[tuple[int, dict[str, Any] | None]]
              ) -> list[list[tuple[int, dict[str, Any]]]]:
    """Consecutive points with a mean (a missing value breaks the line)."""
    runs: list[list[tuple[int, dict[str, Any]]]] = [[]]
    for g, e in points:
        if e is None or e.get("mean") is None:
            runs.append([])
        else:
            runs[-1].append((g, e))
    return [r for r in runs if r]


def _legend(items: Sequence[tuple[str, str, str]]) -> str:
    """(label, colour, dash) -> an HTML legend with line swatches."""
    lis = []
    for label, color, dash in items:
        style = "dashed" if dash else "solid"
        lis.append(f'<li><span class="swatch" style="border-top-color:{color};'
                   f'border-top-style:{style}"></span>{esc(label)}</li>')
    return f'<ul class="legend">{"".join(lis)}</ul>'


METRICS = (("pass@1", "pass@1", True), ("pass@10", "pass@10", True),
           ("diversity", "diversity", False), ("tail_perplexity", "tail perplexity", False))


def _arm(model: dict[str, Any], flt: str) -> dict[str, Any] | None:
    return next((a for a in model["arms"] if a["filter"] == flt), None)


def _points(arm: dict[str, Any] | None, metric: str) -> list[tuple[int, Any]]:
    if arm is None or metric not in arm["curves"]:
        return []
    return list(zip(arm["curves"]["generations"], arm["curves"][metric], strict=True))


def model_label(model: dict[str, Any]) -> str:
    """What the page calls a model: its `export --name`, else its path or hub id."""
    return str(model.get("display_name") or model["model"])


def overview_charts(board: dict[str, Any], prefix: str) -> str:
    """pass@1, pass@10, diversity (+ tail) per model: unverified solid, verified dashed."""
    from harness.analysis.board import UNVERIFIED, VERIFIED

    x_max = max((m["n_generations"] for m in board["models"]), default=1) - 1
    figures = []
    for key, title, unit in METRICS:
        series = []
        for i, model in enumerate(board["models"]):
            color = PALETTE[i % len(PALETTE)]
            for flt, dash in ((UNVERIFIED, ""), (VERIFIED, "6 4")):
                pts = _points(_arm(model, flt), key)
                if pts:
                    series.append(Series(f"{model_label(model)} ({flt})", color, dash, pts))
        if key == "tail_perplexity" and not series:
            continue
        figures.append(line_chart(title, series, x_max=x_max, unit=unit,
                                  chart_id=f"{prefix}-{key.replace('@', '')}", bands=False))
    legend = _legend([(model_label(m), PALETTE[i % len(PALETTE)], "")
                      for i, m in enumerate(board["models"])]
                     + [(f"{UNVERIFIED} (unverified)", "#333", ""),
                        (f"{VERIFIED} (verified)", "#333", "6 4")])
    return f'{legend}<div class="charts">{"".join(figures)}</div>'


def model_charts(model: dict[str, Any], prefix: str) -> str:
    """Per-arm curves of one model, with their 95% bands."""
    x_max = max(model["n_generations"] - 1, 1)
    figures = []
    colors = series_colours([a["label"] for a in model["arms"]],
                            [str(a.get("filter", a["label"])) for a in model["arms"]])
    for key, title, unit in METRICS:
        series = [Series(a["label"], colors[a["label"]], "", _points(a, key))
                  for a in model["arms"] if _points(a, key)]
        if key == "tail_perplexity" and not series:
            continue
        figures.append(line_chart(title, series, x_max=x_max, unit=unit,
                                  chart_id=f"{prefix}-{key.replace('@', '')}", bands=True))
    legend = _legend([(a["label"], colors[a["label"]], "") for a in model["arms"]])
    return f'{legend}<div class="charts">{"".join(figures)}</div>'


# ----------------------------------------------------------------------- table


def _first_direction(column: dict[str, Any]) -> str:
    return "descending" if column["better"] == "higher" else "ascending"


def board_table(board: dict[str, Any], prefix: str) -> str:
    """The sortable table of one protocol's models."""
    cols = board["columns"]
    head = ['<th scope="col" data-col="rank" data-first="ascending" aria-sort="ascending">'
            '<button type="button" data-col="rank">Rank</button></th>',
            '<th scope="col" class="model" data-col="model" data-first="ascending">'
            '<button type="button" data-col="model">Model</button></th>']
    for c in cols:
        head.append(f'<th scope="col" data-col="{esc(c["id"])}" '
                    f'data-first="{_first_direction(c)}" title="{esc(c["description"])}">'
                    f'<button type="button" data-col="{esc(c["id"])}">{esc(c["label"])}'
                    "</button></th>")
    head.append('<th scope="col" data-col="complete" data-first="ascending">'
                '<button type="button" data-col="complete">Status</button></th>')
    rows = []
    for i, m in enumerate(board["models"]):
        rank = "-" if m["rank"] is None else f"{m['rank']}{'=' if m['tied'] else ''}"
        cells = [f'<td data-col="rank" data-value="{"" if m["rank"] is None else m["rank"]}">'
                 f"{esc(rank)}</td>",
                 f'<th scope="row" class="model" data-col="model" '
                 f'data-value="{esc(model_label(m))}"><a href="#{prefix}-m{i}" '
                 f'data-open="{prefix}-m{i}">{esc(model_label(m))}</a>'
                 + (f'<br><span class="path">{esc(m["model"])}</span>'
                    if m.get("display_name") else "") + "</th>"]
        for c in cols:
            cell = m["columns"].get(c["id"])
            cells.append(f'<td data-col="{esc(c["id"])}" '
                         f'data-value="{esc(sort_value(cell, c["kind"]))}">'
                         f'{_cell(cell, c["kind"], m["n_generations"])}</td>')
        status = ("complete" if m["complete"] else
                  "incomplete" + (f": no {', '.join(m['missing_arms'])}" if m["missing_arms"]
                                  else ""))
        if m.get("at_floor"):
            status += "; at the floor (gen-0 pass@1 below the floor: not ranked on collapse)"
        cells.append(f'<td data-col="complete" data-value="{0 if m["complete"] else 1}">'
                     f"{esc(status)}</td>")
        rows.append(f'<tr data-order="{i}">{"".join(cells)}</tr>')
    caption = (f"Models on {esc(board['protocol']['name'])} v{board['protocol']['version']}, "
               "ranked by the unverified arm's pass@1 area relative to generation 0. Each "
               "cell: mean, [95% interval], #rank in that column (= marks a tie).")
    return (f'<div class="table-wrap"><table class="board" id="{prefix}-table">'
            f"<caption>{caption}</caption><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _columns_legend(board: dict[str, Any]) -> str:
    items = "".join(f"<dt>{esc(c['label'])}</dt><dd>{esc(c['description'])} "
                    f"({esc(c['better'])} is better)</dd>" for c in board["columns"])
    return f'<dl class="columns">{items}</dl>'


# ---------------------------------------------------------------------- details


def _kv_table(rows: Sequence[tuple[str, str]], head: tuple[str, str]) -> str:
    body = "".join(f"<tr><th scope=\"row\">{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return (f'<table class="kv"><thead><tr><th scope="col">{esc(head[0])}</th>'
            f'<th scope="col">{esc(head[1])}</th></tr></thead><tbody>{body}</tbody></table>')


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _generation(value: Any) -> str:
    return generation_text(value)


def model_details(board: dict[str, Any], model: dict[str, Any], anchor: str) -> str:
    """A <details> view of one model: protocol, arms, runs, curves, config."""
    proto = board["protocol"]
    rank = "-" if model["rank"] is None else f"{model['rank']}{'=' if model['tied'] else ''}"
    state = "" if model["complete"] else " (incomplete)"
    arms = _grid(["arm", "seeds", "generations", "complete", "pass@1 AUC", "first gen below half",
                  "runs", "source"],
                 [[a["label"], ", ".join(map(str, a["seeds"])), str(a["n_generations"]),
                   "yes" if a["complete"] else "no", _num(a["collapse"]["pass1_auc"]["mean"]),
                   _generation(a["collapse"]["first_gen_below_half"]["mean"]),
                   ", ".join(a["run_ids"]), a["source"]] for a in model["arms"]])
    runs = _grid(["run", "config hash", "metrics sha256", "harness", "source file"],
                 [[r["run_id"], r["config_hash"], r.get("metrics_sha256") or "not recorded",
                   r["harness_version"], r["source"]] for r in model["runs"]])
    config = _kv_table([(k, json.dumps(v)) for k, v in model["config"].items()],
                       ("setting", "value"))
    missing = (f"<p>Missing arms: {esc(', '.join(model['missing_arms']))}.</p>"
               if model["missing_arms"] else "")
    named = (f'<dt>Model</dt><dd><code>{esc(model["model"])}</code></dd>'
             if model.get("display_name") else "")
    return (f'<details id="{anchor}"><summary>#{esc(rank)} {esc(model_label(model))}{state}'
            "</summary>"
            f'<dl class="facts">{named}<dt>Protocol</dt><dd>{esc(proto["name"])} '
            f'v{proto["version"]}</dd><dt>Protocol hash</dt><dd><code>{esc(proto["hash"])}</code>'
            f"</dd></dl>{missing}<h4>Arms</h4>{arms}<h4>Curves</h4>"
            f"{model_charts(model, anchor)}<h4>Runs behind it</h4>{runs}"
            f"<details><summary>Config ({len(model['config'])} settings)</summary>{config}"
            "</details></details>")


# -------------------------------------------------------------------------- page


CSS = """
:root{color-scheme:light;--fg:#1b1b1b;--muted:#5a5a5a;--line:#d5d9de;--accent:#0b57d0;
--head:#eef2f6}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff}
main{max-width:1260px;margin:0 auto;padding:20px 20px 48px}
h1{font-size:1.55rem;margin:0 0 .2rem}h2{font-size:1.3rem;margin:2rem 0 .3rem}
h3{font-size:1.08rem;margin:1.4rem 0 .4rem}h4{font-size:.98rem;margin:1rem 0 .3rem}
.meta,.note,caption{color:var(--muted)}caption{text-align:left;padding:6px 10px;font-size:.9em}
a{color:var(--accent)}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.board{width:100%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
table.board td{white-space:nowrap}
.model{text-align:left;min-width:10rem;max-width:22rem;overflow-wrap:anywhere}
.model .path{font-size:.8em;color:#555;font-weight:normal}
thead th{background:var(--head);vertical-align:bottom}
thead button{font:inherit;font-weight:600;color:inherit;background:none;border:0;
padding:3px 4px;cursor:pointer;text-align:inherit;border-radius:3px}
thead button:hover{text-decoration:underline}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.ci{display:block;color:var(--muted);font-size:.82em}
.rk{color:var(--muted);font-size:.78em}.tie{color:#a03c00;font-weight:600}
.columns{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:.9em}
.columns dt{font-weight:600}.columns dd{margin:0;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px 20px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:2px}
svg.chart{max-width:100%;height:auto}
svg .plot{fill:#fafbfc;stroke:var(--line)}svg .grid{stroke:#e6e9ed}
svg .line{fill:none;stroke-width:2}svg .band{opacity:.14;stroke:none}
svg text{font:11px system-ui,sans-serif;fill:#444}svg .axis{fill:var(--muted)}
.legend{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:4px 18px}
.swatch{display:inline-block;width:22px;height:0;border-top-width:3px;margin-right:6px;
vertical-align:middle}
details{border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:8px 0}
details details{margin-top:12px}
summary{cursor:pointer;font-weight:600;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}.facts dd{margin:0}
table.grid td,table.kv td{text-align:left}table.kv th{text-align:left;font-weight:normal}
table.grid,table.kv{font-size:.9em;margin:.3rem 0;display:block;overflow-x:auto}
code{overflow-wrap:anywhere}
"""

SCRIPT = """
(function () {
  "use strict";
  function value(row, col) {
    var cell = row.querySelector('[data-col="' + col + '"]');
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null || raw === "") return null;
    var num = Number(raw);
    return isNaN(num) ? raw : num;
  }
  function cmp(a, b) {
    if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
    return String(a).localeCompare(String(b));
  }
  function order(row) { return Number(row.getAttribute("data-order")); }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col), y = value(b, col);
      if (x === null || y === null) {
        return (x === null) - (y === null) || order(a) - order(b);
      }
      var c = cmp(x, y);
      return (dir === "descending" ? -c : c) || order(a) - order(b);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.getAttribute("data-col") === col) th.setAttribute("aria-sort", dir);
      else th.removeAttribute("aria-sort");
    });
    var status = document.getElementById(table.id + "-status");
    if (status) {
      var th = table.querySelector('thead th[data-col="' + col + '"]');
      status.textContent = "Sorted by " + th.textContent + ", " + dir + ".";
    }
  }
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.board"));
  tables.forEach(function (table) {
    table.querySelectorAll("thead button[data-col]").forEach(function (button) {
      button.addEventListener("click", function () {
        var th = button.parentNode, col = button.getAttribute("data-col");
        var now = th.getAttribute("aria-sort");
        var dir = now ? (now === "ascending" ? "descending" : "ascending")
                      : th.getAttribute("data-first");
        sortTable(table, col, dir);
      });
    });
  });
  function fromHash() {
    var m = /(?:^#|&)sort=([a-z0-9_]+)(?::(asc|desc))?/.exec(window.location.hash);
    if (m) {
      tables.forEach(function (table) {
        var th = table.querySelector('thead th[data-col="' + m[1] + '"]');
        if (!th) return;
        var dir = m[2] ? (m[2] === "asc" ? "ascending" : "descending")
                       : th.getAttribute("data-first");
        sortTable(table, m[1], dir);
      });
    }
    var target = window.location.hash.slice(1);
    var details = target && document.getElementById(target);
    if (details && details.tagName === "DETAILS") details.open = true;
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def _section(board: dict[str, Any], index: int) -> str:
    proto = board["protocol"]
    prefix = f"p{index}"
    details = "".join(model_details(board, m, f"{prefix}-m{i}")
                      for i, m in enumerate(board["models"]))
    return (f'<section id="{esc(proto["name"])}" aria-labelledby="{prefix}-h">'
            f'<h2 id="{prefix}-h">{esc(proto["name"])} v{proto["version"]}</h2>'
            f'<p>{esc(proto["description"])}</p>'
            f'<p class="meta">Protocol hash <code>{esc(proto["hash"])}</code> &middot; arms '
            f'{esc(", ".join(board["arms"]))} &middot; expected time '
            f'{esc(proto["expected_time"])} &middot; {len(board["models"])} model(s)</p>'
            f"{board_table(board, prefix)}"
            f'<p class="note" id="{prefix}-table-status" role="status" aria-live="polite"></p>'
            f"{_columns_legend(board)}"
            f"<h3>Curves</h3>{overview_charts(board, prefix)}"
            f"<h3>Models</h3>{details}</section>")


def render_page(doc: dict[str, Any]) -> str:
    """The whole board document as one HTML page (deterministic)."""
    boards = doc["boards"]
    nav = "".join(f'<li><a href="#{esc(b["protocol"]["name"])}">{esc(b["protocol"]["name"])} '
                  f'v{b["protocol"]["version"]}</a> ({len(b["models"])} models)</li>'
                  for b in boards)
    sources = _grid(["file", "sha256", "exported", "harness", "entries"],
                    [[s["file"], s["sha256"], s["created"], s["harness_version"],
                      str(s["n_entries"])] for s in doc["sources"]])
    sections = "".join(_section(b, i) for i, b in enumerate(boards))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>collapse-bench leaderboard</title>"
        f"<style>{CSS}</style></head><body><main>"
        "<h1>collapse-bench leaderboard</h1>"
        f'<p class="meta">Models compared by how they collapse when they self-train on their '
        f"own code. Built {esc(doc['created'])} by collapse-bench "
        f"{esc(doc['harness_version'])} from {len(doc['sources'])} export file(s). "
        f"{esc(doc['ranking']['rule'])}.</p>"
        f'<nav aria-label="Protocols"><ul>{nav}</ul></nav>'
        f"{sections}"
        f"<details><summary>Sources</summary>{sources}</details>"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )

"""One self-contained HTML page per run, or one for several runs side by side.

Everything the page shows is read from the run directory as training leaves it, so a page
can be made at any time, also while the run trains:

* ``config.yaml``: the resolved config, shown as it is;
* ``metrics.jsonl``: the training curves (losses, learning rates, steps/s) and the values of
  periodic evaluation (``eval_*``), drawn with Plotly (hover values, zoom, pan);
* ``samples/step_N.png`` (or ``.txt`` for token data): the sample pictures of every method,
  with their named visuals (conditions, inputs, translations, reconstructions) as the
  trainer drew them, behind one slider;
* ``samples/step_N.npz`` (2-D data, :mod:`gankit.report.snapshot`): an animation of the
  generated points over the data with the discriminator's surface beneath;
* ``evals/*.json`` (written by ``gankit eval RUN``): the evaluation tables, with the
  real-data reference column where the evaluation computed it, and ``evals/figures/*.png``
  (memorisation: samples beside their nearest training images).

Pictures and data are inlined and Plotly's own script is embedded once, so the file opens
with no network. ``render`` returns the HTML text; :func:`write_report` writes it atomically.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from ..viz.plots import read_metrics

__all__ = ["RunRecord", "collect", "render", "write_report", "save_eval", "signature", "last_step", "MAX_FRAMES"]

MAX_FRAMES = 60          # sample steps a page inlines at most (evenly spaced, the last always kept)
_STEP = re.compile(r"step_(\d+)\.(png|txt|npz)$")
_SKIP = ("step", "time")


@dataclass
class RunRecord:
    """What a page shows of one run."""
    path: Path
    name: str
    config_text: str
    config: dict
    rows: List[dict]
    frames: List[dict] = field(default_factory=list)      # {"step", "kind": "image"|"text", "data"}
    points: List[dict] = field(default_factory=list)      # {"step", arrays of the 2-D snapshot}
    evals: List[dict] = field(default_factory=list)       # evals/*.json, sorted by step
    figures: List[dict] = field(default_factory=list)     # {"name", "data"}: evals/figures/*.png

    @property
    def last_step(self) -> int:
        steps = [r["step"] for r in self.rows if "step" in r] + [f["step"] for f in self.frames]
        return max(steps, default=0)


def _is_run(path: Path) -> bool:
    return (path / "config.yaml").is_file()


def _data_uri(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _spaced(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spaced, the first and the last always kept."""
    if len(items) <= limit:
        return items
    if limit < 2:
        return items[-1:]
    keep = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in keep]


def _step_files(folder: Path, suffixes: Sequence[str]) -> List[tuple]:
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _STEP.match(p.name)
            if m and m.group(2) in suffixes:
                found.append((int(m.group(1)), p))
    return sorted(found)


def collect(run_dir, max_frames: int = MAX_FRAMES) -> RunRecord:
    """Read what a page shows of the run at ``run_dir``."""
    import yaml

    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory; give the folder a `gankit train --out` wrote")
    if not _is_run(path):
        raise ConfigError(f"{path} holds no config.yaml, so it is not a gankit run directory; give the "
                          "folder a `gankit train --out` wrote")
    config_text = (path / "config.yaml").read_text()
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path / 'config.yaml'} is not valid YAML ({exc}); the run directory is damaged") from exc
    rec = RunRecord(path=path, name=path.name, config_text=config_text, config=config,
                    rows=[r for r in read_metrics(path / "metrics.jsonl") if "step" in r])
    frames = []
    for step, p in _step_files(path / "samples", ("png", "txt")):
        if p.suffix == ".png":
            frames.append({"step": step, "kind": "image", "path": p})
        else:
            frames.append({"step": step, "kind": "text", "path": p})
    for f in _spaced(frames, max_frames):
        p = f.pop("path")
        f["data"] = _data_uri(p) if f["kind"] == "image" else p.read_text(errors="replace")
        rec.frames.append(f)
    from .snapshot import load_points

    for step, p in _spaced(_step_files(path / "samples", ("npz",)), max_frames):
        try:
            rec.points.append({"step": step, **load_points(p)})
        except (OSError, ValueError, KeyError):
            continue   # a snapshot being replaced right now: the next page has it
    for p in sorted((path / "evals").glob("*.json")):
        try:
            rec.evals.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    rec.evals.sort(key=lambda e: (e.get("step", 0), e.get("split", "")))
    for p in sorted((path / "evals" / "figures").glob("*.png")):
        rec.figures.append({"name": p.stem, "data": _data_uri(p)})
    return rec


def save_eval(run_dir, payload: dict) -> Path:
    """Keep one evaluation with its run (``evals/step_N_SPLIT.json``, written through a
    temporary file), for the page; evaluating the same step and split again with other metrics
    adds them to the same file."""
    folder = Path(run_dir) / "evals"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(payload.get('step', 0)):08d}_{payload.get('split', 'test')}.json"
    merged = dict(payload)
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        old = None
    if old is not None and old.get("n") == payload.get("n") and old.get("features") == payload.get("features"):
        merged["metrics"] = {**old.get("metrics", {}), **payload.get("metrics", {})}
        merged["reference"] = {**old.get("reference", {}), **payload.get("reference", {})}
        if not merged["reference"]:
            del merged["reference"]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def last_step(run_dir) -> int:
    """The latest step a run has logged or drawn (cheap: no picture is read)."""
    path = Path(run_dir)
    steps = [r["step"] for r in read_metrics(path / "metrics.jsonl") if "step" in r]
    steps += [s for s, _ in _step_files(path / "samples", ("png", "txt"))]
    return max(steps, default=0)


def signature(run_dirs: Sequence) -> str:
    """A short digest of everything a page is made from: it changes when a run writes a new
    step (metrics, samples, evaluations), so a live page knows when to reload."""
    h = hashlib.sha1()
    for d in run_dirs:
        d = Path(d)
        for p in [d / "config.yaml", d / "metrics.jsonl", *sorted((d / "samples").glob("step_*")),
                  *sorted((d / "evals").glob("**/*"))]:
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------- figures
def _curve_keys(rows: List[dict]) -> Dict[str, List[str]]:
    keys = sorted({k for r in rows for k, v in r.items() if k not in _SKIP and isinstance(v, (int, float))})
    return {"losses": [k for k in keys if not k.startswith(("lr_", "eval_")) and k != "steps_per_s"],
            "evaluation": [k for k in keys if k.startswith("eval_")],
            "learning rates": [k for k in keys if k.startswith("lr_")],
            "speed (steps/s)": [k for k in keys if k == "steps_per_s"]}


def _series(rows: List[dict], key: str):
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] if np.isfinite(p[1]) else None for p in pts]


def _figure_html(fig, div_id: str) -> str:
    # auto_play off: an animation waits for its play button and opens on the latest step
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, auto_play=False,
                       config={"responsive": True, "displaylogo": False})


def _curves(rec: RunRecord, index: int) -> str:
    import plotly.graph_objects as go

    parts = []
    for j, (title, keys) in enumerate(_curve_keys(rec.rows).items()):
        if not keys:
            continue
        fig = go.Figure()
        for key in keys:
            xs, ys = _series(rec.rows, key)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=key))
        fig.update_layout(title=title, xaxis_title="step", height=360, margin=dict(l=50, r=20, t=50, b=40),
                          hovermode="x unified", template="plotly_white")
        parts.append(_figure_html(fig, f"curves-{index}-{j}"))
    return "\n".join(parts) or "<p class='note'>no training curves yet (metrics.jsonl is empty)</p>"


def _comparison(records: List[RunRecord]) -> str:
    import plotly.graph_objects as go

    shared: List[str] = []
    for key in sorted({k for rec in records for k in _curve_keys(rec.rows)["losses"] +
                       _curve_keys(rec.rows)["evaluation"]}):
        if sum(any(key in r for r in rec.rows) for rec in records) >= 2:
            shared.append(key)
    parts = []
    for j, key in enumerate(shared):
        fig = go.Figure()
        for rec in records:
            xs, ys = _series(rec.rows, key)
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=rec.name))
        fig.update_layout(title=key, xaxis_title="step", height=320, margin=dict(l=50, r=20, t=50, b=40),
                          hovermode="x unified", template="plotly_white")
        parts.append(_figure_html(fig, f"compare-{j}"))
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in records)
    lines = []
    finals = [_final_values(r) for r in records]
    for key in sorted({k for f in finals for k in f}):
        cells = "".join(f"<td>{_fmt(f.get(key))}</td>" for f in finals)
        lines.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    table = (f"<table class='metrics' id='compare-table'><tr><th>metric</th>{head}</tr>{''.join(lines)}</table>"
             if lines else "")
    return (f"<section id='comparison'><h2>Comparison</h2>{table}"
            f"{''.join(parts) or '<p class=note>the runs log no curve in common</p>'}</section>")


def _final_values(rec: RunRecord) -> Dict[str, float]:
    """The last logged value of each curve and the latest evaluation's metrics."""
    out: Dict[str, float] = {}
    for r in rec.rows:
        for k, v in r.items():
            if k not in _SKIP and isinstance(v, (int, float)):
                out[k] = v
    if rec.evals:
        for k, v in rec.evals[-1].get("metrics", {}).items():
            out[k] = v
    out["step"] = rec.last_step
    return out


def _fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.5g}" if np.isfinite(v) else str(v)
    return html.escape(str(v))


def _animation(rec: RunRecord, index: int) -> str:
    """The 2-D samples over the data, the discriminator's surface beneath, one frame per
    sample step, with Plotly's play button and slider."""
    import plotly.graph_objects as go

    if not rec.points:
        return ""
    last = rec.points[-1]
    has_surface = all("surface" in p for p in rec.points)

    def traces(p):
        out = []
        if has_surface:
            out.append(go.Contour(x=p["grid_x"], y=p["grid_y"], z=p["surface"], colorscale="RdBu",
                                  opacity=0.6, showscale=True, colorbar=dict(title="D score"), ncontours=20,
                                  hovertemplate="x %{x:.2f}<br>y %{y:.2f}<br>D %{z:.3f}<extra></extra>"))
        out.append(go.Scatter(x=p["real"][:, 0], y=p["real"][:, 1], mode="markers", name="data",
                                marker=dict(size=3, color="rgba(60,60,60,0.45)")))
        out.append(go.Scatter(x=p["x"][:, 0], y=p["x"][:, 1], mode="markers", name="generated",
                                marker=dict(size=3, color="rgba(220,40,30,0.7)")))
        return out

    frames = [go.Frame(data=traces(p), name=str(p["step"])) for p in rec.points]
    names = [str(p["step"]) for p in rec.points]
    fig = go.Figure(data=traces(last), frames=frames)   # the latest step shows; play runs from the first
    play = dict(label="play", method="animate",
                args=[None, {"frame": {"duration": 400, "redraw": True}, "fromcurrent": False,
                             "transition": {"duration": 0}}])
    pause = dict(label="pause", method="animate",
                 args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}])
    fig.update_layout(
        title="generated samples over the data" + (", discriminator's score beneath" if has_surface else ""),
        height=600, width=640, template="plotly_white", xaxis=dict(scaleanchor="y"),
        legend=dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom"),
        updatemenus=[dict(type="buttons", buttons=[play, pause], x=0.0, y=-0.08, xanchor="left",
                          yanchor="top", direction="left")],
        sliders=[dict(active=len(names) - 1, currentvalue=dict(prefix="step "), x=0.2, len=0.8, y=-0.02,
                      steps=[dict(label=n, method="animate",
                                  args=[[n], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}])
                             for n in names])])
    return f"<h3>2-D samples over training</h3>{_figure_html(fig, f'anim-{index}')}"


def _samples(rec: RunRecord, index: int) -> str:
    if not rec.frames:
        return "<p class='note'>no sample pictures yet (train.sample_every)</p>"
    payload = json.dumps([{"step": f["step"], "kind": f["kind"], "data": f["data"]} for f in rec.frames])
    last = len(rec.frames) - 1
    return (f"<div class='samples' data-run='{index}'>"
            f"<label>step <span class='step-label' id='step-{index}'></span> "
            f"<input type='range' class='frame-slider' id='slider-{index}' min='0' max='{last}' value='{last}' "
            f"data-run='{index}'></label>"
            f"<div class='frame'><img id='frame-{index}' alt='samples'><pre id='text-{index}' hidden></pre></div>"
            f"<script type='application/json' id='frames-{index}'>{_script_safe(payload)}</script></div>")


def _script_safe(text: str) -> str:
    return text.replace("</", "<\\/")


def _evals(rec: RunRecord) -> str:
    if not rec.evals:
        return ""
    blocks = []
    for e in rec.evals:
        metrics = e.get("metrics", {})
        ref = e.get("reference", {}) or {}
        head = "<tr><th>metric</th><th>value</th>" + ("<th>real data (reference)</th>" if ref else "") + "</tr>"
        body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td>"
                       + (f"<td>{_fmt(ref.get(k))}</td>" if ref else "") + "</tr>" for k, v in metrics.items())
        what = f"step {e.get('step', '?')}, {e.get('n', '?')} samples against the {e.get('split', '?')} split"
        if e.get("features"):
            what += f", features {html.escape(str(e['features']))}"
        blocks.append(f"<h4>{what}</h4><table class='metrics'>{head}{body}</table>")
    if rec.evals and any(e.get("reference") for e in rec.evals):
        blocks.append("<p class='note'>reference: the data's own training pictures scored as if generated, "
                      "against the same held-out split (what a perfect generator would get)</p>")
    return "<h3>Evaluation</h3>" + "".join(blocks)


def _neighbours(rec: RunRecord) -> str:
    if not rec.figures:
        return ""
    imgs = "".join(f"<figure><img src='{f['data']}' alt='{html.escape(f['name'])}'>"
                   f"<figcaption>{html.escape(f['name'])}</figcaption></figure>" for f in rec.figures)
    return f"<h3>Memorisation: samples beside their nearest training images</h3>{imgs}"


def _summary(rec: RunRecord) -> str:
    cfg = rec.config
    method = (cfg.get("method") or {}).get("name", "?")
    data = (cfg.get("data") or {}).get("name", "?")
    total = (cfg.get("train") or {}).get("steps", "?")
    speed = next((r["steps_per_s"] for r in reversed(rec.rows) if "steps_per_s" in r), None)
    items = [("method", method), ("data", data), ("step", f"{rec.last_step} of {total}"),
             ("steps/s (last log)", _fmt(speed)), ("directory", html.escape(str(rec.path)))]
    return "<table class='summary'>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items) + "</table>"


def _section(rec: RunRecord, index: int) -> str:
    return (f"<section class='run' id='run-{index}'><h2>{html.escape(rec.name)}</h2>{_summary(rec)}"
            f"<h3>Samples</h3>{_samples(rec, index)}{_animation(rec, index)}"
            f"<h3>Training curves</h3>{_curves(rec, index)}{_evals(rec)}{_neighbours(rec)}"
            f"<details><summary>config.yaml</summary><pre class='config'>{html.escape(rec.config_text)}</pre>"
            f"</details></section>")


_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td{font-variant-numeric:tabular-nums}.note{color:#666;font-size:.9em}
.frame img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
.frame-slider{width:min(600px,70vw);vertical-align:middle}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em}figure{display:inline-block;margin:.5em}
figure img{max-width:560px}#live{position:fixed;top:.4em;right:.8em;font-size:.85em;color:#2a7}
"""

_SCRIPT = """
function showFrame(run, i) {
  const frames = JSON.parse(document.getElementById('frames-' + run).textContent);
  const f = frames[i];
  const img = document.getElementById('frame-' + run), txt = document.getElementById('text-' + run);
  document.getElementById('step-' + run).textContent = f.step;
  if (f.kind === 'image') { img.src = f.data; img.hidden = false; txt.hidden = true; }
  else { txt.textContent = f.data; txt.hidden = false; img.hidden = true; img.removeAttribute('src'); }
}
document.querySelectorAll('.frame-slider').forEach(function (s) {
  s.addEventListener('input', function () { showFrame(s.dataset.run, +s.value); });
  showFrame(s.dataset.run, +s.value);
});
"""

_LIVE = """
(function () {
  const known = %s, every = %d, hold = 15000;
  let touched = 0;   // no reload under a hand that is using the page (slider, zoom, animation)
  ['input', 'mousedown', 'wheel', 'keydown', 'touchstart'].forEach(function (ev) {
    document.addEventListener(ev, function () { touched = Date.now(); }, true);
  });
  async function poll() {
    const live = document.getElementById('live');
    try {
      const r = await fetch('state', {cache: 'no-store'});
      const s = await r.json();
      const busy = Date.now() - touched < hold;
      live.textContent = 'live: step ' + s.steps.join(', ') + (s.signature !== known && busy ? ' (newer steps: '
                         + 'the page reloads when left alone)' : '');
      if (s.signature !== known && !busy) { location.reload(); return; }
    } catch (e) { live.textContent = 'live: waiting for the server'; }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
})();
"""


def render(records: Sequence[RunRecord], live: Optional[dict] = None) -> str:
    """The page for ``records`` (one run, or several compared). ``live`` (``{"signature":
    ..., "interval_ms": ...}``) adds the script of ``gankit serve`` that reloads the page
    when the runs write a new step."""
    import plotly.offline

    records = list(records)
    title = "gankit report: " + ", ".join(r.name for r in records)
    body = (_comparison(records) if len(records) > 1 else "") + "".join(
        _section(r, i) for i, r in enumerate(records))
    live_js = ""
    if live is not None:
        ms = int(live.get("interval_ms", 2000))
        steps = ", ".join(str(r.last_step) for r in records)
        live_js = (f"<div id='live'>live: step {steps}</div><script>" + _LIVE % (json.dumps(live["signature"]), ms)
                   + "</script>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}<script>{_SCRIPT}</script>{live_js}</body></html>")


def write_report(run_dirs: Sequence, out=None, max_frames: int = MAX_FRAMES) -> Path:
    """Write the page of ``run_dirs`` to ``out`` (default: ``report.html`` in the only run, or
    ``report.html`` in the current folder for several) through a temporary file."""
    if not run_dirs:
        raise ConfigError("give at least one run directory")
    records = [collect(d, max_frames) for d in run_dirs]
    if out is None:
        out = Path(run_dirs[0]) / "report.html" if len(run_dirs) == 1 else Path("report.html")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give a file name for the page (e.g. {out / 'report.html'})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(render(records), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out

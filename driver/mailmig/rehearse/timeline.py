"""The rehearsal's timeline as a PNG: the reply time of every message over time, the
stages marked, the write pauses shaded, so that a person sees at a glance where the
replies waited and that nothing failed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")  # 1, 10, 100 ms rather than 10^0

STAGE_COLOURS = ("#f2f2f2", "#e3ecf7")
OUTCOME_STYLE = {
    "250": ("#2e7d32", "o", "250 accepted"),
    "4xx": ("#ef6c00", "^", "4xx"),
    "5xx": ("#c62828", "v", "5xx"),
    "error": ("#6a1b9a", "x", "no reply (connection error)"),
}


def _outcome(item) -> str:
    if item.code is None:
        return "error"
    if 200 <= item.code < 300:
        return "250"
    return "4xx" if 400 <= item.code < 500 else "5xx"


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 0.1 else f"{value:.2f} s"


def draw(path: Path, title: str, stages: list[dict], pauses: list[dict], sent: list, reads: list,
         p99_outside_ms: float | None) -> Path:
    fig, (strip, top, bottom) = plt.subplots(3, 1, figsize=(15, 8.6), sharex=True,
                                             gridspec_kw={"height_ratios": [0.45, 3, 1]}, constrained_layout=True)
    end = max([s["end"] for s in stages] + [1.0])
    for axis in (strip, top, bottom):
        for i, stage in enumerate(stages):
            axis.axvspan(stage["start"], stage["end"], color=STAGE_COLOURS[i % 2], zorder=0)
        for pause in pauses:
            axis.axvspan(pause["start"], max(pause["end"], pause["start"] + end / 800), color="#ef9a9a",
                         alpha=0.6, zorder=1)
    # the stages, named in a strip of their own (numbered where too narrow for a name)
    footnotes = []
    for i, stage in enumerate(stages, 1):
        width = stage["end"] - stage["start"]
        label = stage["name"] if width >= end * 0.075 else str(i)
        if label != stage["name"]:
            footnotes.append(f"{i} {stage['name']}")
        strip.text((stage["start"] + stage["end"]) / 2, 0.68 if i % 2 else 0.28, label, ha="center", va="center",
                   fontsize=8.5, color="#263238", clip_on=True)
    strip.set_yticks([])
    strip.set_ylim(0, 1)
    strip.set_title(title, fontsize=11)
    groups: dict[str, tuple[list, list]] = {}
    for item in sent:
        if item.started is None or item.replied is None:
            continue
        xs, ys = groups.setdefault(_outcome(item), ([], []))
        xs.append(item.started)
        ys.append(max((item.replied - item.started) * 1000, 0.1))
    for outcome, (xs, ys) in groups.items():
        colour, marker, label = OUTCOME_STYLE[outcome]
        top.scatter(xs, ys, s=9 if outcome == "250" else 30, c=colour, marker=marker,
                    label=f"{label}: {len(xs):,}", zorder=3, linewidths=0.8)
    top.set_yscale("log")
    top.set_ylabel("SMTP reply time (ms, log)")
    top.yaxis.set_major_formatter(PLAIN)
    if p99_outside_ms:
        top.axhline(p99_outside_ms, color="#455a64", linestyle="--", linewidth=1, zorder=2,
                    label=f"p99 outside pauses: {p99_outside_ms:.0f} ms")
    ymax = max([y for _, ys in groups.values() for y in ys] + [10.0])
    top.set_ylim(0.5, ymax * 4)
    for pause in pauses:
        top.annotate(f"{pause['name']}\nwrite pause {_seconds(pause['write_pause_s'])}",
                     xy=(pause["start"], pause["peak_ms"] or 1), xytext=(8, 12), textcoords="offset points",
                     fontsize=9, color="#b71c1c", fontweight="bold",
                     arrowprops={"arrowstyle": "-", "color": "#b71c1c", "lw": 0.8})
    top.legend(loc="lower left", fontsize=8.5, framealpha=0.9)
    ok_x = [r.at for r in reads if not r.error]
    ok_y = [r.seconds * 1000 for r in reads if not r.error]
    bad = [r for r in reads if r.error]
    bottom.scatter(ok_x, ok_y, s=6, c="#1565c0", label=f"API reads: {len(ok_x):,}", zorder=3)
    if bad:
        bottom.scatter([r.at for r in bad], [max(r.seconds * 1000, 1) for r in bad], s=30, c="#c62828",
                       marker="x", label=f"API errors: {len(bad):,}", zorder=4)
    bottom.set_yscale("log")
    bottom.set_ylabel("API read (ms)")
    bottom.yaxis.set_major_formatter(PLAIN)
    bottom.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    bottom.set_xlabel("\n".join(textwrap.wrap(
        "seconds since the rehearsal began (shaded red: write pauses)"
        + (";  stages: " + ", ".join(footnotes) if footnotes else ""), 190)))
    bottom.legend(loc="upper left", fontsize=8.5)
    bottom.set_xlim(0, end)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

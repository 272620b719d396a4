"""The bench's PNGs (matplotlib, no display): latency percentiles against writers, the
retention stall timeline, search latency against volume."""

from __future__ import annotations

from pathlib import Path

COLORS = {"sqlite": "#d95f02", "postgres": "#1f5fa8"}
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_vs_writers(r: dict, path: Path) -> Path:
    plt = _pyplot()
    rows = r["writers"]
    w = [row["writers"] for row in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for store in ("sqlite", "postgres"):
        for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
            ys = [row[store]["latency"][key] for row in rows]
            ax.plot(w, ys, style, marker="o", color=COLORS[store], label=f"{NAMES[store]} {key[:3]}")
        for row in rows:
            if row[store]["errors"]:
                ax.annotate(f"{row[store]['errors']:,} errors", (row["writers"], row[store]["latency"]["p99_ms"]),
                            textcoords="offset points", xytext=(4, 6), color=COLORS[store], fontsize=8)
        ax2.plot(w, [row[store]["throughput_per_s"] for row in rows], marker="o", color=COLORS[store],
                 label=NAMES[store])
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.text(w[0], 50, " 50 ms target", va="bottom", fontsize=8, color="grey")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xticks(w)
        a.set_xticklabels([str(x) for x in w])
        a.set_xlabel("concurrent writers")
        a.grid(True, which="both", alpha=0.3)
    ax.set_yscale("log")
    ax.set_ylabel("insert latency, ms (log)")
    ax.set_title("Insert latency against writers")
    ax.legend(fontsize=8)
    ax2.set_ylabel("successful inserts per second")
    ax2.set_title("Throughput against writers")
    ax2.legend(fontsize=8)
    fig.suptitle(f"mailmig bench, SCALE={r['plan']['scale']}: {r['plan']['writer_seconds']} s per point", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def timeline(r: dict, key: str, title: str, path: Path) -> Path:
    plt = _pyplot()
    item = r[key]
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, sharey=True)
    for ax, store in zip(axes, ("sqlite", "postgres")):
        data = item[store]
        points = data["timeline"]
        ok = [(t, ms) for t, ms, code in points if code == 0]
        bad = [(t, ms) for t, ms, code in points if code != 0]
        bg = data["background"]
        ax.axvspan(bg["start_s"], bg["end_s"], color="grey", alpha=0.18, label=f"{title} running")
        if ok:
            ax.scatter([t for t, _ in ok], [ms for _, ms in ok], s=6, color=COLORS[store], label="insert (ok)")
        if bad:
            ax.scatter([t for t, _ in bad], [ms for _, ms in bad], s=22, marker="x", color="red",
                       label=f"failed ({len(bad):,})")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        ax.set_ylabel("latency, ms (log, same scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{NAMES[store]}: longest stall {data['longest_stall_ms']:,.0f} ms, {data['errors']:,} errors",
                     fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("seconds since the writers started (each point: one insert, at its due time)")
    fig.suptitle(f"Inserts at {item['sqlite']['target_rate_per_s']}/s during {title}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def search_vs_volume(r: dict, path: Path) -> Path:
    plt = _pyplot()
    volumes = sorted(r["search"], key=lambda v: v["volume"])
    fig, ax = plt.subplots(figsize=(12, 5.5))
    names = [q["name"] for q in volumes[0]["queries"]]
    markers = ["o", "s", "^", "D", "v"]
    for i, name in enumerate(names):
        for store in ("sqlite", "postgres"):
            xs, ys = [], []
            for v in volumes:
                q = next(q for q in v["queries"] if q["name"] == name)
                xs.append(v["volume"])
                ys.append(q[store]["p95_ms"])
            ax.plot(xs, ys, "-" if store == "postgres" else "--", marker=markers[i % len(markers)],
                    color=COLORS[store], label=f"{NAMES[store]}: {name}")
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([v["volume"] for v in volumes])
    ax.set_xticklabels([f"{v['volume']:,}" for v in volumes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.set_xlabel("emails in the store")
    ax.set_ylabel("search p95, ms (log)")
    ax.set_title("Full-text search p95 against volume (best 50 by rank)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(r: dict, out_dir: Path) -> list[Path]:
    return [
        latency_vs_writers(r, out_dir / "latency-vs-writers.png"),
        timeline(r, "retention", "retention", out_dir / "retention-timeline.png"),
        timeline(r, "maintenance", "VACUUM/ANALYZE", out_dir / "maintenance-timeline.png"),
        search_vs_volume(r, out_dir / "search-vs-volume.png"),
    ]

"""`wenda eval --plot FILE.png`: the reliability diagram of the confidence (matplotlib, the `plot` extra)."""

from __future__ import annotations

from pathlib import Path

from wenda.index.errors import UsageError


def reliability_diagram(rows: dict[str, dict], path: Path) -> None:
    """Mean confidence against the share right per bin, one line per mode, bar widths by count."""
    import matplotlib  # the `plot` extra: `wenda eval --plot` checks it is installed before asking anything

    matplotlib.use("Agg")  # no display: a file is written
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for mode, row in rows.items():
        table = row["reliability"]
        confidence = [b["mean_confidence"] for b in table]
        top.plot(confidence, [b["accuracy"] for b in table], marker="o", label=f"{mode} (ECE {row['ece']:.3f})")
        bottom.bar([(b["low"] + b["high"]) / 2 for b in table], [b["count"] for b in table], width=0.08, alpha=0.6)
    top.set(ylabel="top result right", xlim=(0, 1), ylim=(0, 1), title="Confidence reliability")
    top.legend(loc="upper left", fontsize="small")
    bottom.set(xlabel="confidence", ylabel="questions")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(figure)

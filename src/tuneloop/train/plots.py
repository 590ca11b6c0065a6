"""PNG plots of a run's metrics.jsonl: loss (train and eval), gradient norm, learning rate."""

from __future__ import annotations

import json
from pathlib import Path


def plot_metrics(metrics_path: Path, out_dir: Path) -> list[Path]:
    """Write ``loss.png``, ``grad_norm.png`` and ``lr.png``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    out_dir.mkdir(parents=True, exist_ok=True)
    series = {
        "loss.png": [("loss", "train loss"), ("eval_loss", "eval loss")],
        "grad_norm.png": [("grad_norm", "gradient norm")],
        "lr.png": [("learning_rate", "learning rate")],
    }
    written = []
    for filename, keys in series.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        drew = False
        for key, label in keys:
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None, label=label)
                drew = True
        ax.set_xlabel("step")
        ax.set_title(filename.removesuffix(".png").replace("_", " "))
        if drew:
            ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / filename, dpi=100)
        plt.close(fig)
        written.append(out_dir / filename)
    return written

"""The dashboard's charts, drawn on the server by Matplotlib as SVG and shown as ``<img>`` (a data URI, so
each chart's ids stay its own and nothing is fetched from elsewhere). Readable without colour: each series
has its own hatch pattern and a legend naming it, the axis says what is counted, and the page gives the
same numbers as a table beside the chart."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Sequence
from datetime import datetime

# (label, colour, hatch): the hatch tells the series apart when colour does not
SERIES = (("in sync", "#2f7d4f", "//"), ("failing", "#b3261e", "xx"), ("still open or skipped", "#c9ced8", ".."))
_lock = threading.Lock()   # pyplot's state is per process: one figure at a time


def flow_chart(starts: Sequence[datetime], series: Sequence[Sequence[int]], unit: str) -> str:
    """Stacked bars, one per hour or day, of the orders received then by where they stand now, as a
    ``data:image/svg+xml`` URI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [t.strftime("%H:00" if unit == "hour" else "%d %b") for t in starts]
    with _lock, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "o2c-dashboard",
                                       "hatch.linewidth": 0.8, "font.size": 9}):
        fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
        try:
            bottom = [0] * len(labels)
            for (name, colour, hatch), values in zip(SERIES, series, strict=True):
                ax.bar(range(len(labels)), values, bottom=bottom, label=name, color=colour, hatch=hatch,
                       edgecolor="#1d2330", linewidth=0.4)
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            step = max(1, len(labels) // 12)
            ax.set_xticks(range(0, len(labels), step), labels[::step])
            ax.set_ylabel("orders received")
            ax.set_xlabel("hour (UTC)" if unit == "hour" else "day (UTC)")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.spines[["top", "right"]].set_visible(False)
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=3, fontsize=8)
            fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")

"""Percentiles and the figure records results.json holds."""
import math


def percentile(samples, q):
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        return None
    data = sorted(samples)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary_ms(samples_seconds):
    """(median ms, p99 ms, n) of samples in seconds."""
    return (percentile(samples_seconds, 50) * 1e3, percentile(samples_seconds, 99) * 1e3, len(samples_seconds))


class Results:
    """Figures in the order measured. A figure: key, label, value, unit, p99 (latencies),
    floor (the key of the floor figure it is compared with), ratio, goal (text), met."""

    def __init__(self):
        self.figures = []
        self.by_key = {}
        self.notes = []

    def add(self, key, label, value, unit, *, p99=None, samples=None, floor=None, invert=False,
            goal=None, check=None, note=None):
        """``floor``: key of the floor figure; ratio = value / floor (``invert``: floor / value).
        ``check(value, ratio) -> bool`` decides ``met`` for ``goal``."""
        floor_fig = self.by_key.get(floor) if floor else None
        ratio = None
        if floor_fig is not None and floor_fig["value"] and value is not None:
            ratio = (floor_fig["value"] / value) if invert else (value / floor_fig["value"])
        met = None
        if goal is not None and check is not None and value is not None:
            met = bool(check(value, ratio))
        fig = {
            "key": key, "figure": label, "value": _round(value), "unit": unit, "p99": _round(p99),
            "samples": samples, "floor": floor, "floor_value": floor_fig["value"] if floor_fig else None,
            "floor_unit": floor_fig["unit"] if floor_fig else None, "ratio": _round(ratio),
            "goal": goal, "met": met, "note": note,
        }
        self.figures.append(fig)
        self.by_key[key] = fig
        return fig

    def table(self):
        head = ("figure", "median/value", "p99", "unit", "floor", "ratio", "goal", "met")
        rows = []
        for f in self.figures:
            floor = f"{_fmt(f['floor_value'])} {f['floor_unit']}" if f["floor"] else "—"
            met = {True: "yes", False: "NO", None: ""}[f["met"]]
            rows.append((f["figure"], _fmt(f["value"]), _fmt(f["p99"]) if f["p99"] is not None else "",
                         f["unit"], floor, f"{f['ratio']:.2f}×" if f["ratio"] is not None else "",
                         f["goal"] or "", met))
        widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
        lines = [" | ".join(str(h).ljust(w) for h, w in zip(head, widths)),
                 "-|-".join("-" * w for w in widths)]
        for r in rows:
            lines.append(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
        return "\n".join(lines)

    def markdown(self):
        head = "| figure | median / value | p99 | unit | floor (same run) | ratio | goal | met | note |\n" \
               "|---|---:|---:|---|---:|---:|---|---|---|"
        lines = [head]
        for f in self.figures:
            floor = f"{_fmt(f['floor_value'])} {f['floor_unit']}" if f["floor"] else "—"
            met = {True: "yes", False: "**no**", None: ""}[f["met"]]
            ratio = "" if f["ratio"] is None else "%.2f×" % f["ratio"]
            p99 = "" if f["p99"] is None else _fmt(f["p99"])
            lines.append(f"| {f['figure']} | {_fmt(f['value'])} | {p99} | {f['unit']} | {floor} | {ratio} "
                         f"| {f['goal'] or ''} | {met} | {f['note'] or ''} |")
        return "\n".join(lines)


def _round(value):
    if value is None:
        return None
    if isinstance(value, float):
        return round(value, 4 if abs(value) < 10 else 1)
    return value


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)

"""Bulletins (一周一通报) and monthly reviews (一月一点评): the document and its renderings
(JSON as built here, CSV of the ranked table, an HTML page with an inline SVG trend chart).
Pure: the service gathers the numbers, this module arranges and renders them."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from scoring.domain import DEFAULT_FORMAT, FigureFormat, Weights, figure, percent, rate
from scoring.periods import Period
from scoring.rates import RATE_PARTS, Counts
from shared.orgdata import SUBJECT_CLASSES  # the one list of subject names

TITLES = {"week": "一周一通报", "month": "一月一点评"}


def _delta(now: Fraction | None, before: Fraction | None, fmt: FigureFormat = DEFAULT_FORMAT) -> str | None:
    """Change in percentage points, in the county's format ("+1.25", "-0.40")."""
    if now is None or before is None:
        return None
    diff = (now - before) * 100
    return ("-" if diff < 0 else "+") + figure(abs(diff), fmt)


def build_bulletin(
    *, county: str, county_name: str, period: Period, weights: Weights, ranked: list[dict], previous: dict[str, dict],
    trend: list[tuple[str, dict, Counts]], overdue: list[dict], top_subject: tuple[str, int] | None, month_label: str,
    fmt: FigureFormat = DEFAULT_FORMAT,
) -> dict[str, Any]:
    for row in ranked:
        before = previous.get(row["unit"])
        row["previous_rank"] = before["rank"] if before else None
        row["previous_score"] = before["score"] if before else None
    (_, now_view, now_counts), (_, before_view, before_counts) = trend[-1], trend[-2]
    comparison = {}
    for name in ("resolution", "satisfaction", "response"):
        part, whole = RATE_PARTS[name]
        now_rate = rate(getattr(now_counts, part), getattr(now_counts, whole))
        before_rate = rate(getattr(before_counts, part), getattr(before_counts, whole))
        comparison[name] = {"now": percent(now_rate, fmt), "before": percent(before_rate, fmt),
                            "change_points": _delta(now_rate, before_rate, fmt)}
    comparison["received"] = {"now": now_counts.received, "before": before_counts.received,
                              "change": now_counts.received - before_counts.received}
    comparison["overdue"] = {"now": now_counts.overdue, "before": before_counts.overdue,
                             "change": now_counts.overdue - before_counts.overdue}
    return {
        "title": f"{county_name}{TITLES.get(period.kind, '通报')}（{period.label}）",
        "kind": {"week": "weekly", "month": "monthly"}.get(period.kind, period.kind),
        "county": county, "county_name": county_name,
        "period": {"kind": period.kind, "label": period.label, "from": period.start.isoformat(), "until": period.end.isoformat()},
        "weights": {"version": weights.version, "response": str(weights.response), "resolution": str(weights.resolution),
                    "satisfaction": str(weights.satisfaction), "township_rating": str(weights.township_rating)},
        "figure_format": {"rounding": fmt.rounding, "places": fmt.places},
        "summary": now_view,
        "ranking": ranked,
        "overdue": overdue,
        "topic_of_the_month": None if top_subject is None else {
            "month": month_label, "subject_class": top_subject[0],
            "name": SUBJECT_CLASSES.get(top_subject[0], top_subject[0]), "appeals": top_subject[1],
        },
        "trend": [{"period": label, **view} for label, view, _ in trend],
        "compared_with_previous": comparison,
    }


CSV_COLUMNS = (
    ("rank", "排名"), ("unit", "单位代码"), ("name", "单位"), ("score", "综合得分"), ("received", "受理"),
    ("resolved", "办结"), ("solved", "解决"), ("response", "响应率"), ("on_time_resolution", "按时办结率"),
    ("resolution", "解决率"), ("satisfaction", "满意率"), ("return_rate", "退单率"), ("reopen_rate", "重办率"),
    ("overdue", "超期"), ("yellow", "黄牌"), ("red", "红牌"), ("two_way", "乡镇评价好评率"), ("previous_rank", "上期排名"),
)


def table_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in doc["ranking"]:
        counts, rates = row["counts"], row["rates"]
        out.append({
            "rank": row["rank"] if row["rank"] is not None else "—", "unit": row["unit"], "name": row["name"],
            "score": row["score"] or "—", "received": counts["received"], "resolved": counts["resolved"],
            "solved": counts["solved"], **{k: rates[k] for k in ("response", "on_time_resolution", "resolution",
                                                                   "satisfaction", "return_rate", "reopen_rate")},
            "overdue": counts["overdue"], "yellow": counts["yellow"], "red": counts["red"],
            "two_way": row["two_way"]["rate"], "previous_rank": row["previous_rank"] if row["previous_rank"] is not None else "—",
        })
    return out


# A text cell starting with one of these is read as a formula by spreadsheet programs (CSV
# injection): a unit name like =HYPERLINK("http://…","点我") would become a live link.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that would start a formula gets a leading single quote, so it stays text
    (OWASP CSV injection guidance); numbers and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(doc: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([label for _, label in CSV_COLUMNS])
    for row in table_rows(doc):
        writer.writerow([spreadsheet_safe(row[key]) for key, _ in CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs then read the Chinese right


def trend_chart(doc: dict[str, Any], width: int = 560, height: int = 220) -> dict[str, Any]:
    """Points for the SVG: appeals received as bars, resolution rate (解决率) as a line."""
    trend = doc["trend"]
    left, right, top, bottom = 48, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(trend))
    most = max([t["counts"]["received"] for t in trend] + [1])
    bars, line, labels = [], [], []
    for i, t in enumerate(trend):
        x = left + step * i + step / 2
        received = t["counts"]["received"]
        bar_h = plot_h * received / most
        bars.append({"x": round(x - step * 0.3, 1), "y": round(top + plot_h - bar_h, 1), "w": round(step * 0.6, 1),
                     "h": round(bar_h, 1), "value": received})
        exact = t["rates_exact"]["resolution"]
        if exact is not None:
            num, den = (int(v) for v in exact.split("/"))
            line.append({"x": round(x, 1), "y": round(top + plot_h * (1 - num / den), 1), "value": t["rates"]["resolution"]})
        labels.append({"x": round(x, 1), "y": height - 12, "text": t["period"]})
    return {"width": width, "height": height, "left": left, "top": top, "plot_w": plot_w, "plot_h": plot_h,
            "bars": bars, "line": line, "polyline": " ".join(f"{p['x']},{p['y']}" for p in line), "labels": labels,
            "most": most}


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
)


def render_html(doc: dict[str, Any]) -> str:
    return _env.get_template("bulletin.html.j2").render(
        doc=doc, rows=table_rows(doc), columns=CSV_COLUMNS, chart=trend_chart(doc)
    )

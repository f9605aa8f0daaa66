// A small SVG chart: received appeals as bars, resolution and satisfaction rates as lines, per period.
import { h, s } from "./ui.js";

const num = (rate) => { const v = parseFloat(String(rate ?? "").replace("%", "")); return Number.isFinite(v) ? v : null; };

export function trendChart(trend) {
  if (!trend.length) return h("p", { class: "muted" }, "暂无趋势数据。");
  const W = 720, H = 240, L = 40, R = 40, T = 16, B = 40;
  const innerW = W - L - R, innerH = H - T - B;
  const step = innerW / trend.length;
  const maxCount = Math.max(1, ...trend.map((t) => t.counts?.received || 0));
  const y100 = (v) => T + innerH - (v / 100) * innerH;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "趋势图", "data-testid": "trend-chart" });
  for (const v of [0, 50, 100]) svg.append(s("line", { x1: L, x2: W - R, y1: y100(v), y2: y100(v), class: "grid" }), s("text", { x: W - R + 4, y: y100(v) + 4, class: "axis" }, `${v}%`));
  trend.forEach((t, i) => {
    const count = t.counts?.received || 0;
    const hgt = (count / maxCount) * innerH;
    const x = L + i * step;
    svg.append(s("rect", { x: x + step * 0.25, y: T + innerH - hgt, width: step * 0.5, height: hgt, class: "bar" }, s("title", {}, `${t.period} 受理 ${count}`)));
    svg.append(s("text", { x: x + step / 2, y: H - B + 16, class: "axis", "text-anchor": "middle" }, t.period));
    svg.append(s("text", { x: x + step / 2, y: T + innerH - hgt - 4, class: "axis", "text-anchor": "middle" }, String(count)));
  });
  for (const [key, cls] of [["resolution", "line-a"], ["satisfaction", "line-b"]]) {
    const pts = trend.map((t, i) => [L + i * step + step / 2, num(t.rates?.[key])]).filter(([, v]) => v !== null);
    if (pts.length) svg.append(s("polyline", { points: pts.map(([x, v]) => `${x.toFixed(1)},${y100(v).toFixed(1)}`).join(" "), class: cls }));
    for (const [x, v] of pts) svg.append(s("circle", { cx: x, cy: y100(v), r: 3, class: cls }));
  }
  return h("figure", { class: "chart-wrap" }, svg,
    h("figcaption", {}, h("span", { class: "key bar" }), "受理量 ", h("span", { class: "key line-a" }), "解决率 ", h("span", { class: "key line-b" }), "满意率"));
}

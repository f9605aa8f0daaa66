// 地图: open cases as points over the county's township and village outlines (SVG, no tiles).
import { call } from "./api.js";
import { h, s, clear, label, STATUS, SUBJECT } from "./ui.js";

export const CATEGORY_COLOURS = { "操心事": "#2f6fdf", "烦心事": "#8e44ad", "揪心事": "#e67e22", "急难事": "#d62728", "期盼事": "#2ca02c" };
const WAITING = new Set(["received", "accepted", "triaged", "returned"]);

export async function renderMap(root, _arg, ctx) {
  const holder = h("div", { class: "map-holder" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "地图"), h("span", { class: "muted", id: "map-count" })), holder);
  const refresh = async () => draw(holder, await call("/map"));
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 10000);
  ctx.onLeave(() => clearInterval(timer));
}

// Equirectangular projection, x shrunk by cos(latitude) so the county keeps its shape.
export function projector(extent, width) {
  const pad = 0.08;
  const dLat = extent.north - extent.south || 0.01;
  const dLng = extent.east - extent.west || 0.01;
  const south = extent.south - dLat * pad, north = extent.north + dLat * pad;
  const west = extent.west - dLng * pad, east = extent.east + dLng * pad;
  const k = Math.cos(((south + north) / 2) * Math.PI / 180);
  const height = width * (north - south) / ((east - west) * k);
  return { width, height, at: (lat, lng) => [((lng - west) / (east - west)) * width, ((north - lat) / (north - south)) * height] };
}

// The townships of a county lie far apart: an overview of the county, then one zoomed panel per township.
function draw(holder, doc) {
  clear(holder);
  document.getElementById("map-count").textContent = `${doc.county_name} · 在办诉求 ${doc.points.length} 件`;
  if (!doc.extent) { holder.append(h("p", { class: "muted" }, "没有可画的区域。")); return; }
  const townships = doc.areas.filter((a) => a.kind === "township");
  const panels = h("div", { class: "map-panels" },
    panel(`${doc.county_name}（全县）`, doc.extent, doc.areas, doc.points, "map"),
    townships.map((t) => {
      const inside = doc.areas.filter((a) => a.code === t.code || a.code.startsWith(`${t.code}-`));
      const extent = box(t.polygon);
      const points = doc.points.filter((p) => p.lat >= extent.south && p.lat <= extent.north && p.lng >= extent.west && p.lng <= extent.east);
      return panel(`${t.name}（${points.length} 件）`, extent, inside, points, `map-${t.code}`);
    }));
  holder.append(panels, legend());
}

const box = (polygon) => ({
  south: Math.min(...polygon.map((q) => q[0])), north: Math.max(...polygon.map((q) => q[0])),
  west: Math.min(...polygon.map((q) => q[1])), east: Math.max(...polygon.map((q) => q[1])),
});

function panel(title, extent, areas, points, testid) {
  const p = projector(extent, 600);
  const svg = s("svg", { viewBox: `0 0 600 ${p.height.toFixed(0)}`, class: "map", role: "img", "aria-label": title, "data-testid": testid });
  const path = (polygon) => "M" + polygon.map(([lat, lng]) => p.at(lat, lng).map((v) => v.toFixed(1)).join(",")).join("L") + "Z";
  for (const area of areas) svg.append(s("path", { d: path(area.polygon), class: `area ${area.kind}` }, s("title", {}, area.name)));
  for (const area of areas) {
    if (area.kind !== "township" && testid === "map") continue; // the overview names townships only
    const b = box(area.polygon);
    const [x, y] = p.at(b.north, b.west);
    svg.append(s("text", { x: x + 4, y: y + 16, class: `area-label ${area.kind}` }, area.name));
  }
  for (const pt of points) {
    const [x, y] = p.at(pt.lat, pt.lng);
    const colour = CATEGORY_COLOURS[pt.category] || "#555";
    const waiting = WAITING.has(pt.status);
    svg.append(s("a", { href: `#/case/${pt.case_id}`, "data-case-id": pt.case_id, class: "point" },
      s("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: pt.urgency === "emergency" ? 11 : 8,
        fill: waiting ? "#fff" : colour, stroke: colour, "stroke-width": waiting ? 4 : 2,
        "stroke-dasharray": pt.approximate ? "3 2" : null }),
      s("title", {}, `${pt.tracking_no} ${pt.title}\n${pt.township_name || ""} · ${label(STATUS, pt.status)} · ${pt.category || "待分类"} · ${label(SUBJECT, pt.subject_class)}${pt.approximate ? "\n（位置取自所在区域）" : ""}`)));
  }
  return h("figure", { class: "map-panel" }, h("figcaption", {}, title), svg);
}

function legend() {
  return h("div", { class: "legend" },
    Object.entries(CATEGORY_COLOURS).map(([name, colour]) => h("span", {}, h("i", { class: "dot", style: `background:${colour}` }), name)),
    h("span", {}, h("i", { class: "dot hollow" }), "待派单/待审"),
    h("span", {}, h("i", { class: "dot filled" }), "办理中"),
    h("span", {}, h("i", { class: "dot dashed" }), "位置取自所在区域（无坐标）"));
}

// 风险研判 / 民情地图: the user's area as a schematic tile map lit by its findings (未诉先办预警),
// the findings with their evidence and sentence, the trends per subject (SVG sparklines), and
// the month's proposed theme (每月一题). Everything comes from insight as the signed-in user,
// so a township sees its own places only, a centre its county.
import { call, get, post, settle } from "./api.js";
import { h, s, table, problemBox, caseLink, label, toast, when, SUBJECT } from "./ui.js";

const KIND = { rising: "数量上升", same_spot: "同一地点反复", persistent_unit: "同类问题居高不下" };
const LEVEL = { grid: "网格", village: "村（社区）", township: "乡镇", unit: "单位" };
const WARNING_STATE = { open: "待签收", acknowledged: "处置中", handled: "待销号", closed: "已办结" };
const CARD = { yellow: "黄牌", red: "红牌" };
const PLACE_LEVELS = ["township", "village", "grid"];
const RESOLUTION = { consultation: "咨询类", general: "一般类", complex: "复杂类", long_cycle: "长周期类" };
// A task item's state as insight follows it from the topic (services/insight/tasks.py STATE_AFTER).
const ITEM_STATE = { issued: "已下达", dispatched: "待签收", signed: "办理中", returned: "已退回", resolved: "待核验",
  redo: "重办", verified: "已核验", closed: "已办结" };
// What each action is called, and whether it asks for a note (处置: what was done; 退回: why).
const ACTIONS = { acknowledge: ["签收", false], handle: ["报告处置", true], close: ["销号", false], reopen: ["退回重办", true] };

export async function renderRisk(root, arg, ctx) {
  const [risk, weekly, theme] = await settle([call("/risk"), get("insight", "trends", { grain: "week", periods: 8 }), get("insight", "theme")]);
  root.append(h("div", { class: "page-head" }, h("h1", {}, "风险研判 · 民情地图"),
    risk.error ? null : h("span", { class: "muted" }, `${risk.map.root_name} · ${risk.since} 以来的预警`)));
  if (risk.error) { root.append(problemBox(risk.error)); return; }
  for (const [service, error] of Object.entries(risk.sources || {})) root.append(h("p", { class: "warn" }, `${service}：${error}`));
  root.append(
    h("div", { class: "split" }, mapSection(risk.map), themeSection(theme)),
    findingsSection(risk.findings, risk.map, risk.task_units || [], reload),
    trendsSection(weekly, ctx),
    warningsSection(risk.warnings || [], reload),
    tasksSection(risk.tasks || []));

  function reload() { root.replaceChildren(); renderRisk(root, arg, ctx); }
}

// 下派任务 (自上而下的任务): the centre turns a finding into a task, one item per unit it picks
// from the units of its area (insight checks each again). The title and instructions start
// from the finding; a department's item is about the finding's place, so its township verifies.
function taskForm(f, units, names, reload) {
  const placeOf = PLACE_LEVELS.includes(f.level) ? f.area : null;
  const title = h("input", { type: "text", name: "title", maxlength: 200, "aria-label": "任务标题",
    value: `排查${names[f.area] || f.area}${f.street || ""}${label(SUBJECT, f.subject_class)}问题` });
  const instructions = h("textarea", { name: "instructions", rows: 3, maxlength: 4000, "aria-label": "任务要求" }, f.explanation);
  const resolution = h("select", { name: "resolution_class", "aria-label": "办理时限类别" },
    Object.entries(RESOLUTION).map(([value, text]) => h("option", { value, selected: value === "general" }, text)));
  const boxes = units.map((u) => h("label", { class: "task-unit" },
    h("input", { type: "checkbox", value: u.code, "data-kind": u.kind, checked: u.code === f.unit }), ` ${u.name}`));
  const submit = async (event) => {
    event.preventDefault();
    const picked = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked);
    if (!picked.length) return toast("请至少选择一个承办单位", "error");
    const items = picked.map((i) => ({ unit: i.value, street: f.street || null,
      place: i.dataset.kind === "department" ? placeOf : null }));
    try {
      const made = await post("insight", "tasks", { finding_id: f.finding_id, title: title.value.trim(),
        instructions: instructions.value.trim(), resolution_class: resolution.value, items });
      toast(`任务 ${made.task_id} 已下派`);
      reload();
    } catch (err) {
      toast(err.message, "error");
    }
  };
  return h("form", { class: "task-form", "data-testid": "task-form", hidden: true, onsubmit: submit },
    h("label", {}, "标题 ", title), h("label", {}, "要求 ", instructions), h("label", {}, "时限类别 ", resolution),
    h("fieldset", { class: "task-units" }, h("legend", {}, "承办单位"), boxes),
    h("button", { type: "submit", "data-action": "send-task" }, "下派"));
}

// The tasks the user may read, each with its items' states: the centre sees every item, a unit its own.
function tasksSection(tasks) {
  const item = (i) => h("tr", { "data-item-unit": i.unit, "data-state": i.state },
    h("td", {}, i.unit_name), h("td", {}, i.street || "—"), h("td", { class: "state" }, label(ITEM_STATE, i.state)),
    h("td", {}, i.order_no || "—"), h("td", {}, caseLink(i.case_id, i.tracking_no)));
  return h("section", { "data-testid": "risk-tasks" }, h("h2", {}, `下派任务（${tasks.length} 项）`),
    tasks.length ? tasks.map((t) => h("div", { class: "card task", "data-task-id": t.task_id },
      h("div", {}, h("strong", {}, t.title), ` · ${label(RESOLUTION, t.resolution_class)} · 下派于 ${when(t.created_at)}`,
        h("span", { class: "task-progress" }, ` · 已办结 ${t.closed}/${t.total}`)),
      h("p", { class: "muted" }, t.instructions),
      t.items.length ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["承办单位", "地点", "状态", "工单号", "编号"].map((x) => h("th", {}, x)))),
        h("tbody", {}, t.items.map(item)))) : h("p", { class: "muted" }, "本单位在此任务中无承办事项。")))
      : h("p", { class: "muted" }, "暂无下派任务。"));
}

// 预警信息处置: the open warnings of the user's area, with the steps insight allows this user
// (its allowed_actions: the unit warned acknowledges and handles, the centre closes or sends back).
function warningsSection(warnings, reload) {
  const row = (w) => {
    const note = h("input", { type: "text", class: "warning-note", placeholder: "说明（处置情况 / 退回原因）", "aria-label": "说明" });
    const needsNote = w.allowed_actions.some((a) => ACTIONS[a]?.[1]);
    const act = async (action) => {
      const body = ACTIONS[action][1] ? { note: note.value.trim() } : undefined;
      try {
        await post("insight", `warnings/${encodeURIComponent(w.warning_id)}/${action}`, body);
        toast(`${ACTIONS[action][0]}：已完成`);
        reload();
      } catch (err) {
        toast(err.message, "error");
      }
    };
    return h("tr", { "data-warning-id": w.warning_id, "data-state": w.state },
      h("td", {}, w.unit_name), h("td", {}, label(SUBJECT, w.subject_class)), h("td", { class: "state" }, label(WARNING_STATE, w.state)),
      h("td", {}, `${w.state === "open" ? "签收" : "处置"}期限 ${when(w.due_at)}`),
      h("td", { class: `card-level ${w.card || ""}` }, w.card ? CARD[w.card] : "—"),
      h("td", {}, needsNote ? note : null, w.allowed_actions.map((a) =>
        h("button", { type: "button", "data-action": a, onclick: () => act(a) }, ACTIONS[a]?.[0] || a))));
  };
  return h("section", { class: "card", "data-testid": "risk-warnings" }, h("h2", {}, `预警处置（未办结 ${warnings.length} 条）`),
    warnings.length
      ? h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["责任单位", "类别", "状态", "期限", "亮牌", "操作"].map((t) => h("th", {}, t)))),
          h("tbody", {}, warnings.map(row))))
      : h("p", { class: "muted" }, "暂无未办结的预警。"));
}

// A tile per township, a tile per village inside it; the colour says the summed finding score.
function mapSection(map) {
  const fill = (heat) => (heat > 0 ? `rgba(214, 39, 40, ${(0.18 + 0.72 * heat).toFixed(2)})` : "#f4f6f9");
  const place = (t, kind) => h("div", {
    class: `risk-tile ${kind}${t.score > 0 ? " lit" : ""}`, "data-code": t.code, "data-score": t.score, "data-heat": t.heat,
    style: `background:${fill(t.heat)}`, title: `${t.name}：预警 ${t.findings} 条，得分合计 ${t.score}`,
  }, h("span", { class: "name" }, t.name), t.findings ? h("span", { class: "score" }, `${t.findings} 条 · ${t.score}`) : null);
  const grid = map.townships.length
    ? h("div", { class: "risk-map" }, map.townships.map((t) => h("div", { class: "risk-township" },
        place(t, "township"), h("div", { class: "risk-villages" }, t.villages.map((v) => place(v, "village"))))))
    : h("p", { class: "muted" }, "本单位不管辖地区，地图上无可显示的地区；与本单位有关的预警见下方列表。");
  return h("section", { class: "card", "data-testid": "risk-map" }, h("h2", {}, `民情地图 · ${map.root_name}`), grid,
    map.units.length ? h("p", {}, "单位预警（不在地图上）：", map.units.map((u) => `${u.name}（${label(SUBJECT, u.subject_class)}，${u.score}）`).join("；")) : null,
    h("div", { class: "legend", "data-testid": "risk-legend" },
      h("span", {}, h("span", { class: "swatch", style: `background:${fill(0)}` }), "无预警"),
      h("span", {}, h("span", { class: "swatch", style: `background:${fill(0.3)}` }), "较低"),
      h("span", {}, h("span", { class: "swatch", style: `background:${fill(1)}` }), "最高"),
      h("span", { class: "muted" }, "示意图：按乡镇→村（社区）排列的方块，不代表实际位置和面积（目录中的地区没有完整的地理边界）。颜色为该地区及其下属网格的预警得分合计，与图中同级最高者相比。")));
}

function themeSection(theme) {
  const box = h("section", { class: "card topic", "data-testid": "risk-theme" }, h("h2", {}, "每月一题（数据建议）"));
  if (theme.error) return box.appendChild(problemBox(theme.error)), box;
  const p = theme.proposal;
  if (!p) return box.appendChild(h("p", { class: "muted" }, `${theme.window_start} 至 ${theme.window_end} 暂无诉求，无建议题目。`)), box;
  box.append(h("p", { class: "theme-sentence" }, p.sentence),
    h("div", { class: "tiles" },
      h("div", { class: "tile" }, h("div", { class: "num" }, String(p.volume)), h("div", { class: "cap" }, `近${theme.window_days}个工作日`)),
      h("div", { class: "tile" }, h("div", { class: "num" }, `${p.rise}×`), h("div", { class: "cap" }, `较此前预计 ${p.expected}`)),
      h("div", { class: "tile" }, h("div", { class: "num" }, `${Math.round(p.repeat_share * 100)}%`), h("div", { class: "cap" }, "反复反映")),
      h("div", { class: "tile" }, h("div", { class: "num" }, `${Math.round(p.share * 100)}%`), h("div", { class: "cap" }, "占全部诉求"))),
    h("p", {}, "集中地点：", p.top_places.map((x) => `${x.name} ${x.appeals} 件`).join("、") || "—"),
    h("p", {}, "典型诉求：", p.sample_case_ids.map((id, i) => [i ? "、" : "", caseLink(id, id.slice(-8))])),
    h("div", {}, theme.runners_up.length ? [h("h3", {}, "其他候选"), h("ol", { "data-testid": "theme-runners-up" },
      theme.runners_up.map((c) => h("li", {}, c.sentence)))] : null));
  return box;
}

function findingsSection(findings, map, units, reload) {
  const names = map.names || {};
  const send = (f) => {
    if (!units.length) return null; // only a centre sends work down
    const form = taskForm(f, units, names, reload);
    return h("div", {}, h("button", { type: "button", "data-action": "open-task", onclick: () => { form.hidden = !form.hidden; } }, "下派任务"), form);
  };
  return h("section", { "data-testid": "risk-findings" }, h("h2", {}, `预警（${findings.length} 条）`),
    findings.length ? findings.map((f) => h("div", { class: "card finding", "data-finding-id": f.finding_id },
      h("div", {}, h("strong", {}, label(KIND, f.kind)), ` · ${label(LEVEL, f.level)} ${names[f.area] || f.area}${f.street ? " " + f.street : ""}`,
        ` · ${label(SUBJECT, f.subject_class)} · 得分 ${f.score} · 发现于 ${f.detected_on}`),
      h("p", { class: "finding-sentence" }, f.explanation),
      h("div", { class: "muted" }, `窗口 ${f.window_start} 至 ${f.window_end}：${f.count} 件（基线 ${f.baseline}）；诉求：`,
        f.case_ids.slice(0, 10).map((id, i) => [i ? "、" : "", caseLink(id, id.slice(-8))]), f.case_ids.length > 10 ? ` 等 ${f.case_ids.length} 件` : ""), send(f)))
      : h("p", { class: "muted" }, "本期无预警。"));
}

// A sparkline per subject: the counts per working-day week, the latest dot red when above expectation.
function sparkline(counts, rising) {
  const W = 120, H = 28, max = Math.max(1, ...counts), step = counts.length > 1 ? (W - 6) / (counts.length - 1) : 0;
  const pts = counts.map((c, i) => [3 + i * step, H - 3 - (c / max) * (H - 6)]);
  const [lx, ly] = pts[pts.length - 1];
  return s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "spark", role: "img", "aria-label": counts.join(",") },
    s("polyline", { points: pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ") }),
    s("circle", { cx: lx, cy: ly, r: 3, class: rising ? "up" : "" }));
}

function trendsSection(doc) {
  const head = h("h2", {}, "分类趋势（按工作周，每周5个工作日）");
  if (doc.error) return h("section", {}, head, problemBox(doc.error));
  const sign = (v) => (v > 0 ? `+${v}` : String(v));
  return h("section", { "data-testid": "risk-trends" }, head,
    h("p", { class: "muted" }, `${doc.area_name} · ${doc.periods[0].label} 至 ${doc.periods[doc.periods.length - 1].label}`),
    table([
      ["name", "类别"], ["spark", "走势", (t) => sparkline(t.counts, t.change > 0.5)], ["current", "本周"],
      ["expected", "按此前水平", (t) => t.expected.toFixed(1)], ["change", "变化", (t) => sign(t.change)],
      ["sentence", "说明", (t) => h("span", { class: "wrap" }, t.sentence)],
    ], doc.subjects, { empty: "近期无诉求。", testid: "trend-table" }));
}

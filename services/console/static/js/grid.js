// 网格: a grid's month — flagged households (困难/重点监测) and their visits, the mailbox
// (定时开箱取信), proxy services (帮办代办) — and its register (结一联十). A grid worker opens
// their own grid; village and township staff type a grid of their area (#/grid/<code>).
import { get, post, settle } from "./api.js";
import { h, clear, table, problemBox, toast, when } from "./ui.js";

const thisMonth = () => new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit" }).format(new Date());

export async function renderGrid(root, arg, ctx) {
  const grid = arg || (ctx.user.role === "grid_worker" ? ctx.user.unit : "");
  const gridInput = h("input", { value: grid, placeholder: "网格编码", "aria-label": "网格编码" });
  const monthInput = h("input", { type: "month", value: thisMonth(), "aria-label": "月份" });
  const body = h("div");
  const show = async () => {
    clear(body);
    if (!gridInput.value) { body.append(h("p", { class: "muted" }, "请输入网格编码。")); return; }
    const [duties, register] = await settle([
      get("intake", "grid/duties", { grid: gridInput.value, month: monthInput.value }),
      get("intake", "grid/register", { grid: gridInput.value }),
    ]);
    body.append(duties.error ? problemBox(duties.error) : month(duties, ctx), register.error ? problemBox(register.error) : households(register));
  };
  root.append(h("div", { class: "page-head" }, h("h1", {}, "网格职责"),
    h("form", { onsubmit: (e) => { e.preventDefault(); location.hash = `#/grid/${encodeURIComponent(gridInput.value)}`; show(); } },
      gridInput, monthInput, h("button", { type: "submit" }, "查看"))), body);
  await show();
}

function month(d, ctx) {
  const mine = ctx.user.role === "grid_worker" && ctx.user.unit === d.grid;
  const visit = (row) => mine ? h("button", { class: "link", onclick: async (e) => {
    e.currentTarget.disabled = true;
    try { await post("intake", "grid/visits", { household_ref: row.household_ref }); toast(`已记录走访 ${row.household_ref}`); }
    catch (err) { toast(err.message, "error"); }
  } }, "记录走访") : "";
  const services = Object.entries(d.proxy_services || {});
  return h("div", { "data-testid": "grid-month" },
    h("section", {}, h("h2", {}, `困难/重点监测户走访（${d.month}，每月至少一次）`), table([
      ["household_ref", "户"], ["keeper_id", "包户网格员"],
      ["flags", "类别", (r) => [r.difficult ? "困难" : "", r.monitored ? "重点监测" : ""].filter(Boolean).join("、")],
      ["visits", "本月走访"], ["missed", "", (r) => d.visits_missed.includes(r.household_ref) ? h("strong", {}, "未走访") : ""],
      ["act", "", visit],
    ], d.flagged_households, { empty: "本网格无困难或重点监测户", testid: "flagged-households" })),
    h("section", {}, h("h2", {}, "定时开箱取信"),
      h("p", {}, d.mailbox.weekdays.length ? `开箱日：每周${d.mailbox.weekdays.map((w) => "一二三四五六日"[w - 1]).join("、")}` : "尚未设定开箱时间"),
      d.mailbox.missed_days.length ? h("p", {}, h("strong", {}, `未开箱：${d.mailbox.missed_days.join("、")}`)) : null,
      table([["opened_at", "开箱时间", (r) => when(r.opened_at)], ["letters", "取信（封）"]], d.mailbox.openings, { empty: "本月无开箱记录" })),
    h("section", {}, h("h2", {}, "帮办代办"),
      services.length ? h("p", {}, services.map(([k, n]) => `${k}：${n} 件`).join("；")) : h("p", { class: "muted" }, "本月无帮办代办")));
}

function households(r) {
  return h("section", {}, h("h2", {}, `户籍台账（结一联十 · ${r.households.length} 户）`), table([
    ["household_ref", "户"], ["keeper_id", "包户网格员"], ["organiser_id", "联户长"],
    ["flags", "类别", (x) => [x.difficult ? "困难" : "", x.monitored ? "重点监测" : ""].filter(Boolean).join("、") || "—"],
  ], r.households, { empty: "台账暂无", testid: "grid-register" }));
}

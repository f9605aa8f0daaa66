// 排名与通报: this week's bulletin (一周一通报), this month's review (一月一点评), trend charts, 每月一题.
import { get, settle } from "./api.js";
import { h, clear, table, problemBox } from "./ui.js";
import { trendChart } from "./charts.js";

export async function renderBulletins(root, arg, ctx) {
  const county = arg || ctx.config.county;
  root.append(h("div", { class: "page-head" }, h("h1", {}, "排名与通报")));
  const [weekly, monthly] = await settle([get("scoring", `bulletins/${county}/weekly`), get("scoring", `bulletins/${county}/monthly`)]);
  const tabs = h("div", { class: "tabs" });
  const body = h("div");
  root.append(tabs, body);
  const show = (kind) => {
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.kind === kind);
    const doc = kind === "weekly" ? weekly : monthly;
    clear(body).append(doc.error ? problemBox(doc.error) : bulletin(doc, county, kind));
  };
  tabs.append(h("button", { class: "tab", "data-kind": "weekly", onclick: () => show("weekly") }, "本周通报"),
    h("button", { class: "tab", "data-kind": "monthly", onclick: () => show("monthly") }, "本月点评"));
  show("weekly");
}

const pct = (v) => (v === null || v === undefined ? "—" : v);

function bulletin(doc, county, kind) {
  const sum = doc.summary || {};
  const counts = sum.counts || {};
  const rates = sum.rates || {};
  const cmp = doc.compared_with_previous || {};
  const topic = doc.topic_of_the_month;
  const ranked = doc.ranking || [];
  const move = (r) => (r.previous_rank == null || r.rank == null ? "—" : r.previous_rank > r.rank ? `↑${r.previous_rank - r.rank}` : r.previous_rank < r.rank ? `↓${r.rank - r.previous_rank}` : "—");
  return h("div", { class: "bulletin", "data-testid": `bulletin-${kind}` },
    h("h2", {}, doc.title),
    h("p", { class: "muted" }, `${doc.period.from} 至 ${doc.period.until} · 权重：响应 ${doc.weights.response} / 解决 ${doc.weights.resolution} / 满意 ${doc.weights.satisfaction}（第${doc.weights.version}版）`,
      " · ", h("a", { href: `/api/scoring/bulletins/${county}/${kind}?format=csv` }, "下载 CSV"),
      " · ", h("a", { href: `/api/scoring/bulletins/${county}/${kind}?format=html`, target: "_blank" }, "打印版")),
    h("div", { class: "tiles" },
      tile("受理", counts.received ?? 0, cmp.received?.change), tile("解决率", pct(rates.resolution), cmp.resolution?.change_points),
      tile("满意率", pct(rates.satisfaction), cmp.satisfaction?.change_points), tile("响应率", pct(rates.response), cmp.response?.change_points),
      tile("超期", counts.overdue ?? 0, cmp.overdue?.change)),
    h("section", { class: "card topic", "data-testid": "topic-of-the-month" }, h("h3", {}, "每月一题"),
      topic ? h("p", {}, `${topic.month}：${topic.name}（${topic.appeals} 件诉求最多），列为本月重点攻坚题目。`) : h("p", { class: "muted" }, "本月尚无诉求。")),
    h("section", {}, h("h3", {}, "趋势"), trendChart(doc.trend || [])),
    h("section", {}, h("h3", {}, "综合排名"), table([
      ["rank", "排名", (r) => r.rank ?? "—"], ["name", "单位"], ["score", "综合得分", (r) => r.score ?? "—"],
      ["received", "受理", (r) => r.counts.received], ["response", "响应率", (r) => r.rates.response ?? "—"],
      ["resolution", "解决率", (r) => r.rates.resolution ?? "—"], ["satisfaction", "满意率", (r) => r.rates.satisfaction ?? "—"],
      ["overdue", "超期", (r) => r.counts.overdue], ["two_way", "乡镇好评率", (r) => r.two_way?.rate ?? "—"], ["move", "较上期", move],
    ], ranked, { empty: "本期尚无可排名的单位。", testid: "ranking" })),
    h("section", {}, h("h3", {}, "超期交办单"), table([
      ["order_no", "交办单"], ["tracking_no", "诉求"], ["name", "单位"], ["due_at", "期限"], ["resolved", "已办结", (r) => (r.resolved ? "是" : "否")],
    ], doc.overdue || [], { empty: "本期无超期。" })));
}

function tile(title, value, change) {
  return h("div", { class: "tile" }, h("div", { class: "num" }, String(value)), h("div", { class: "cap" }, title),
    change !== undefined && change !== null ? h("div", { class: "delta" }, `较上期 ${typeof change === "number" && change > 0 ? "+" : ""}${change}`) : null);
}

// The citizen's page: the rating link (/citizen/rate) and the look-up with an SMS code
// (/citizen/lookup). Text is set with textContent only; nothing leaves for another site.
"use strict";

const REFUSED = {
  "rating-token-used": "此评价链接已使用过。每个链接只能评价一次，感谢您的参与！",
  "already-rated": "本次办理已评价过，感谢您的参与！",
  "rating-token-expired": "此评价链接已过期。如需反映意见，请拨打12345热线。",
  "rating-token-stale": "您的诉求已重新办理，此链接已失效；办结后您将收到新的评价链接。",
  "rating-token-invalid": "此评价链接无效，请核对短信中的链接。",
};

const $ = (id) => document.getElementById(id);
const show = (el, on = true) => { el.hidden = !on; };
const slug = (problem) => (problem && problem.type ? problem.type.split("/").pop() : "");

async function call(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "omit", referrerPolicy: "no-referrer",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function refuse(problem) {
  show($("rate-loading"), false);
  show($("rate-case"), false);
  const box = $("rate-refused");
  box.textContent = REFUSED[slug(problem)] || "暂时无法打开评价，请稍后再试。";
  show(box);
}

async function openRating() {
  show($("rate"));
  const params = new URLSearchParams(location.search);
  const caseId = params.get("case");
  const token = params.get("token");
  if (!caseId || !token) { refuse({ type: "rating-token-invalid" }); return; }
  const got = await call("GET", `/api/v1/citizen/rating?case=${encodeURIComponent(caseId)}&token=${encodeURIComponent(token)}`);
  if (!got.ok) { refuse(got.data); return; }
  const view = got.data;
  document.querySelector('[data-testid="tracking-no"]').textContent = view.tracking_no || "—";
  document.querySelector('[data-testid="phone"]').textContent = view.phone_masked || "—";
  document.querySelector('[data-testid="answer"]').textContent = view.answer || "—";
  document.querySelector('[data-testid="summary"]').textContent = view.public_summary || "—";
  show($("rate-loading"), false);
  show($("rate-case"));
  $("rate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = document.querySelector('input[name="rating"]:checked');
    if (!chosen) { $("rate-error").textContent = "请选择满意、基本满意或不满意"; show($("rate-error")); return; }
    $("rate-submit").disabled = true;
    const comment = $("comment").value.trim();
    const sent = await call("POST", `/api/v1/cases/${encodeURIComponent(caseId)}/rating`,
      { token, rating: chosen.value, comment: comment || null });
    if (sent.ok) { show($("rate-case"), false); show($("rate-thanks")); return; }
    if (REFUSED[slug(sent.data)]) { refuse(sent.data); return; }
    $("rate-submit").disabled = false;
    $("rate-error").textContent = "提交未成功，请稍后再试。";
    show($("rate-error"));
  });
}

function openLookup() {
  show($("lookup"));
  $("code-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const trackingNo = $("tracking-no").value.trim();
    const sent = await call("POST", "/api/v1/citizen/lookup/code", { tracking_no: trackingNo });
    const note = $("code-note");
    if (sent.ok) {
      note.textContent = `${sent.data.detail}（${sent.data.expires_in_minutes}分钟内有效）`;
      show($("lookup-form"));
    } else if (sent.status === 429) {
      note.textContent = sent.data.detail;
      show($("lookup-form"));
    } else {
      note.textContent = "请核对诉求编号（短信中“编号”后的内容）。";
    }
    show(note);
  });
  $("lookup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const got = await call("POST", "/api/v1/citizen/lookup", { tracking_no: $("tracking-no").value.trim(), code: $("code").value.trim() });
    const error = $("lookup-error");
    if (!got.ok) {
      const left = got.data && got.data.tries_left ? `，还可尝试${got.data.tries_left}次` : "";
      error.textContent = (got.data && got.data.detail ? got.data.detail : "查询未成功，请稍后再试") + left;
      show(error);
      return;
    }
    show(error, false);
    const view = got.data;
    document.querySelector('[data-testid="result-tracking-no"]').textContent = view.tracking_no;
    document.querySelector('[data-testid="result-phone"]').textContent = view.phone_masked || "—";
    document.querySelector('[data-testid="result-status"]').textContent = view.status_label || "—";
    document.querySelector('[data-testid="result-answer"]').textContent = view.answer || "—";
    const list = $("timeline");
    list.replaceChildren();
    for (const entry of view.timeline) {
      const item = document.createElement("li");
      const when = document.createElement("time");
      when.textContent = new Date(entry.occurred_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
      const label = document.createElement("div");
      label.textContent = entry.label;
      item.append(when, label);
      if (entry.detail) {
        const detail = document.createElement("div");
        detail.className = "detail";
        detail.textContent = entry.detail;
        item.append(detail);
      }
      list.append(item);
    }
    show($("lookup-form"), false);
    show($("result"));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (location.pathname.endsWith("/rate")) openRating(); else openLookup();
});

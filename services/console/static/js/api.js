// The console backend: sign-in, the board, and the services' APIs forwarded as the signed-in user.

export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || "error");
    this.problem = problem;
    this.status = problem.status;
  }
}

export async function call(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET") {
    init.headers["X-Console"] = "1"; // the CSRF guard: a cross-site form cannot send it
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let answer;
  try {
    answer = await fetch(path, init);
  } catch (err) {
    throw new ApiError({ status: 0, title: "网络错误", detail: String(err) });
  }
  const text = await answer.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!answer.ok) throw new ApiError({ status: answer.status, title: answer.statusText, ...(data || {}) });
  return data;
}

// GET /api/<service>/<path> and POST the same: the backend adds the user's identity.
export const get = (service, path, params) => call(`/api/${service}/${path}${params ? "?" + new URLSearchParams(params) : ""}`);
// ifMatch: the version the user saw; the service answers 409 when someone acted in between.
export const post = (service, path, body, ifMatch) =>
  call(`/api/${service}/${path}`, { method: "POST", body, headers: ifMatch != null ? { "If-Match": String(ifMatch) } : {} });
// Several reads at once; a failing one gives {error} instead of failing the page.
export async function settle(promises) {
  const results = await Promise.allSettled(promises);
  return results.map((r) => (r.status === "fulfilled" ? r.value : { error: r.reason?.problem || { detail: String(r.reason) } }));
}

"use strict";
// The live progress page. It holds no data of its own: it asks GET /api/progress as the signed-in caller and
// shows what that answers, so it sees exactly the tenants the caller may read.
//
// Credentials: in Azure, App Service Authentication keeps a session cookie that the same-origin requests below
// carry. Locally, a bearer token arrives in the URL fragment (#token=..., which browsers never send to a server
// or put in a Referer) or is pasted; it is kept in this tab's sessionStorage, removed from the address bar at
// once, and sent only to this origin in the Authorization header. An optional function key (#key=...) is sent
// as x-functions-key for apps that require one.
(() => {
  const TOKEN_KEY = "intuneBackup.progress.token";
  const FUNCTION_KEY = "intuneBackup.progress.functionKey";
  const ACTIVE = new Set(["queued", "running"]);
  // Poll quickly while something moves, back off while nothing does, and further still on errors.
  const ACTIVE_DELAY_MS = 1500;
  const IDLE_MAX_DELAY_MS = 30000;
  const ERROR_MAX_DELAY_MS = 60000;
  const KIND_LABELS = {
    "policy.capture": "Policy snapshot",
    "backupset.capture": "Backup set",
    "backupset.add_items": "Add to backup set",
    "restore.preview": "Restore preview",
    "restore.execute": "Restore",
  };

  // This page is served at <api>/progress/page, so the API root is one level up.
  const apiRoot = new URL("..", window.location.href);
  const elements = {
    summary: document.getElementById("summary"),
    signIn: document.getElementById("sign-in"),
    signOut: document.getElementById("sign-out"),
    login: document.getElementById("easy-auth-login"),
    form: document.getElementById("token-form"),
    input: document.getElementById("token-input"),
    error: document.getElementById("error"),
    empty: document.getElementById("empty"),
    runs: document.getElementById("runs"),
  };
  const rows = new Map();
  let tenantNames = new Map();
  let tenantsLoaded = false;
  let delayMs = ACTIVE_DELAY_MS;
  let errorDelayMs = ACTIVE_DELAY_MS;
  let timer = null;
  let inFlight = false;

  function takeCredentialsFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    let changed = false;
    for (const [name, storageKey] of [["token", TOKEN_KEY], ["key", FUNCTION_KEY]]) {
      const value = fragment.get(name);
      if (value) {
        sessionStorage.setItem(storageKey, value);
        fragment.delete(name);
        changed = true;
      }
    }
    if (changed) {
      const rest = fragment.toString();
      history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
    }
  }

  function headers() {
    const result = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    const functionKey = sessionStorage.getItem(FUNCTION_KEY);
    if (token) result.Authorization = "Bearer " + token;
    if (functionKey) result["x-functions-key"] = functionKey;
    return result;
  }

  class ApiError extends Error {
    constructor(status, retryAfterSeconds) {
      super("HTTP " + status);
      this.status = status;
      this.retryAfterSeconds = retryAfterSeconds;
    }
  }

  async function getJson(relative) {
    const url = new URL(relative, apiRoot);
    if (url.origin !== window.location.origin) {
      throw new Error("refusing to send credentials to another origin");
    }
    const response = await fetch(url, {
      headers: headers(), credentials: "same-origin", cache: "no-store", redirect: "error",
    });
    if (!response.ok) {
      const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
      throw new ApiError(response.status, Number.isFinite(retryAfter) ? retryAfter : null);
    }
    return response.json();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function countsText(counts) {
    const c = counts || {};
    return (c.total || 0) + " done: " + (c.succeeded || 0) + " succeeded, " + (c.failed || 0) + " failed, "
      + (c.skipped || 0) + " skipped";
  }

  function rowKey(entry) {
    return entry.tenantId + "/" + entry.runId;
  }

  function runPath(entry) {
    return "tenants/" + encodeURIComponent(entry.tenantId) + "/runs/" + encodeURIComponent(entry.runId);
  }

  function buildRow(entry) {
    const item = el("li", "run");
    item.dataset.runId = entry.runId;
    item.dataset.tenantId = entry.tenantId;
    const head = el("div", "run-head");
    const title = el("span", "run-title");
    const tenant = el("span", "run-tenant");
    const id = el("span", "run-id", entry.runId);
    const status = el("span", "status");
    head.append(title, tenant, id, status);
    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    const fill = el("div", "fill");
    bar.append(fill);
    const facts = el("div", "run-facts");
    const counts = el("span", "counts");
    const percent = el("span", "percent");
    const times = el("span", "times");
    const link = el("a", "details-link", "Details");
    link.href = "#run=" + encodeURIComponent(rowKey(entry));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      toggleDetails(item, entry);
    });
    facts.append(percent, counts, times, link);
    item.append(head, bar, facts);
    item.parts = { title, tenant, status, bar, fill, counts, percent, times };
    return item;
  }

  function updateRow(item, entry) {
    const p = item.parts;
    item.dataset.status = entry.status;
    p.title.textContent = KIND_LABELS[entry.kind] || entry.kind;
    p.tenant.textContent = tenantNames.get(entry.tenantId) || entry.tenantId;
    p.status.textContent = entry.status;
    p.status.className = "status status-" + entry.status.replace(/[^a-z]/g, "");
    const known = typeof entry.percent === "number";
    item.dataset.percent = known ? String(entry.percent) : "";
    p.bar.classList.toggle("indeterminate", !known);
    p.fill.style.width = known ? Math.max(0, Math.min(100, entry.percent)) + "%" : "";
    if (known) p.bar.setAttribute("aria-valuenow", String(entry.percent));
    else p.bar.removeAttribute("aria-valuenow");
    p.percent.textContent = known ? entry.percent + "%" : "in progress";
    p.counts.textContent = countsText(entry.counts);
    p.times.textContent = "started " + formatTime(entry.createdAt)
      + (entry.finishedAt ? ", finished " + formatTime(entry.finishedAt) : "");
    if (item.details && item.dataset.detailsStatus !== entry.status) loadDetails(item, entry);
  }

  function toggleDetails(item, entry) {
    if (item.details) {
      item.details.remove();
      item.details = null;
      return;
    }
    item.details = el("div", "details", "Loading\u2026");
    item.append(item.details);
    loadDetails(item, entry);
  }

  async function loadDetails(item, entry) {
    item.dataset.detailsStatus = entry.status;
    try {
      const [run, items] = await Promise.all([
        getJson(runPath(entry)), getJson(runPath(entry) + "/items?top=50"),
      ]);
      if (!item.details) return;
      const box = el("div", "details");
      const facts = [
        ["Run", run.id], ["Kind", run.kind], ["Status", run.status],
        ["Started by", run.createdBy && (run.createdBy.name || run.createdBy.id)],
        ["Created", formatTime(run.createdAt)], ["Started", formatTime(run.startedAt)],
        ["Finished", formatTime(run.finishedAt)],
        ["Failure", run.failure ? run.failure.code + ": " + run.failure.message : ""],
      ];
      const list = el("table", "facts");
      for (const [name, value] of facts) {
        if (!value) continue;
        const row = el("tr");
        row.append(el("th", null, name), el("td", null, value));
        list.append(row);
      }
      box.append(list);
      const outcomes = el("table", "items");
      const header = el("tr");
      for (const name of ["Item", "Type", "Action", "Status", "Error"]) header.append(el("th", null, name));
      outcomes.append(header);
      for (const outcome of items.items || []) {
        const row = el("tr");
        row.append(el("td", null, outcome.displayName || outcome.sourceId || outcome.itemId),
          el("td", null, outcome.policyType), el("td", null, outcome.action), el("td", null, outcome.status),
          el("td", null, outcome.error ? outcome.error.code : ""));
        outcomes.append(row);
      }
      box.append(outcomes);
      const api = el("p", null, "API: ");
      api.append(el("code", null, new URL(runPath(entry), apiRoot).href));
      box.append(api);
      item.details.replaceWith(box);
      item.details = box;
    } catch (error) {
      if (item.details) item.details.textContent = "Could not load the details (" + error.message + ").";
    }
  }

  function render(entries) {
    const seen = new Set();
    let previous = null;
    for (const entry of entries) {
      const key = rowKey(entry);
      seen.add(key);
      let item = rows.get(key);
      if (!item) {
        item = buildRow(entry);
        rows.set(key, item);
      }
      updateRow(item, entry);
      // Keep the server's order (newest first) without rebuilding rows, so open details stay open.
      const expectedPosition = previous ? previous.nextSibling : elements.runs.firstChild;
      if (expectedPosition !== item) elements.runs.insertBefore(item, expectedPosition);
      previous = item;
    }
    for (const [key, item] of rows) {
      if (!seen.has(key)) {
        item.remove();
        rows.delete(key);
      }
    }
    elements.empty.hidden = entries.length > 0;
  }

  async function loadTenantNames(entries) {
    const unknown = entries.some((entry) => !tenantNames.has(entry.tenantId));
    if (tenantsLoaded && !unknown) return;
    try {
      const tenants = await getJson("tenants");
      tenantNames = new Map((tenants.items || []).map((t) => [t.tenantId, t.displayName]));
    } catch (error) {
      // Names are a nicety: the ids are shown instead.
    }
    tenantsLoaded = true;
  }

  function showSignIn(show) {
    elements.signIn.hidden = !show;
    elements.signOut.hidden = show || !sessionStorage.getItem(TOKEN_KEY);
  }

  function schedule(ms) {
    clearTimeout(timer);
    // Nobody is looking at a hidden tab: poll it rarely (it catches up when shown again).
    if (document.hidden) ms = Math.max(ms, IDLE_MAX_DELAY_MS);
    timer = setTimeout(poll, ms);
    elements.summary.dataset.nextPollMs = String(ms);
  }

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      const progress = await getJson("progress");
      const entries = progress.items || [];
      await loadTenantNames(entries);
      render(entries);
      showSignIn(false);
      elements.error.hidden = true;
      const active = entries.filter((entry) => ACTIVE.has(entry.status)).length;
      elements.summary.textContent = active + " active, " + (entries.length - active)
        + " finished in the last hour \u00b7 updated " + new Date().toLocaleTimeString();
      delayMs = active > 0 ? ACTIVE_DELAY_MS : Math.min(delayMs * 2, IDLE_MAX_DELAY_MS);
      errorDelayMs = ACTIVE_DELAY_MS;
      schedule(delayMs);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        // No session, or the token expired: drop it and wait for a new one.
        sessionStorage.removeItem(TOKEN_KEY);
        render([]);
        elements.empty.hidden = true;
        elements.summary.textContent = "Not signed in.";
        showSignIn(true);
        clearTimeout(timer);
        return;
      }
      errorDelayMs = Math.min(errorDelayMs * 2, ERROR_MAX_DELAY_MS);
      const waitMs = Math.max(errorDelayMs, ((error.retryAfterSeconds) || 0) * 1000);
      elements.error.textContent = "Could not refresh (" + error.message + "); retrying in "
        + Math.round(waitMs / 1000) + " s.";
      elements.error.hidden = false;
      schedule(waitMs);
    } finally {
      inFlight = false;
    }
  }

  elements.login.href = "/.auth/login/aad?post_login_redirect_uri="
    + encodeURIComponent(window.location.pathname);
  elements.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = elements.input.value.trim();
    elements.input.value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    delayMs = ACTIVE_DELAY_MS;
    poll();
  });
  elements.signOut.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(FUNCTION_KEY);
    tenantNames = new Map();
    tenantsLoaded = false;
    poll();
  });
  document.addEventListener("visibilitychange", () => {
    // Catch up at once when the tab comes back instead of waiting out a long idle delay.
    if (document.visibilityState === "visible") {
      delayMs = ACTIVE_DELAY_MS;
      poll();
    }
  });
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(window.location.hash.slice(1)).has("token")) {
      takeCredentialsFromFragment();
      delayMs = ACTIVE_DELAY_MS;
      poll();
    }
  });

  takeCredentialsFromFragment();
  poll();
})();

// Loop dashboard enhancements. Every page reads and works without this file; it adds the
// theme switch, keyboard shortcuts on lists, filters that apply on change, and live updates
// (the server's event stream says something changed; the page re-reads itself).
(() => {
  "use strict";
  const root = document.documentElement;

  // Theme: remembered in a cookie so the server renders the page in it (no flash).
  document.addEventListener("click", (e) => {
    if (!e.target.closest("button.theme")) return;
    const current = root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = current === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    document.cookie = `loop_theme=${next}; Path=/; Max-Age=31536000; SameSite=Strict`;
  });

  // Lists: a click anywhere on a row opens it; j/k move, Enter opens, / searches.
  const rows = () => [...document.querySelectorAll("tr[data-href]")];
  let selected = -1;
  function select(i) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, n) => r.classList.toggle("selected", n === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input, select, form")) location.href = row.dataset.href;
  });
  document.addEventListener("keydown", (e) => {
    if (e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.target.closest("input, textarea, select")) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.key === "/") {
      const search = document.querySelector('[data-shortcut="/"]');
      if (search) {
        e.preventDefault();
        search.focus();
        search.select();
      }
    } else if (e.key === "j") {
      select(selected + 1);
    } else if (e.key === "k") {
      select(selected - 1);
    } else if (e.key === "Enter" && selected >= 0 && rows()[selected]) {
      location.href = rows()[selected].dataset.href;
    }
  });

  // Filters apply as soon as one changes, and leave the unused ones out of the URL.
  document.addEventListener("change", (e) => {
    if (e.target.matches("form.filters select")) e.target.form.requestSubmit();
  });
  document.addEventListener("submit", (e) => {
    if (!e.target.matches("form.filters")) return;
    for (const field of e.target.elements) if (field.name && field.value === "") field.disabled = true;
  });

  // Live updates.
  const after = document.body.dataset.liveAfter;
  if (after === undefined || !window.EventSource) return;
  const badge = document.querySelector(".live");
  const source = new EventSource("/events?after=" + encodeURIComponent(after));
  source.addEventListener("open", () => badge && (badge.dataset.state = "on"));
  source.addEventListener("error", () => badge && (badge.dataset.state = "off"));
  // Close the stream before the browser leaves the page, so it never holds a connection that
  // the next page needs.
  addEventListener("pagehide", () => source.close());
  let timer = null;
  let lastRefresh = 0;
  source.addEventListener("change", () => {
    clearTimeout(timer);
    // Coalesce bursts, and refresh at most about once a second under steady traffic.
    const wait = Math.max(250, 1000 - (Date.now() - lastRefresh));
    timer = setTimeout(refresh, wait);
  });

  // Someone typing in a form on this page must not lose their text to a refresh.
  function busy() {
    const active = document.activeElement;
    if (active && active.closest("#main") && active.matches("input, textarea, select")) return true;
    return [...document.querySelectorAll("#main textarea, #main input[type=text]")].some(
      (t) => t.value !== t.defaultValue,
    );
  }

  async function refresh() {
    if (busy()) {
      timer = setTimeout(refresh, 2000);
      return;
    }
    lastRefresh = Date.now();
    const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!response.ok || response.redirected) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("main");
    const main = document.getElementById("main");
    if (!fresh || !main || busy()) return;
    main.replaceWith(fresh);
    document.title = page.title;
    if (selected >= 0) select(selected);
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
})();

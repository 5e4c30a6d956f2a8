/* Loop feedback widget. Embed with:
 *   <script src="https://loop.example.com/widget.js" data-token="loopk_…" data-project="…" async></script>
 * The token must be an ingest token whose allowed origins include this site. No dependencies. */
(function () {
  var me = document.currentScript;
  if (!me || window.__loopFeedback) return;
  window.__loopFeedback = true;
  var token = me.getAttribute("data-token") || "";
  var project = me.getAttribute("data-project") || "";
  var endpoint = new URL("/api/widget/feedback", me.src).href;
  var kinds = [["bug", "Bug report"], ["feature", "Feature request"], ["friction", "Something was hard"], ["general", "General feedback"]];

  function dark() {
    var root = document.documentElement;
    var attr = (root.getAttribute("data-theme") || root.className || "").toLowerCase();
    if (/\bdark\b/.test(attr)) return true;
    if (/\blight\b/.test(attr)) return false;
    var scheme = getComputedStyle(root).colorScheme || "";
    if (scheme.indexOf("dark") === 0) return true;
    return !!(window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches);
  }

  var css =
    "#loop-fb{position:fixed;right:16px;bottom:16px;z-index:2147483647;font:14px/1.4 system-ui,sans-serif;color:var(--fg)}" +
    "#loop-fb{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0969da}" +
    "#loop-fb.dark{--bg:#161b22;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--accent:#4493f8}" +
    "#loop-fb button{font:inherit;cursor:pointer;border-radius:6px}" +
    "#loop-fb .open{background:var(--accent);color:#fff;border:0;padding:8px 14px;box-shadow:0 2px 8px rgba(0,0,0,.25)}" +
    "#loop-fb form{display:none;width:300px;background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px;box-shadow:0 4px 16px rgba(0,0,0,.25)}" +
    "#loop-fb.shown form{display:block}#loop-fb.shown .open{display:none}" +
    "#loop-fb label{display:block;margin:8px 0 2px;color:var(--muted);font-size:12px}" +
    "#loop-fb select,#loop-fb textarea,#loop-fb input{box-sizing:border-box;width:100%;font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:6px}" +
    "#loop-fb textarea{height:90px;resize:vertical}" +
    "#loop-fb .row{display:flex;gap:8px;justify-content:flex-end;margin-top:10px}" +
    "#loop-fb .send{background:var(--accent);color:#fff;border:0;padding:6px 12px}" +
    "#loop-fb .cancel{background:none;color:var(--muted);border:1px solid var(--line);padding:6px 12px}" +
    "#loop-fb .status{margin-top:8px;font-size:13px}#loop-fb .status.error{color:#cf222e}";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function mount() {
    var style = el("style", {}, css);
    var box = el("div", { id: "loop-fb", role: "complementary", "aria-label": "Send feedback" });
    if (dark()) box.className = "dark";
    var open = el("button", { type: "button", "class": "open" }, "Feedback");
    var form = el("form", { novalidate: "" });
    var kind = el("select", { name: "kind", id: "loop-fb-kind" });
    kinds.forEach(function (k) { kind.appendChild(el("option", { value: k[0] }, k[1])); });
    var message = el("textarea", { name: "message", id: "loop-fb-message", maxlength: "5000", required: "" });
    var email = el("input", { name: "email", id: "loop-fb-email", type: "email", maxlength: "200", placeholder: "Optional, if you want a reply" });
    var status = el("div", { "class": "status", role: "status", "aria-live": "polite" });
    var send = el("button", { type: "submit", "class": "send" }, "Send");
    var cancel = el("button", { type: "button", "class": "cancel" }, "Close");
    var row = el("div", { "class": "row" });
    row.appendChild(cancel);
    row.appendChild(send);
    form.appendChild(el("label", { "for": "loop-fb-kind" }, "What is it?"));
    form.appendChild(kind);
    form.appendChild(el("label", { "for": "loop-fb-message" }, "Tell us"));
    form.appendChild(message);
    form.appendChild(el("label", { "for": "loop-fb-email" }, "Email"));
    form.appendChild(email);
    form.appendChild(row);
    form.appendChild(status);
    box.appendChild(open);
    box.appendChild(form);
    document.head.appendChild(style);
    document.body.appendChild(box);

    function say(text, error) {
      status.textContent = text;
      status.className = "status" + (error ? " error" : "");
    }
    open.addEventListener("click", function () { box.classList.add("shown"); say(""); message.focus(); });
    cancel.addEventListener("click", function () { box.classList.remove("shown"); open.focus(); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!message.value.trim()) { say("Please write something first.", true); return; }
      send.disabled = true;
      say("Sending…");
      var body = { token: token, projectId: project || null, kind: kind.value, message: message.value,
                   email: email.value || null, pageUrl: location.href, userAgent: navigator.userAgent };
      // text/plain keeps this a simple request: no preflight.
      fetch(endpoint, { method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body) })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, j: j }; });
        })
        .then(function (r) {
          if (r.ok) { message.value = ""; say("Thanks! Your feedback was sent."); }
          else say((r.j && r.j.error) || "Sorry, it could not be sent.", true);
        })
        .catch(function () { say("Sorry, it could not be sent.", true); })
        .then(function () { send.disabled = false; });
    });
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();

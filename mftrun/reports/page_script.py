"""The one inline script of a big run's report.html: status filter and search for the table.

Static text (no report data is ever put in it), so the page's content-security
policy can allow exactly this script by its SHA-256 and nothing else: report
text stays inert even if it managed to look like a script tag. Without the
script (JavaScript off, a mail preview) the page is complete; only the filter
bar stays hidden.
"""

from __future__ import annotations

import base64
import hashlib

SCRIPT = """
(() => {
  "use strict";
  const bar = document.getElementById("filters");
  if (!bar) return;
  const rows = Array.from(document.querySelectorAll("tr.step-row"));
  const details = new Map();
  document.querySelectorAll("tr.step-detail").forEach((d) => details.set(d.dataset.detailFor, d));
  const groups = Array.from(document.querySelectorAll("details.step-group"));
  const initial = new Map(groups.map((g) => [g, g.open]));
  const search = document.getElementById("step-search");
  const status = document.getElementById("status-filter");
  const count = document.getElementById("filter-count");
  const words = rows.map((r) => (r.textContent + " " + (r.dataset.find || "")).toLowerCase());
  const wanted = (chosen, st) =>
    chosen === "all" || (chosen === "problems" ? st !== "success" : st === chosen);
  function apply() {
    const query = search.value.trim().toLowerCase();
    const chosen = status.value;
    const active = query !== "" || chosen !== "all";
    let shown = 0;
    rows.forEach((row, i) => {
      const ok = wanted(chosen, row.dataset.status) && (query === "" || words[i].includes(query));
      row.hidden = !ok;
      const detail = details.get(row.dataset.step);
      if (detail) detail.hidden = !ok;
      if (ok) shown += 1;
    });
    groups.forEach((g) => {
      const any = g.querySelector("tr.step-row:not([hidden])") !== null;
      g.hidden = active && !any;
      g.open = active ? any : initial.get(g);
    });
    document.querySelectorAll("table.steps").forEach((t) => {
      t.hidden = active && t.querySelector("tr.step-row:not([hidden])") === null;
    });
    const total = rows.length + " steps";
    count.textContent = active ? shown + " of " + total + " shown" : total;
  }
  let timer = 0;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 120); });
  status.addEventListener("change", apply);
  bar.hidden = false;
  apply();
})();
"""

# For the page's Content-Security-Policy: `script-src 'sha256-...'` allows this script only.
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

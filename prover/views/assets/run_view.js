// The run browser: reads the JSON in #run-data (see prover.views.report.run_page_data) and lists
// every theorem of the run, sortable by any column, filtered by status and by a search over
// names and errors, each linked to its tree page. Text from the run reaches the page only
// through textContent and attribute setters, never as HTML.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const STATUS_ORDER = ["proved", "rejected", "open", "failed", "error"];

  function el(tag, cls, text) {
    const x = document.createElement(tag);
    if (cls) x.className = cls;
    if (text !== undefined && text !== null) x.textContent = text;
    return x;
  }
  function pct(x) { return (100 * x).toFixed(1) + "%"; }
  function fmtTime(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
    if (s < 600) return s.toFixed(2) + " s";
    return (s / 60).toFixed(1) + " min";
  }
  function oneLine(text) { return text.replace(/\s+/g, " ").trim(); }

  // ---- header -------------------------------------------------------------------------
  document.getElementById("run-name").textContent = "Run " + data.name;
  document.getElementById("run-path").textContent = data.path;
  const figures = document.getElementById("figures");
  const rate = el("span", "big", pct(data.pass_rate));
  rate.id = "pass-rate";
  const rateBox = el("span");
  rateBox.append(rate, el("span", "muted", " pass rate (95% interval " + pct(data.pass_rate_ci[0]) + "–" +
                          pct(data.pass_rate_ci[1]) + ")"));
  figures.append(rateBox);
  figures.append(el("span", "", data.num_finished + " of " + data.num_theorems + " theorems finished"));
  STATUS_ORDER.concat(Object.keys(data.counts).filter(function (s) { return STATUS_ORDER.indexOf(s) < 0; }))
    .forEach(function (s) { if (data.counts[s]) figures.append(el("span", "", data.counts[s] + " " + s)); });
  if (data.num_unfinished) figures.append(el("span", "muted", data.num_unfinished + " not yet run"));
  figures.append(el("span", "muted", "search time " + fmtTime(data.total_search_time_s) + " summed over theorems"));
  if (data.time_split) {
    const split = el("span", "muted", "policy " + fmtTime(data.time_split.policy_s) + " · Lean " +
                     fmtTime(data.time_split.env_s) + " · engine " + fmtTime(data.time_split.engine_s));
    split.id = "time-split";
    split.title = "where the search time went, summed over theorems";
    figures.append(split);
  }
  if (data.session_wall_time_s !== null && data.session_wall_time_s !== undefined)
    figures.append(el("span", "muted", "last session took " + fmtTime(data.session_wall_time_s)));
  const settings = document.getElementById("settings-table");
  const provenance = Object.keys(data.provenance).map(function (k) { return [k, data.provenance[k]]; });
  if (!data.settings.length && !provenance.length) document.getElementById("settings").hidden = true;
  data.settings.concat(provenance).forEach(function (kv) {
    const tr = el("tr");
    tr.append(el("td", "", kv[0]), el("td", "", kv[1]));
    settings.append(tr);
  });

  // ---- the table ----------------------------------------------------------------------
  // Row fields: [theorem, status, stop_reason, proof_length, expansions, tactics, states, time_s, error, page,
  //              policy_time_s, lean_time_s]
  const COLUMNS = [
    { key: 0, title: "theorem", type: "text" },
    { key: 1, title: "status", type: "status" },
    { key: 3, title: "proof length", type: "num" },
    { key: 4, title: "expansions", type: "num" },
    { key: 5, title: "tactics", type: "num", wide: true },
    { key: 6, title: "states", type: "num", wide: true },
    { key: 7, title: "search time", type: "num" },
    { key: 10, title: "policy", type: "num", wide: true },
    { key: 11, title: "Lean", type: "num", wide: true },
    { key: 2, title: "stopped", type: "text", wide: true },
    { key: 8, title: "error", type: "text", wide: true },
  ];
  const rows = data.rows.map(function (r, i) {
    const tr = el("tr");
    tr.dataset.status = r[1];
    const name = el("td", "name");
    if (r[9]) {
      const a = el("a", "", oneLine(r[0]));
      a.setAttribute("href", r[9]);
      name.append(a);
    } else {
      name.append(el("span", "", oneLine(r[0])));
      name.title = "no tree was saved for this theorem";
    }
    const status = el("td");
    status.append(el("span", "badge st-" + r[1], r[1]));
    tr.append(name, status,
              el("td", "num", r[3] === null ? "–" : String(r[3])),
              el("td", "num", String(r[4])),
              el("td", "num wide", String(r[5])),
              el("td", "num wide", String(r[6])),
              el("td", "num", fmtTime(r[7])),
              el("td", "num wide", fmtTime(r[10])),
              el("td", "num wide", fmtTime(r[11])),
              el("td", "wide", r[2]),
              el("td", "err wide", r[8] ? oneLine(r[8]).slice(0, 300) : ""));
    return { tr: tr, r: r, index: i, text: (r[0] + "\n" + r[8]).toLowerCase() };
  });

  const head = document.getElementById("columns");
  let sortKey = null, sortDir = 1;
  COLUMNS.forEach(function (c) {
    const th = el("th", (c.type === "num" ? "num" : "") + (c.wide ? " wide" : ""), c.title);
    th.tabIndex = 0;
    th.dataset.key = c.key;
    const activate = function () {
      sortDir = sortKey === c.key ? -sortDir : 1;
      sortKey = c.key;
      head.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      sort(c);
    };
    th.addEventListener("click", activate);
    th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(); } });
    head.append(th);
  });

  const body = document.getElementById("rows");
  function sort(column) {
    const value = function (row) {
      const v = row.r[column.key];
      if (column.type === "status") return STATUS_ORDER.indexOf(v) < 0 ? 99 : STATUS_ORDER.indexOf(v);
      return v;
    };
    rows.sort(function (a, b) {
      const x = value(a), y = value(b);
      if (x === y) return a.index - b.index;
      if (x === null || x === undefined) return 1; // missing values last, either way
      if (y === null || y === undefined) return -1;
      const order = (typeof x === "string") ? x.localeCompare(y) : x - y;
      return order * sortDir;
    });
    rows.forEach(function (row) { body.append(row.tr); });
  }
  rows.forEach(function (row) { body.append(row.tr); });

  // ---- filters ------------------------------------------------------------------------
  const shownStatuses = new Set();
  const chips = document.getElementById("status-filter");
  const present = STATUS_ORDER.filter(function (s) { return data.counts[s]; })
    .concat(Object.keys(data.counts).filter(function (s) { return STATUS_ORDER.indexOf(s) < 0; }));
  present.forEach(function (s) {
    shownStatuses.add(s);
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = s;
    box.addEventListener("change", function () {
      if (box.checked) shownStatuses.add(s); else shownStatuses.delete(s);
      applyFilter();
    });
    label.append(box, el("i", "dot st-" + s), el("span", "", s + " " + data.counts[s]));
    chips.append(label);
  });

  const search = document.getElementById("search");
  const shown = document.getElementById("shown");
  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    let count = 0;
    rows.forEach(function (row) {
      const visible = shownStatuses.has(row.r[1]) && (!q || row.text.includes(q));
      row.tr.hidden = !visible;
      if (visible) count++;
    });
    shown.textContent = "showing " + count + " of " + rows.length;
  }
  search.addEventListener("input", applyFilter);
  search.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { search.value = ""; applyFilter(); } });
  applyFilter();
})();

// The comparison page: reads the JSON in #compare-data (see prover.views.compare.comparison_data)
// and lists every theorem with each run's result side by side, each linked to that run's tree
// page, filtered by who proved it and by a search over names. Text from the runs reaches the
// page only through textContent and attribute setters, never as HTML.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("compare-data").textContent);
  const runs = data.runs;

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
  function proved(cell) { return cell !== null && cell[0] === "proved"; }

  // ---- header -------------------------------------------------------------------------
  document.getElementById("title").textContent = "Comparison of " + runs.length + " runs";
  const figures = document.getElementById("run-figures");
  runs.forEach(function (run, i) {
    const box = el("span", "run-box");
    box.dataset.run = i;
    const label = run.index ? el("a", "label", run.label) : el("span", "label", run.label);
    if (run.index) label.setAttribute("href", run.index);
    label.title = run.path;
    const rate = el("span", "", pct(run.pass_rate) + " (" + run.num_proved + " of " + run.num_theorems + "; 95% " +
                    pct(run.pass_rate_ci[0]) + "–" + pct(run.pass_rate_ci[1]) + ")");
    rate.className = "rate";
    box.append(label, rate);
    figures.append(box);
  });
  const paired = document.getElementById("paired");
  data.paired.forEach(function (t) {
    paired.append(el("div", "", t.first + " vs " + t.second + ": " + t.only_first + " proved by " + t.first +
      " only, " + t.only_second + " by " + t.second + " only (of " + t.theorems + " both ran); McNemar's exact p = " +
      t.p_value.toPrecision(3)));
  });

  // ---- rows ---------------------------------------------------------------------------
  const head = document.getElementById("columns");
  head.append(el("th", "", "theorem"));
  runs.forEach(function (run) { const th = el("th", "", run.label); th.title = run.path; head.append(th); });
  const body = document.getElementById("rows");
  const rows = data.rows.map(function (r) {
    const tr = el("tr");
    const provers = r[1].map(proved);
    const count = provers.filter(Boolean).length;
    const ran = r[1].filter(function (c) { return c !== null; }).length;
    tr.dataset.proved = count;
    if (count > 0 && count < ran) tr.classList.add("differs");
    tr.append(el("td", "name", oneLine(r[0])));
    r[1].forEach(function (cell) {
      const td = el("td", "cell");
      if (cell === null) { td.append(el("span", "muted", "not run")); tr.append(td); return; }
      const badge = el("span", "badge st-" + cell[0], cell[0]);
      if (cell[3]) {
        const a = el("a");
        a.setAttribute("href", cell[3]);
        a.title = "this run's search tree";
        a.append(badge);
        td.append(a);
      } else {
        td.append(badge);
      }
      td.append(el("span", "figs", cell[1] + " exp · " + fmtTime(cell[2])));
      tr.append(td);
    });
    body.append(tr);
    return { tr: tr, provers: provers, count: count, ran: ran, text: r[0].toLowerCase() };
  });

  // ---- filters ------------------------------------------------------------------------
  const who = document.getElementById("who");
  const choices = [["all", "every theorem"], ["differs", "proved by some runs, not all"],
                   ["all-proved", "proved by every run"], ["none", "proved by no run"]];
  runs.forEach(function (run, i) { choices.push(["only-" + i, "proved by " + run.label + " only"]); });
  choices.forEach(function (c) { const o = el("option", "", c[1]); o.value = c[0]; who.append(o); });
  function wanted(row) {
    const v = who.value;
    if (v === "all") return true;
    if (v === "differs") return row.count > 0 && row.count < row.ran;
    if (v === "all-proved") return row.count === runs.length;
    if (v === "none") return row.count === 0;
    const i = Number(v.slice(5));
    return row.count === 1 && row.provers[i];
  }
  const search = document.getElementById("search");
  const shown = document.getElementById("shown");
  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    let n = 0;
    rows.forEach(function (row) {
      const visible = wanted(row) && (!q || row.text.includes(q));
      row.tr.hidden = !visible;
      if (visible) n++;
    });
    shown.textContent = "showing " + n + " of " + rows.length;
  }
  who.addEventListener("change", applyFilter);
  search.addEventListener("input", applyFilter);
  search.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { search.value = ""; applyFilter(); } });
  applyFilter();
})();

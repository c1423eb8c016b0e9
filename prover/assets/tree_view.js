// The search-tree page: reads the JSON in #tree-data (see prover.viz.view_data) and draws
// an outline of the tree's spanning tree. Rows are built only when their parent is opened,
// so a tree of 10,000 states costs only the rows a reader looks at.
(function () {
  "use strict";
  const QED = -1, DEAD = -2;
  const BATCH = 150; // rows added at once under one state; more behind a "show more" row
  const MAX_MATCHES = 300; // matches opened in the tree by a search; the rest are counted
  const data = JSON.parse(document.getElementById("tree-data").textContent);

  // ---- the model ----------------------------------------------------------------------
  const nodes = new Map();
  data.nodes.forEach(function (r, i) {
    nodes.set(r[0], {
      id: r[0], status: r[1], depth: r[2], order: r[3], tCreated: r[4], tExpanded: r[5],
      logprob: r[6], distance: r[7], partial: r[8], parent: r[9], state: r[10],
      edges: data.edges[i].map(function (e) {
        return { source: r[0], target: e[0], tactic: e[1], logprob: e[2], outcome: e[3], error: e[4],
                 time: e[5], step: e[6] };
      }),
      incoming: [],
    });
  });
  const byOrder = [];
  nodes.forEach(function (n) {
    if (n.order !== null) byOrder[n.order] = n.id;
    n.edges.forEach(function (e) { if (e.target >= 0) nodes.get(e.target).incoming.push(e); });
  });
  const proofKey = new Set(), proofNodes = new Set();
  data.proof.forEach(function (p) { proofKey.add(p[0] + "|" + p[1] + "|" + p[2]); proofNodes.add(p[0]); });
  const onProof = function (e) { return proofKey.has(e.source + "|" + e.target + "|" + e.tactic); };

  // ---- formatting ---------------------------------------------------------------------
  function el(tag, cls, text) {
    const x = document.createElement(tag);
    if (cls) x.className = cls;
    if (text !== undefined && text !== null) x.textContent = text;
    return x;
  }
  function fmtTime(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }
  function fmtLp(x) { return x === null || x === undefined ? "–" : x.toFixed(2); }
  function firstGoal(state) {
    const lines = state.split("\n");
    const goal = lines.find(function (l) { return l.trimStart().startsWith("⊢"); }) || state.trim();
    return goal.replace(/\s+/g, " ");
  }
  function firstLine(text) { return text.split("\n")[0]; }

  // ---- rows ---------------------------------------------------------------------------
  const treeEl = document.getElementById("tree");
  const details = document.getElementById("details");
  let items = new Map(); // state id -> {row, kids, filled, open}
  let filter = null; // {matches: Set, kept: Set, failedHits: Set} while the search box filters
  let selectedRow = null;

  function stateRow(n, edge) {
    const row = el("div", "row state");
    row.dataset.node = n.id;
    row.setAttribute("role", "treeitem");
    row.title = n.state;
    const hasKids = n.edges.length > 0;
    row.append(el("span", "twisty", hasKids ? "▸" : ""), el("i", "dot st-" + n.status));
    if (edge) {
      row.append(el("span", "tac", firstLine(edge.tactic)), el("span", "lp", fmtLp(edge.logprob)),
                 el("span", "muted", "→"));
      if (onProof(edge)) row.classList.add("on-proof");
    } else if (proofNodes.has(n.id)) {
      row.classList.add("on-proof");
    }
    row.append(el("span", "nid", "[" + n.id + "]"));
    if (n.order !== null) row.append(el("span", "ord", "#" + n.order));
    if (edge) row.append(el("span", "time", fmtTime(edge.time)));
    row.append(el("span", "goal", firstGoal(n.state)));
    if (filter && filter.matches.has(n.id)) row.classList.add("match");
    return row;
  }

  function addState(container, n, edge) {
    const wrap = el("div", "item");
    const row = stateRow(n, edge);
    const kids = el("div", "kids");
    kids.hidden = true;
    wrap.append(row, kids);
    container.append(wrap);
    const item = { row: row, kids: kids, filled: false, open: false, edge: edge };
    items.set(n.id, item);
    row.addEventListener("click", function (ev) {
      if (ev.target.classList.contains("twisty")) { toggle(n.id); return; }
      select(n.id, row);
      if (!item.open) toggle(n.id, true);
    });
    row.addEventListener("dblclick", function () { toggle(n.id); });
  }

  function edgeRow(container, e, kind) {
    const row = el("div", "row " + kind);
    row.append(el("span", "twisty", ""));
    if (kind === "qed") {
      row.append(el("i", "dot qed"), el("span", "tac", firstLine(e.tactic)), el("span", "lp", fmtLp(e.logprob)),
                 el("span", "muted", "→"), el("span", "nid", "QED ✓"), el("span", "time", fmtTime(e.time)));
      if (onProof(e)) row.classList.add("on-proof");
    } else if (kind === "failed") {
      row.title = e.error;
      row.append(el("i", "dot dead"), el("span", "tac", firstLine(e.tactic)), el("span", "lp", fmtLp(e.logprob)),
                 el("span", "outcome", e.outcome), el("span", "time", fmtTime(e.time)),
                 el("span", "err", firstLine(e.error || "")));
      if (filter && filter.query && e.tactic.toLowerCase().includes(filter.query)) row.classList.add("match");
    } else { // a state drawn under another parent
      const t = nodes.get(e.target);
      row.title = t.state;
      row.append(el("i", "dot st-" + t.status), el("span", "tac", firstLine(e.tactic)),
                 el("span", "lp", fmtLp(e.logprob)), el("span", "muted", "→"), el("span", "nid", "[" + t.id + "]"),
                 el("span", "time", fmtTime(e.time)), el("span", "goal", t.parent === e.source ? "(drawn above)" : "(drawn under [" + t.parent + "])"));
    }
    row.addEventListener("click", function () {
      if (kind === "ref") { reveal(e.target); return; }
      selectEdge(e, row);
    });
    container.append(row);
    return row;
  }

  function failedBlock(container, n, failed) {
    const block = el("div", "failed-block");
    const row = el("div", "row failed-group");
    const twisty = el("span", "twisty", "▸");
    row.append(twisty, el("i", "dot dead"),
               el("span", "", failed.length + " failed tactic" + (failed.length > 1 ? "s" : "")));
    const kids = el("div", "kids");
    kids.hidden = true;
    let filled = false;
    const open = function (want) {
      kids.hidden = !want;
      twisty.textContent = want ? "▾" : "▸";
      if (want && !filled) { filled = true; fillBatched(kids, failed, function (c, e) { edgeRow(c, e, "failed"); }); }
    };
    row.addEventListener("click", function () { open(kids.hidden); });
    block.append(row, kids);
    container.append(block);
    if (filter && filter.failedHits.has(n.id)) open(true);
  }

  // Adds rows BATCH at a time; the rest wait behind a "show more" row.
  function fillBatched(container, list, add, start) {
    start = start || 0;
    const end = Math.min(list.length, start + BATCH);
    for (let i = start; i < end; i++) add(container, list[i]);
    if (end < list.length) {
      const more = el("div", "row more", "show " + Math.min(BATCH, list.length - end) + " more of " +
                      (list.length - end) + "…");
      more.addEventListener("click", function () { more.remove(); fillBatched(container, list, add, end); });
      container.append(more);
    }
  }

  function fill(id) {
    const n = nodes.get(id), item = items.get(id);
    item.filled = true;
    // While filtering, a state kept only because a match lies below it shows only that path.
    const narrow = filter && !filter.matches.has(id);
    const shown = [], failed = [];
    n.edges.forEach(function (e) {
      if (e.target === DEAD) { if (!narrow || filter.failedHits.has(id)) failed.push(e); return; }
      if (narrow && !(e.target >= 0 && nodes.get(e.target).parent === id && filter.kept.has(e.target))) return;
      shown.push(e);
    });
    fillBatched(item.kids, shown, function (c, e) {
      if (e.target === QED) edgeRow(c, e, "qed");
      else if (nodes.get(e.target).parent === id && !items.has(e.target)) addState(c, nodes.get(e.target), e);
      else edgeRow(c, e, "ref");
    });
    if (failed.length) failedBlock(item.kids, n, failed);
  }

  function toggle(id, want) {
    const item = items.get(id);
    if (!item) return;
    if (want === undefined) want = !item.open;
    if (want && nodes.get(id).edges.length === 0) return;
    if (want && !item.filled) fill(id);
    item.open = want;
    item.kids.hidden = !want;
    item.row.querySelector(".twisty").textContent = nodes.get(id).edges.length ? (want ? "▾" : "▸") : "";
  }

  // Opens the chain of primary parents down to ``id`` and selects it.
  function reveal(id, quiet) {
    if (filter && !filter.kept.has(id)) clearSearch();
    const chain = [];
    for (let n = id; n !== null; n = nodes.get(n).parent) chain.push(n);
    chain.reverse();
    chain.slice(0, -1).forEach(function (a) { toggle(a, true); });
    const item = items.get(id);
    if (!item) return;
    select(id, item.row);
    if (!quiet) item.row.scrollIntoView({ block: "center" });
  }

  function build(openIds) {
    treeEl.textContent = "";
    items = new Map();
    addState(treeEl, nodes.get(0), null);
    openIds.forEach(function (id) { if (items.has(id)) toggle(id, true); });
  }

  function proofOpenIds() {
    const ids = [0];
    data.proof.forEach(function (p) { ids.push(p[0]); });
    return ids;
  }

  // ---- details panel ------------------------------------------------------------------
  function markSelected(row) {
    if (selectedRow) selectedRow.classList.remove("selected");
    selectedRow = row;
    if (row) row.classList.add("selected");
  }

  function kv(table, key, value) {
    const tr = el("tr");
    tr.append(el("th", "", key), el("td", "num", value));
    table.append(tr);
  }

  function link(text, id) {
    const a = el("a", "", text);
    a.addEventListener("click", function () { reveal(id); });
    return a;
  }

  function select(id, row) {
    markSelected(row);
    const n = nodes.get(id);
    details.textContent = "";
    const h = el("h2");
    h.append(el("i", "dot st-" + n.status), el("span", "", "State [" + id + "]"),
             el("span", "badge st-" + n.status, n.status));
    if (proofNodes.has(id)) h.append(el("span", "muted", "on the proof path"));
    details.append(h);
    const pre = el("pre", "", n.state);
    pre.id = "detail-state";
    details.append(pre);
    const t = el("table");
    kv(t, "search order", n.order === null ? "not expanded" : "#" + n.order + " of " + data.num_expanded);
    kv(t, "expanded at", n.tExpanded === null ? "–" : fmtTime(n.tExpanded) + " into the search");
    kv(t, "created at", fmtTime(n.tCreated) + " into the search");
    kv(t, "depth", String(n.depth));
    kv(t, "cumulative log-prob", fmtLp(n.logprob));
    kv(t, "tactics to a proof", n.distance === null ? "–" : String(n.distance));
    if (n.partial) kv(t, "expansion", "cut short by the budget");
    details.append(t);

    const stepper = el("div", "stepper");
    const prev = el("button", "", "◀ previous expansion"), next = el("button", "", "next expansion ▶");
    const at = n.order !== null ? n.order : null;
    prev.disabled = at === null || at === 0;
    next.disabled = at === null || at + 1 >= byOrder.length;
    prev.addEventListener("click", function () { reveal(byOrder[at - 1]); });
    next.addEventListener("click", function () { reveal(byOrder[at + 1]); });
    stepper.append(prev, next);
    details.append(stepper);

    if (n.incoming.length) {
      details.append(el("h3", "", "Reached by"));
      const it = el("table", "tactics");
      n.incoming.forEach(function (e) {
        const tr = el("tr");
        const from = el("td", "num");
        from.append(link("[" + e.source + "]", e.source));
        tr.append(el("td", "", e.tactic), el("td", "num", fmtLp(e.logprob)), el("td", "num", fmtTime(e.time)), from);
        it.append(tr);
      });
      details.append(it);
    }
    if (n.edges.length) {
      details.append(el("h3", "", "Tactics tried here (" + n.edges.length + ")"));
      const tt = el("table", "tactics");
      const head = el("tr");
      ["tactic", "log-prob", "time", "outcome"].forEach(function (c) { head.append(el("th", "", c)); });
      tt.append(head);
      n.edges.forEach(function (e) {
        const tr = el("tr");
        const out = el("td");
        if (e.target >= 0) out.append(link("→ [" + e.target + "]", e.target));
        else if (e.target === QED) out.append(el("span", "", "QED ✓"));
        else { out.append(el("span", "", e.outcome)); out.title = e.error; }
        tr.append(el("td", "", e.tactic), el("td", "num", fmtLp(e.logprob)), el("td", "num", fmtTime(e.time)), out);
        if (onProof(e)) tr.style.background = "var(--proof-bg)";
        tt.append(tr);
      });
      details.append(tt);
    }
  }

  function selectEdge(e, row) {
    markSelected(row);
    details.textContent = "";
    const h = el("h2");
    h.append(el("i", e.target === QED ? "dot qed" : "dot dead"),
             el("span", "", e.target === QED ? "Tactic that closed the proof" : "Failed tactic"));
    details.append(h);
    details.append(el("pre", "", e.tactic));
    const t = el("table");
    kv(t, "outcome", e.outcome);
    kv(t, "log-prob", fmtLp(e.logprob));
    kv(t, "time", fmtTime(e.time));
    kv(t, "during expansion", "#" + e.step);
    details.append(t);
    if (e.error) { details.append(el("h3", "", "Error")); details.append(el("pre", "", e.error)); }
    details.append(el("h3", "", "Tried at"));
    const p = el("p");
    p.append(link("state [" + e.source + "]", e.source));
    details.append(p);
    details.append(el("pre", "", nodes.get(e.source).state));
  }

  // ---- search -------------------------------------------------------------------------
  const search = document.getElementById("search");
  const info = document.getElementById("search-info");
  let lower = null; // lower-cased text, built on the first search

  function runSearch() {
    const q = search.value.trim().toLowerCase();
    if (!q) { clearSearch(); return; }
    if (!lower) {
      lower = new Map();
      nodes.forEach(function (n) {
        lower.set(n.id, { state: n.state.toLowerCase(),
                          tactics: n.edges.map(function (e) { return e.tactic.toLowerCase(); }) });
      });
    }
    const matches = new Set(), failedHits = new Set();
    let total = 0;
    nodes.forEach(function (n) {
      const own = lower.get(n.id);
      let hit = own.state.includes(q);
      // A tactic matches the state it leads to; a failed or finishing one, the state it was tried at.
      n.incoming.forEach(function (e) { if (!hit && e.tactic.toLowerCase().includes(q)) hit = true; });
      let failedHit = false;
      n.edges.forEach(function (e, i) {
        if (e.target < 0 && own.tactics[i].includes(q)) { hit = true; if (e.target === DEAD) failedHit = true; }
      });
      if (!hit) return;
      total++;
      if (matches.size < MAX_MATCHES) { matches.add(n.id); if (failedHit) failedHits.add(n.id); }
    });
    const kept = new Set(), opened = new Set([0]);
    matches.forEach(function (id) {
      for (let n = id; n !== null && !kept.has(n); n = nodes.get(n).parent) {
        kept.add(n);
        if (nodes.get(n).parent !== null) opened.add(nodes.get(n).parent);
      }
    });
    failedHits.forEach(function (id) { opened.add(id); });
    filter = { query: q, matches: matches, kept: kept, failedHits: failedHits };
    info.textContent = total === 0 ? "no match" :
      total > matches.size ? "showing the first " + matches.size + " of " + total + " matching states" :
      total + " matching state" + (total > 1 ? "s" : "");
    // Open parents before children: ascending depth in the spanning tree is id order of the chain.
    build(Array.from(opened).sort(function (a, b) { return depthOf(a) - depthOf(b); }));
  }

  function depthOf(id) {
    let d = 0;
    for (let n = nodes.get(id).parent; n !== null; n = nodes.get(n).parent) d++;
    return d;
  }

  function clearSearch() {
    if (!filter && !search.value) return;
    filter = null;
    search.value = "";
    info.textContent = "";
    build(proofOpenIds());
  }

  let timer = null;
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(runSearch, 200); });
  search.addEventListener("keydown", function (ev) { if (ev.key === "Escape") clearSearch(); });

  // ---- header and start ---------------------------------------------------------------
  const proofEl = document.getElementById("proof");
  if (data.proof.length) {
    proofEl.append(el("span", "muted", "proof: "));
    data.proof.forEach(function (p) {
      const c = el("code", "", firstLine(p[2]));
      c.title = p[2];
      c.addEventListener("click", function () { reveal(p[0]); });
      proofEl.append(c);
    });
  } else {
    proofEl.append(el("span", "muted", "no proof found" + (data.result.stop_reason ? " (" + data.result.stop_reason + ")" : "")));
  }
  const showProof = document.getElementById("show-proof");
  showProof.disabled = data.proof.length === 0;
  showProof.addEventListener("click", function () {
    clearSearch();
    proofOpenIds().forEach(function (id) { toggle(id, true); });
    const last = data.proof.length ? data.proof[data.proof.length - 1][0] : 0;
    reveal(last);
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    filter = null; search.value = ""; info.textContent = "";
    build([0]);
    select(0, items.get(0).row);
  });
  document.getElementById("hide-failed").addEventListener("change", function (ev) {
    document.body.classList.toggle("hide-failed", ev.target.checked);
  });

  build(proofOpenIds());
  select(0, items.get(0).row);
})();

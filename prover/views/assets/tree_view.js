// The search-tree page: reads the JSON in #tree-data (see prover.views.viz.view_data) and draws
// an outline of the tree's spanning tree. Rows are built only when their parent is opened,
// so a tree of 10,000 states costs only the rows a reader looks at. Every text from the
// tree (tactics, goals, errors) reaches the page through textContent, never as HTML.
(function () {
  "use strict";
  const QED = -1, DEAD = -2;
  const BATCH = 150; // rows added at once under one state; more behind a "show more" row
  const MAX_MATCHES = 300; // matching rows a search opens in the tree; the rest are counted
  const INDENT_LEVELS = 8; // deeper levels are not indented further: a depth chip says where they are
  const data = JSON.parse(document.getElementById("tree-data").textContent);
  const ov = data.overview;

  // ---- the model ----------------------------------------------------------------------
  const nodes = new Map();
  data.nodes.forEach(function (r, i) {
    nodes.set(r[0], {
      id: r[0], status: r[1], depth: r[2], order: r[3], tCreated: r[4], tExpanded: r[5],
      logprob: r[6], distance: r[7], partial: r[8], parent: r[9], priority: r[10], value: r[11], state: r[12],
      edges: data.edges[i].map(function (e) {
        return { source: r[0], target: e[0], tactic: e[1], logprob: e[2], outcome: e[3], error: e[4],
                 time: e[5], step: e[6] };
      }),
      incoming: [], primaryEdge: null, level: null,
    });
  });
  const byOrder = [];
  nodes.forEach(function (n) {
    if (n.order !== null) byOrder[n.order] = n.id;
    n.edges.forEach(function (e) {
      if (e.target < 0) return;
      const t = nodes.get(e.target);
      t.incoming.push(e);
      // The tactic drawn on a state's own row: the best one from its drawn parent.
      if (t.parent === n.id && t.primaryEdge === null) t.primaryEdge = e;
    });
  });
  function levelOf(id) { // depth in the drawn spanning tree (the parent chain), memoised
    const chain = [];
    let n = nodes.get(id);
    while (n.level === null && n.parent !== null) { chain.push(n); n = nodes.get(n.parent); }
    if (n.level === null) n.level = 0;
    for (let i = chain.length - 1; i >= 0; i--) chain[i].level = nodes.get(chain[i].parent).level + 1;
    return nodes.get(id).level;
  }
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
  // The unproved search's landmarks, tagged on their rows as on the PNG (F1: best frontier
  // state by priority, D1: deepest open state).
  const BEST = ov.frontier.length ? ov.frontier[0][0] : null;
  const DEEPEST = ov.deepest.length ? ov.deepest[0][0] : null;
  const TAGS = new Map();
  if (!data.proof.length) {
    if (DEEPEST !== null) TAGS.set(DEEPEST, ["D1", "the deepest open state"]);
    if (BEST !== null) TAGS.set(BEST, [DEEPEST === BEST ? "F1 D1" : "F1",
      "the open state of highest priority: the search would have expanded it next"]);
  }

  function errorKind(e) {
    if (e.outcome === "error" && e.error.startsWith("refused:")) return "refused";  // trees saved before "refused" edges
    // The replay environment's tactics it has no record of: Lean never ran them (viz.error_kind).
    if (e.outcome === "error" && (e.error.startsWith("not recorded:") ||
        (e.error.startsWith("replay: `") && e.error.includes("was never recorded")))) return "not recorded";
    return { error: "Lean error", timeout: "timeout", given_up: "gave up (sorry)", cycle: "cycle" }[e.outcome] || e.outcome;
  }

  // ---- search: which rows match -------------------------------------------------------
  // A row matches by the text it shows: a state row by its tactic and its goals, a QED or
  // cross-reference row by its tactic, a failed row by its tactic and error.
  let filter = null; // while the search box filters: {query, matches, kept, edgeHits}
  function has(text, q) { return !!text && text.toLowerCase().includes(q); }
  function stateRowMatches(n, q) { return has(n.state, q) || (n.primaryEdge !== null && has(n.primaryEdge.tactic, q)); }
  function edgeRowMatches(e, q) { return has(e.tactic, q) || (e.target === DEAD && has(e.error, q)); }
  function isEdgeRow(e) { return e.target < 0 || nodes.get(e.target).primaryEdge !== e; }

  // ---- rows ---------------------------------------------------------------------------
  const treeEl = document.getElementById("tree");
  const details = document.getElementById("details");
  let items = new Map(); // state id -> {row, kids, filled, open}
  let selectedRow = null;

  function levelChip(row, level) {
    if (level > INDENT_LEVELS) row.append(el("span", "lvl", "↳" + level));
  }

  function stateRow(n, edge) {
    const row = el("div", "row state");
    row.dataset.node = n.id;
    row.setAttribute("role", "treeitem");
    row.title = n.state;
    const hasKids = n.edges.length > 0;
    row.append(el("span", "twisty", hasKids ? "▸" : ""));
    levelChip(row, levelOf(n.id));
    row.append(el("i", "dot st-" + n.status));
    if (edge) {
      row.append(el("span", "tac", firstLine(edge.tactic)), el("span", "lp", fmtLp(edge.logprob)),
                 el("span", "muted", "→"));
      if (onProof(edge)) row.classList.add("on-proof");
    } else if (proofNodes.has(n.id)) {
      row.classList.add("on-proof");
    }
    row.append(el("span", "nid", "[" + n.id + "]"));
    if (TAGS.has(n.id)) {
      const tag = el("span", "tag", TAGS.get(n.id)[0]);
      tag.title = TAGS.get(n.id)[1];
      row.append(tag);
    }
    if (n.order !== null) row.append(el("span", "ord", "#" + n.order));
    if (edge) row.append(el("span", "time", fmtTime(edge.time)));
    let goal = firstGoal(n.state);
    if (filter && stateRowMatches(n, filter.query)) {
      row.classList.add("match");
      // A match in a hypothesis is shown in place of the goal, so the row shows why it matches.
      if (!has(goal, filter.query) && !(edge && has(edge.tactic, filter.query)) && has(n.state, filter.query)) {
        goal = "… " + n.state.split("\n").find(function (l) { return has(l, filter.query); }).trim();
      }
    }
    row.append(el("span", "goal", goal));
    return row;
  }

  function addState(container, n, edge) {
    const wrap = el("div", "item");
    const row = stateRow(n, edge);
    const kids = el("div", "kids");
    if (levelOf(n.id) >= INDENT_LEVELS) kids.classList.add("flat");
    kids.hidden = true;
    wrap.append(row, kids);
    container.append(wrap);
    const item = { row: row, kids: kids, filled: false, open: false, edge: edge };
    items.set(n.id, item);
    row._nav = {
      select: function () { select(n.id, row); },
      enter: function () { select(n.id, row); toggle(n.id); },
      open: function () { if (!item.open && n.edges.length) { toggle(n.id, true); return true; } return false; },
      close: function () { if (item.open) { toggle(n.id, false); return true; } return false; },
    };
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
                 el("span", "outcome", errorKind(e)), el("span", "time", fmtTime(e.time)),
                 el("span", "err", firstLine(e.error || "")));
    } else { // a state drawn under another parent
      const t = nodes.get(e.target);
      row.title = t.state;
      row.append(el("i", "dot st-" + t.status), el("span", "tac", firstLine(e.tactic)),
                 el("span", "lp", fmtLp(e.logprob)), el("span", "muted", "→"), el("span", "nid", "[" + t.id + "]"),
                 el("span", "time", fmtTime(e.time)),
                 el("span", "goal", t.parent === e.source ? "(drawn above)" : "(drawn under [" + t.parent + "])"));
    }
    if (filter && edgeRowMatches(e, filter.query)) row.classList.add("match");
    const activate = function () { if (kind === "ref") reveal(e.target); else selectEdge(e, row); };
    row._nav = { select: function () { selectEdge(e, row); }, enter: activate };
    row.addEventListener("click", activate);
    container.append(row);
    return row;
  }

  function failedBlock(container, n, failed, openNow) {
    const block = el("div", "failed-block");
    const row = el("div", "row failed-group");
    const twisty = el("span", "twisty", "▸");
    row.append(twisty, el("i", "dot dead"),
               el("span", "", failed.length + " failed tactic" + (failed.length > 1 ? "s" : "")));
    const kids = el("div", "kids");
    if (levelOf(n.id) + 1 >= INDENT_LEVELS) kids.classList.add("flat");
    kids.hidden = true;
    let filled = false;
    const open = function (want) {
      kids.hidden = !want;
      twisty.textContent = want ? "▾" : "▸";
      if (want && !filled) { filled = true; fillBatched(kids, failed, function (c, e) { edgeRow(c, e, "failed"); }); }
    };
    row._nav = {
      select: function () { markSelected(row); },
      enter: function () { open(kids.hidden); },
      open: function () { if (kids.hidden) { open(true); return true; } return false; },
      close: function () { if (!kids.hidden) { open(false); return true; } return false; },
    };
    row.addEventListener("click", function () { markSelected(row); open(kids.hidden); });
    block.append(row, kids);
    container.append(block);
    if (openNow) open(true);
  }

  // Adds rows BATCH at a time; the rest wait behind a "show more" row.
  function fillBatched(container, list, add, start) {
    start = start || 0;
    const end = Math.min(list.length, start + BATCH);
    for (let i = start; i < end; i++) add(container, list[i]);
    if (end < list.length) {
      const more = el("div", "row more", "show " + Math.min(BATCH, list.length - end) + " more of " +
                      (list.length - end) + "…");
      const showMore = function () {
        const next = more.previousElementSibling;
        more.remove();
        fillBatched(container, list, add, end);
        if (selectedRow === more && next && next.nextElementSibling) moveTo(next.nextElementSibling);
      };
      more._nav = { select: function () { markSelected(more); }, enter: showMore };
      more.addEventListener("click", showMore);
      container.append(more);
    }
  }

  function fill(id) {
    const n = nodes.get(id), item = items.get(id);
    item.filled = true;
    // While filtering, a state kept only because a match lies below it shows only the rows
    // that lead to a match or are one.
    const narrow = filter && !filter.matches.has(id);
    const hits = filter ? filter.edgeHits.get(id) : undefined;
    const shown = [], failed = [];
    n.edges.forEach(function (e) {
      const hit = !!hits && hits.has(e);
      if (e.target === DEAD) { if (!narrow || hit) failed.push(e); return; }
      if (narrow && !hit && !(!isEdgeRow(e) && filter.kept.has(e.target))) return;
      shown.push(e);
    });
    fillBatched(item.kids, shown, function (c, e) {
      if (e.target === QED) edgeRow(c, e, "qed");
      else if (!isEdgeRow(e)) addState(c, nodes.get(e.target), e);
      else edgeRow(c, e, "ref");
    });
    if (failed.length) {
      const openNow = !!hits && failed.some(function (e) { return hits.has(e); });
      failedBlock(item.kids, n, failed, openNow);
    }
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

  function chainTo(id) {
    const chain = [];
    for (let n = id; n !== null; n = nodes.get(n).parent) chain.push(n);
    return chain.reverse();
  }

  // Opens the chain of primary parents down to ``id`` and selects it.
  function reveal(id, quiet) {
    if (filter && !filter.kept.has(id)) clearSearch();
    const chain = chainTo(id);
    chain.slice(0, -1).forEach(function (a) { toggle(a, true); });
    const item = items.get(id);
    if (!item) return;
    select(id, item.row);
    if (!quiet) item.row.scrollIntoView({ block: "center" });
  }

  function build(openIds) {
    treeEl.textContent = "";
    items = new Map();
    selectedRow = null;
    addState(treeEl, nodes.get(0), null);
    openIds.forEach(function (id) { if (items.has(id)) toggle(id, true); });
  }

  function proofOpenIds() {
    const ids = [0];
    data.proof.forEach(function (p) { ids.push(p[0]); });
    return ids;
  }

  // What the page opens on: the proof path; for an unproved search, the way to the most
  // promising frontier state (the one the search would have expanded next) and to the
  // deepest open state, so the first screen shows how far the search got.
  function startOpenIds() {
    if (data.proof.length) return proofOpenIds();
    const ids = [0];
    [BEST, DEEPEST].forEach(function (id) {
      if (id === null) return;
      chainTo(id).slice(0, -1).forEach(function (a) { if (ids.indexOf(a) < 0) ids.push(a); });
    });
    return ids;
  }

  // ---- keyboard -----------------------------------------------------------------------
  function visibleRows() {
    return Array.from(treeEl.querySelectorAll(".row")).filter(function (r) { return r.offsetParent !== null; });
  }
  function moveTo(row) {
    if (!row) return;
    if (row._nav && row._nav.select) row._nav.select(); else markSelected(row);
    row.scrollIntoView({ block: "nearest" });
  }
  function parentRow(row) {
    let k = row.parentElement;
    if (k && !k.classList.contains("kids")) k = k.parentElement; // a state row sits in its .item
    return k && k.classList.contains("kids") ? k.previousElementSibling : null;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target, tag = t.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && t.type !== "checkbox")) return; // typing
    if ((tag === "BUTTON" || tag === "A" || tag === "INPUT") && (ev.key === "Enter" || ev.key === " ")) return;
    const rows = visibleRows();
    if (!rows.length) return;
    const at = selectedRow ? rows.indexOf(selectedRow) : -1;
    const nav = selectedRow && selectedRow._nav;
    switch (ev.key) {
      case "ArrowDown": case "j": moveTo(rows[Math.min(rows.length - 1, at + 1)]); break;
      case "ArrowUp": case "k": moveTo(rows[Math.max(0, at - 1)]); break;
      case "Home": moveTo(rows[0]); break;
      case "End": moveTo(rows[rows.length - 1]); break;
      case "ArrowRight": case "l":
        if (!nav || !(nav.open && nav.open())) moveTo(rows[Math.min(rows.length - 1, at + 1)]);
        break;
      case "ArrowLeft": case "h":
        if (!nav || !(nav.close && nav.close())) moveTo(selectedRow ? parentRow(selectedRow) : rows[0]);
        break;
      case "Enter": case " ":
        if (nav) nav.enter(); else moveTo(rows[0]);
        break;
      case "/": search.focus(); break;
      case "o": showOverview(); break;
      default: return;
    }
    ev.preventDefault();
  });

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
    a.href = "#";
    a.addEventListener("click", function (ev) { ev.preventDefault(); reveal(id); });
    return a;
  }

  // The tactics from the root to ``id`` along the drawn tree: a breadcrumb of links. A long
  // path shows its first and last steps, with the middle behind a link.
  const CRUMBS_SHOWN = 8;
  function breadcrumb(id) {
    const chain = chainTo(id);
    const crumbs = el("div", "crumbs");
    crumbs.append(el("span", "muted", "path (" + (chain.length - 1) + " tactics): "));
    crumbs.append(link("root", chain[0]));
    const crumb = function (i) {
      const e = nodes.get(chain[i]).primaryEdge;
      const part = el("span");
      const a = link(e ? firstLine(e.tactic) : "[" + chain[i] + "]", chain[i]);
      a.title = "[" + chain[i] + "] depth " + i + ": " + firstGoal(nodes.get(chain[i]).state);
      part.append(el("span", "sep", " › "), a);
      return part;
    };
    const steps = chain.length - 1;
    if (steps <= CRUMBS_SHOWN + 2) {
      for (let i = 1; i < chain.length; i++) crumbs.append(crumb(i));
      return crumbs;
    }
    crumbs.append(crumb(1), crumb(2));
    const hidden = el("span");
    hidden.hidden = true;
    for (let i = 3; i < chain.length - CRUMBS_SHOWN; i++) hidden.append(crumb(i));
    const more = el("a", "more-crumbs", " › … " + (chain.length - CRUMBS_SHOWN - 3) + " more …");
    more.href = "#";
    more.addEventListener("click", function (ev) { ev.preventDefault(); hidden.hidden = false; more.remove(); });
    crumbs.append(more, hidden);
    for (let i = chain.length - CRUMBS_SHOWN; i < chain.length; i++) crumbs.append(crumb(i));
    return crumbs;
  }

  function select(id, row) {
    markSelected(row);
    const n = nodes.get(id);
    details.textContent = "";
    details.scrollTop = 0;
    const h = el("h2");
    h.append(el("i", "dot st-" + n.status), el("span", "", "State [" + id + "]"),
             el("span", "badge st-" + n.status, n.status));
    if (proofNodes.has(id)) h.append(el("span", "muted", "on the proof path"));
    details.append(h);
    if (id !== 0) details.append(breadcrumb(id));
    const pre = el("pre", "", n.state);
    pre.id = "detail-state";
    details.append(pre);
    const t = el("table");
    kv(t, "search order", n.order === null ? "not expanded" : "#" + n.order + " of " + data.num_expanded);
    kv(t, "priority", n.priority === null ? "never queued" : n.priority.toFixed(3));
    if (n.value !== null) kv(t, "value (critic)", n.value.toFixed(3));
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
        const out = el("td", "outcome-cell");
        if (e.target >= 0) out.append(link("→ [" + e.target + "]", e.target));
        else if (e.target === QED) out.append(el("span", "", "QED ✓"));
        else {
          out.append(el("span", "outcome", errorKind(e)));
          const msg = e.error.length > 400 ? e.error.slice(0, 399) + "…" : e.error;
          if (msg) out.append(el("div", "errmsg", msg));
          out.title = e.error;
        }
        tr.append(el("td", "", e.tactic), el("td", "num", fmtLp(e.logprob)), el("td", "num", fmtTime(e.time)), out);
        if (onProof(e)) tr.className = "on-proof";
        tt.append(tr);
      });
      details.append(tt);
    }
  }

  function selectEdge(e, row) {
    markSelected(row);
    details.textContent = "";
    details.scrollTop = 0;
    const h = el("h2");
    const title = e.target === QED ? "Tactic that closed the proof" : e.target === DEAD ? "Failed tactic" :
      "Tactic to state [" + e.target + "]";
    h.append(el("i", e.target === QED ? "dot qed" : e.target === DEAD ? "dot dead" : "dot st-" + nodes.get(e.target).status),
             el("span", "", title));
    details.append(h);
    details.append(el("pre", "", e.tactic));
    const t = el("table");
    kv(t, "outcome", e.target === DEAD ? errorKind(e) : e.outcome);
    kv(t, "log-prob", fmtLp(e.logprob));
    kv(t, "time", fmtTime(e.time));
    kv(t, "during expansion", "#" + e.step);
    details.append(t);
    if (e.error) { details.append(el("h3", "", "Error")); details.append(el("pre", "", e.error)); }
    if (e.target >= 0) {
      const p = el("p");
      p.append(link("go to state [" + e.target + "]", e.target));
      details.append(p);
    }
    details.append(el("h3", "", "Tried at"));
    const p = el("p");
    p.append(link("state [" + e.source + "]", e.source));
    details.append(p);
    details.append(el("pre", "", nodes.get(e.source).state));
  }

  // ---- overview -----------------------------------------------------------------------
  function stateList(title, rows, columns, note) {
    const box = el("div", "ov-block");
    box.append(el("h3", "", title));
    if (note) box.append(el("p", "muted", note));
    if (!rows.length) { box.append(el("p", "muted", "none")); return box; }
    const table = el("table", "tactics ov-list");
    const head = el("tr");
    columns.forEach(function (c) { head.append(el("th", "", c[0])); });
    head.append(el("th", "", "goal"));
    table.append(head);
    rows.forEach(function (r) {
      const n = nodes.get(r[0]);
      const tr = el("tr");
      const idCell = el("td", "num");
      idCell.append(el("i", "dot st-" + n.status), document.createTextNode(" "), link("[" + n.id + "]", n.id));
      tr.append(idCell);
      columns.slice(1).forEach(function (c) { tr.append(el("td", "num", c[1](r, n))); });
      const goal = el("td", "ov-goal", firstGoal(n.state));
      goal.title = n.state;
      tr.append(goal);
      table.append(tr);
    });
    box.append(table);
    return box;
  }

  function showOverview() {
    markSelected(null);
    details.textContent = "";
    details.scrollTop = 0;
    details.append(el("h2", "", "Overview of the search"));
    const summary = el("table");
    kv(summary, "result", data.status + (ov.stop_reason ? " (stopped: " + ov.stop_reason + ")" : ""));
    kv(summary, "states", data.num_states + " (" + data.num_expanded + " expanded, " + ov.num_frontier + " waiting)");
    const tried = data.edges.reduce(function (a, es) { return a + es.length; }, 0);
    kv(summary, "tactics tried", String(tried));
    if (data.result.wall_time_s !== undefined && data.result.wall_time_s !== null)
      kv(summary, "search time", fmtTime(data.result.wall_time_s));
    if (data.result.error) kv(summary, "error", data.result.error);
    details.append(summary);

    // States and expanded states per depth, as bars.
    const hist = el("div", "ov-block");
    hist.append(el("h3", "", "States per depth"));
    const most = Math.max.apply(null, ov.depth_states.concat([1]));
    const bars = el("div", "hist");
    ov.depth_states.forEach(function (count, depth) {
      const line = el("div", "hist-row");
      line.title = "depth " + depth + ": " + count + " states, " + ov.depth_expanded[depth] + " expanded";
      const track = el("span", "hist-track");
      const all = el("span", "hist-bar");
      all.style.width = (100 * count / most) + "%";
      const expanded = el("span", "hist-bar expanded");
      expanded.style.width = (100 * ov.depth_expanded[depth] / most) + "%";
      track.append(all, expanded);
      line.append(el("span", "hist-label", String(depth)), track, el("span", "hist-count", count + " / " + ov.depth_expanded[depth]));
      bars.append(line);
    });
    hist.append(bars);
    hist.append(el("p", "muted", "depth: states (light) / expanded (dark)"));
    details.append(hist);

    details.append(stateList("Frontier by priority", ov.frontier,
      [["state"], ["priority", function (r) { return r[1] === null ? "–" : r[1].toFixed(3); }],
       ["depth", function (r) { return String(r[2]); }]],
      ov.num_frontier > ov.frontier.length ? "the first " + ov.frontier.length + " of " + ov.num_frontier +
        " open states not yet expanded; the search would have taken them next" :
        ov.num_frontier + " open state" + (ov.num_frontier === 1 ? "" : "s") + " not yet expanded"));
    details.append(stateList("Closest to a proof: fewest goals", ov.fewest_goals,
      [["state"], ["goals", function (r) { return String(r[1]); }], ["depth", function (r) { return String(r[2]); }]]));
    details.append(stateList("Closest to a proof: deepest", ov.deepest,
      [["state"], ["depth", function (r) { return String(r[2]); }], ["goals", function (r) { return String(r[1]); }]]));

    const errs = el("div", "ov-block");
    errs.append(el("h3", "", "Failed tactics by kind"));
    const kinds = Object.keys(ov.errors);
    if (!kinds.length) errs.append(el("p", "muted", "none"));
    else {
      const et = el("table");
      kinds.forEach(function (k) { kv(et, k, String(ov.errors[k])); });
      errs.append(et);
      errs.append(el("h3", "", "Commonest error messages"));
      const mt = el("table", "tactics");
      ov.top_errors.forEach(function (m) {
        const tr = el("tr");
        const msg = el("td", "errmsg", m[0] || "(no message)");
        msg.addEventListener("click", function () { search.value = m[0]; runSearch(); });
        msg.title = "search for this message";
        tr.append(el("td", "num", String(m[1])), msg);
        mt.append(tr);
      });
      errs.append(mt);
    }
    details.append(errs);
  }

  // ---- search -------------------------------------------------------------------------
  const search = document.getElementById("search");
  const info = document.getElementById("search-info");

  function runSearch() {
    const q = search.value.trim().toLowerCase();
    if (!q) { clearSearch(); return; }
    const matches = new Set(), edgeHits = new Map();
    let total = 0, taken = 0;
    const take = function () { total++; if (taken < MAX_MATCHES) { taken++; return true; } return false; };
    nodes.forEach(function (n) {
      if (stateRowMatches(n, q) && take()) matches.add(n.id);
      n.edges.forEach(function (e) {
        if (isEdgeRow(e) && edgeRowMatches(e, q) && take()) {
          if (!edgeHits.has(n.id)) edgeHits.set(n.id, new Set());
          edgeHits.get(n.id).add(e);
        }
      });
    });
    const kept = new Set(), opened = new Set([0]);
    const keep = function (id) {
      for (let n = id; n !== null && !kept.has(n); n = nodes.get(n).parent) {
        kept.add(n);
        if (nodes.get(n).parent !== null) opened.add(nodes.get(n).parent);
      }
    };
    matches.forEach(keep);
    edgeHits.forEach(function (_, id) { keep(id); opened.add(id); });
    filter = { query: q, matches: matches, kept: kept, edgeHits: edgeHits };
    info.textContent = total === 0 ? "no match" :
      total > taken ? "showing the first " + taken + " of " + total + " matching rows" :
      total + " matching row" + (total > 1 ? "s" : "");
    // Open parents before children.
    build(Array.from(opened).sort(function (a, b) { return levelOf(a) - levelOf(b); }));
    const first = treeEl.querySelector(".row.match");
    if (first) first.scrollIntoView({ block: "nearest" });
  }

  function clearSearch() {
    if (!filter && !search.value) return;
    filter = null;
    search.value = "";
    info.textContent = "";
    build(startOpenIds());
  }

  let timer = null;
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(runSearch, 200); });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { clearSearch(); search.blur(); }
    if (ev.key === "Enter") { clearTimeout(timer); runSearch(); search.blur(); moveTo(treeEl.querySelector(".row.match")); }
  });

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
  const deepest = ov.deepest.length ? ov.deepest[0][0] : null;
  if (!data.proof.length) {
    // No proof: the button opens the way to the deepest open state instead (the page opens on
    // the ways to it and to the most promising state).
    showProof.textContent = "Open deepest path";
    showProof.disabled = deepest === null;
  }
  showProof.addEventListener("click", function () {
    clearSearch();
    if (!data.proof.length) { reveal(deepest); return; }
    proofOpenIds().forEach(function (id) { toggle(id, true); });
    reveal(data.proof[data.proof.length - 1][0]);
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    filter = null; search.value = ""; info.textContent = "";
    build([0]);
    select(0, items.get(0).row);
  });
  document.getElementById("show-overview").addEventListener("click", showOverview);
  document.getElementById("hide-failed").addEventListener("change", function (ev) {
    document.body.classList.toggle("hide-failed", ev.target.checked);
  });

  build(startOpenIds());
  showOverview();
})();

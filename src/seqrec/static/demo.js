// seqrec demo page: search items by title, click them into a session (or baskets),
// see the recommendations update. Plain JS, no build step; talks only to this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, session: [], baskets: [[]], titles: new Map(), seq: 0 };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function itemRow(id, title, extra) {
  const li = el("li");
  li.dataset.itemId = String(id);
  if (extra && extra.rank !== undefined) li.append(el("span", "rank", String(extra.rank)));
  li.append(el("span", "title", title || String(id)));
  li.append(el("span", "id", "#" + id));
  if (extra && extra.score !== undefined) li.append(el("span", "score", extra.score.toFixed(4)));
  return li;
}

async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

function isBasketModel() {
  return state.model && state.model.task === "next-basket";
}

function addItem(id, title) {
  if (title) state.titles.set(String(id), title);
  if (isBasketModel()) state.baskets[state.baskets.length - 1].push(id);
  else state.session.push(id);
  renderSession();
  refresh();
}

function removeAt(bi, i) {
  if (isBasketModel()) state.baskets[bi].splice(i, 1);
  else state.session.splice(i, 1);
  renderSession();
  refresh();
}

function renderSession() {
  const ol = $("session");
  ol.replaceChildren();
  const groups = isBasketModel() ? state.baskets : [state.session];
  let n = 0;
  groups.forEach((items, bi) => {
    if (isBasketModel()) ol.append(el("li", "basket-sep", "basket " + (bi + 1)));
    items.forEach((id, i) => {
      const li = itemRow(id, state.titles.get(String(id)));
      const x = el("button", "remove", "×");
      x.title = "remove";
      x.addEventListener("click", () => removeAt(bi, i));
      li.append(x);
      ol.append(li);
      n += 1;
    });
  });
  $("session-count").textContent = n ? "(" + n + " items)" : "(empty)";
}

async function refresh() {
  const seq = ++state.seq;
  const k = Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));
  const body = { k: k, exclude_seen: $("exclude-seen").checked, titles: true };
  if (isBasketModel()) body.baskets = state.baskets.filter((b) => b.length);
  else body.items = state.session;
  let res;
  try {
    res = await getJSON("/v1/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    if (seq === state.seq) $("note").textContent = "error: " + e.message;
    return;
  }
  if (seq !== state.seq) return; // a newer request is on its way
  const r = res.results[0];
  const ol = $("recs");
  ol.replaceChildren();
  r.items.forEach((id, i) => {
    const title = r.titles ? r.titles[i] : null;
    if (title) state.titles.set(String(id), title);
    const li = itemRow(id, title, { rank: i + 1, score: r.scores[i] });
    li.addEventListener("click", () => addItem(id, title));
    ol.append(li);
  });
  const notes = [];
  if (r.empty_history) notes.push("empty history: these are the model's answer for no history");
  if (r.unknown_items.length) notes.push("ignored unknown items: " + r.unknown_items.join(", "));
  $("note").textContent = notes.join(" · ");
}

let searchTimer = null;
async function search() {
  const q = $("search").value;
  let res;
  try {
    res = await getJSON("/v1/items?limit=15&q=" + encodeURIComponent(q));
  } catch (e) {
    return;
  }
  if ($("search").value !== q) return;
  const ul = $("search-results");
  ul.replaceChildren();
  res.items.forEach((it) => {
    const li = itemRow(it.item_id, it.title);
    li.addEventListener("click", () => addItem(it.item_id, it.title));
    ul.append(li);
  });
}

async function init() {
  try {
    state.model = await getJSON("/v1/model");
    const m = state.model;
    $("model-meta").textContent =
      m.model + " · " + m.task + " · " + m.n_items.toLocaleString() + " items · version " +
      m.model_version + (m.has_titles ? "" : " · no titles: ids shown");
  } catch (e) {
    $("model-meta").textContent = "model unavailable: " + e.message;
    return;
  }
  $("new-basket").hidden = !isBasketModel();
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 120);
  });
  $("clear").addEventListener("click", () => {
    state.session = [];
    state.baskets = [[]];
    renderSession();
    refresh();
  });
  $("new-basket").addEventListener("click", () => {
    if (state.baskets[state.baskets.length - 1].length) state.baskets.push([]);
    renderSession();
  });
  $("k").addEventListener("change", refresh);
  $("exclude-seen").addEventListener("change", refresh);
  renderSession();
  search();
  refresh();
}

init();

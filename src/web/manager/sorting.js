// The phone table's order: sort keys per column, placing rows (all, or only those that moved).
import { CALL_RANK, RESORT_INCREMENTAL_MAX, RESORT_MIN_MS } from './constants.js';
import { dom } from './dom.js';
import { displayName, registrationWord, subscriberOf, vendorLabel } from './model.js';
import { dirty, flush, schedule, state } from './store.js';
import { ipKey, natural, str } from './util.js';

var sortCol = 'name', sortDir = 1;
var lastResortAt = -1e9;

function sortValue(p, col) {
  var s = p.state || {}, info = p.info || {}, sub;
  switch (col) {
    case 'name': return natural(displayName(p));
    case 'subscriber':
      sub = subscriberOf(p);
      return sub ? natural(str(sub.name) || str(sub.extension)) + '\u0000' + natural(str(sub.department)) : '';
    case 'phone-id': return p.id.toLowerCase();
    case 'vendor': return natural([vendorLabel(info.vendor ? str(info.vendor) : ''), str(info.model)].filter(Boolean).join(' '));
    case 'ip': return ipKey(str(info.ip));
    case 'firmware': return natural(str(info.firmware));
    case 'availability': return p.availability === 'online' ? '0' : p.availability === 'offline' ? '2' : (p.availability ? '1' + p.availability : '');
    case 'registration': var r = registrationWord(p.state); return r === 'registered' ? '0' : r === 'unregistered' ? '1' : '';
    case 'call-state':
      var cs = typeof s.call_state === 'string' ? s.call_state : '';
      return cs ? (CALL_RANK[cs] || '5') + cs : '';
    case 'remote': return natural(str(s.remote_name) || str(s.remote));
    case 'dnd': return s.dnd === true ? '0' : s.dnd === false ? '1' : '';
    case 'last-seen':
      var t = s.last_seen ? Date.parse(s.last_seen) : NaN;
      return isNaN(t) ? '' : ('000000000000000' + t).slice(-15);
    default: return '';
  }
}
export function updateSortKey(p) {
  var v = sortValue(p, sortCol), tie = natural(displayName(p)) + '\u0000' + p.id;
  if (v !== p.sortVal || tie !== p.tie) { p.sortVal = v; p.tie = tie; dirty.resort.add(p); }
}
// Blank values last in both directions; ties by name, then id.
function cmp(a, b) {
  var x = a.sortVal, y = b.sortVal;
  if (x !== y) {
    if (x === '') return 1;
    if (y === '') return -1;
    return (x < y ? -1 : 1) * sortDir;
  }
  return a.tie < b.tie ? -1 : (a.tie > b.tie ? 1 : (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
function sortRows() {
  dirty.sortAll = false;
  dirty.resort.clear();
  state.order = [];
  state.phones.forEach(function (p) { if (p.row) { state.order.push(p); p.inOrder = true; } });
  state.order.sort(cmp);
  var node = dom.phones.firstElementChild, inOrder = true;
  for (var i = 0; i < state.order.length; i++) {
    if (node !== state.order[i].row) { inOrder = false; break; }
    node = node.nextElementSibling;
  }
  if (inOrder && !node) return;
  var focused = document.activeElement;
  var frag = document.createDocumentFragment();
  state.order.forEach(function (p) { frag.appendChild(p.row); });
  dom.phones.appendChild(frag);
  if (focused && focused !== document.activeElement && dom.phones.contains(focused)) focused.focus({ preventScroll: true });
}
// A few rows changed place: take them out and put each back by binary search, moving only them.
function resortRows() {
  var moved = [];
  dirty.resort.forEach(function (p) { if (p.row && state.phones.get(p.id) === p) moved.push(p); });
  dirty.resort.clear();
  moved.forEach(function (p) {
    if (!p.inOrder) return;
    var i = state.order.indexOf(p);
    if (i !== -1) state.order.splice(i, 1);
    p.inOrder = false;
  });
  var focused = document.activeElement;
  moved.forEach(function (p) {
    var lo = 0, hi = state.order.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (cmp(state.order[mid], p) <= 0) lo = mid + 1; else hi = mid; }
    state.order.splice(lo, 0, p);
    p.inOrder = true;
    var ref = lo + 1 < state.order.length ? state.order[lo + 1].row : null;
    if (p.row.parentNode !== dom.phones || p.row.nextElementSibling !== ref) dom.phones.insertBefore(p.row, ref);
  });
  if (focused && focused !== document.activeElement && dom.phones.contains(focused)) focused.focus({ preventScroll: true });
}
// The frame's step that puts rows in place.
export function placeRows(t0) {
  if (dirty.sortAll) sortRows();
  else if (dirty.resort.size) {
    // moving rows is the costly part of a render: under traffic, rows change places at a
    // readable pace; a new row is always placed at once
    var due = t0 - lastResortAt >= RESORT_MIN_MS;
    if (!due) dirty.resort.forEach(function (p) { if (!p.inOrder) due = true; });
    if (!due) schedule();
    else {
      lastResortAt = t0;
      if (dirty.resort.size > RESORT_INCREMENTAL_MAX) sortRows(); else resortRows();
    }
  }
}
function setSort(col) {
  if (col === sortCol) sortDir = -sortDir;
  else { sortCol = col; sortDir = 1; }
  dom.thead.querySelectorAll('th[data-sort]').forEach(function (th) {
    if (th.dataset.sort === sortCol) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  });
  state.phones.forEach(function (p) { if (p.row) updateSortKey(p); });
  dirty.sortAll = true;
  flush();
}

export function wire() {
  dom.thead.addEventListener('click', function (e) {
    var th = e.target.closest('th[data-sort]');
    if (th) setSort(th.dataset.sort);
  });
}


// The phone list's search and filters, and the vendor and group choices they offer.
import { dom } from './dom.js';
import { vendorLabel } from './model.js';
import { renderTargetOptions } from './reminders.js';
import { dirty, flush, state } from './store.js';
import { el, matches, natural } from './util.js';

export function currentFilter() {
  var f = {
    vendor: dom.filterVendor.value, group: dom.filterGroup.value,
    online: dom.filterOnline.checked, incall: dom.filterIncall.checked, dnd: dom.filterDnd.checked
  };
  f.any = !!(f.vendor || f.group || f.online || f.incall || f.dnd);
  return f;
}
function rowVisible(p, ts, f) {
  if (f.vendor && p.vendorId !== f.vendor) return false;
  if (f.group && p.groups.indexOf(f.group) === -1) return false;
  if (f.online && p.availability !== 'online') return false;
  if (f.incall && !p.inCall) return false;
  if (f.dnd && !p.dndOn) return false;
  return ts.length === 0 || matches(p.search, ts);
}
export function applyRowFilter(p, ts, f) {
  if (!p.row) return;
  var show = rowVisible(p, ts, f);
  if (p.visible !== show) { p.visible = show; dirty.selection = true; }
  if (p.row.hidden === show) p.row.hidden = !show;
}
export function allGroups() {
  var set = new Map();
  state.phones.forEach(function (p) { p.groups.forEach(function (g) { if (!set.has(g)) set.set(g, g); }); });
  return Array.from(set.keys()).sort(function (a, b) { return natural(a) < natural(b) ? -1 : natural(a) > natural(b) ? 1 : 0; });
}
function fillSelect(select, head, items) {   // items: [[value, label]]
  var key = JSON.stringify(items);
  if (select._key === key) return false;
  select._key = key;
  var keep = select.value;
  select.replaceChildren(el('option', { value: '', text: head }));
  items.forEach(function (it) { select.append(el('option', { value: it[0], text: it[1] })); });
  var still = items.some(function (it) { return it[0] === keep; });
  select.value = still ? keep : '';
  return keep !== '' && !still;
}
// Vendor and group choices; returns true when an active filter value disappeared.
export function renderOptions() {
  var vs = new Set();
  state.vendors.forEach(function (v, id) { vs.add(id); });
  state.phones.forEach(function (p) { if (p.vendorId) vs.add(p.vendorId); });
  var vendorItems = Array.from(vs).map(function (id) { return [id, vendorLabel(id)]; })
    .sort(function (a, b) { return a[1].toLowerCase() < b[1].toLowerCase() ? -1 : 1; });
  var groups = allGroups();
  var groupItems = groups.map(function (g) { return [g, g]; });
  var lost = fillSelect(dom.filterVendor, 'All vendors', vendorItems);
  lost = fillSelect(dom.filterGroup, 'All groups', groupItems) || lost;
  dom.selectGroup.value = '';
  fillSelect(dom.selectGroup, groups.length ? 'Select group\u2026' : 'No groups', groupItems);
  dom.selectGroup.disabled = groups.length === 0;
  renderTargetOptions();
  return lost;
}

export function wire() {
  function onFilterChange() { dirty.filter = true; flush(); }
  dom.search.addEventListener('input', onFilterChange);
  [dom.filterVendor, dom.filterGroup, dom.filterOnline, dom.filterIncall, dom.filterDnd].forEach(function (c) {
    c.addEventListener('change', onFilterChange);
  });
  dom.filterClear.addEventListener('click', function () {
    dom.filterVendor.value = ''; dom.filterGroup.value = '';
    dom.filterOnline.checked = dom.filterIncall.checked = dom.filterDnd.checked = false;
    onFilterChange();
  });
}

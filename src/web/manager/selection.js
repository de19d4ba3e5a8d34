// Ticking phones for bulk commands: one, a range (shift), the visible ones, a group.
import { dom } from './dom.js';
import { dirty, state } from './store.js';
import { setData, setText } from './util.js';

function setChecked(p, on) {
  if (on) state.checked.add(p.id); else state.checked.delete(p.id);
  if (p.check && p.check.checked !== on) p.check.checked = on;
  if (p.row) p.row.classList.toggle('checked', on);
  dirty.selection = true;
}
export function updateSelectionUi() {
  dirty.selection = false;
  var visible = 0, visChecked = 0, hiddenChecked = 0;
  for (var i = 0; i < state.order.length; i++) {
    var p = state.order[i];
    if (p.visible) { visible++; if (state.checked.has(p.id)) visChecked++; }
    else if (state.checked.has(p.id)) hiddenChecked++;
  }
  var n = state.checked.size;
  dom.selectAll.checked = visible > 0 && visChecked === visible;
  dom.selectAll.indeterminate = visChecked > 0 && visChecked < visible;
  dom.selectAll.disabled = visible === 0;
  setText(dom.selectedCount, n + ' selected' + (hiddenChecked ? ' (' + hiddenChecked + ' hidden by filters)' : ''));
  setData(dom.selectedCount, 'count', String(n));
  setData(dom.selectedCount, 'hidden', hiddenChecked ? String(hiddenChecked) : '');
  if (n) { if ('empty' in dom.bulk.dataset) delete dom.bulk.dataset.empty; }
  else dom.bulk.dataset.empty = '';
  dom.selectNone.disabled = n === 0;
  dom.bulk.querySelectorAll('button[data-bulk]').forEach(function (b) { b.disabled = n === 0; });
}
var lastCheckedId = null;
export function onRowCheck(p, on, range) {
  if (range && lastCheckedId && lastCheckedId !== p.id) {
    var a = state.order.findIndex(function (q) { return q.id === lastCheckedId; });
    var b = state.order.indexOf(p);
    if (a !== -1 && b !== -1) {
      for (var i = Math.min(a, b); i <= Math.max(a, b); i++) if (state.order[i].visible) setChecked(state.order[i], on);
    }
  }
  setChecked(p, on);
  lastCheckedId = p.id;
  updateSelectionUi();
}
function checkVisible(on) {
  state.order.forEach(function (p) { if (p.visible) setChecked(p, on); });
  updateSelectionUi();
}
function checkGroup(g) {
  state.phones.forEach(function (p) { setChecked(p, p.groups.indexOf(g) !== -1); });
  updateSelectionUi();
}
function checkNone() {
  state.phones.forEach(function (p) { if (state.checked.has(p.id)) setChecked(p, false); });
  state.checked.clear();
  updateSelectionUi();
}

export function wire() {
  dom.selectAll.addEventListener('change', function () { checkVisible(dom.selectAll.checked); });
  dom.selectGroup.addEventListener('change', function () {
    var g = dom.selectGroup.value;
    if (g) checkGroup(g);
    dom.selectGroup.value = '';
  });
  dom.selectNone.addEventListener('click', checkNone);
}

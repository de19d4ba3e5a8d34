// One frame: the order in which the panels draw what the store marked dirty.
import { renderBulkProgress } from './bulk.js';
import { MANY_PHONES } from './constants.js';
import { renderDirectory, renderImportStatus } from './directory.js';
import { dom } from './dom.js';
import { applyRowFilter, currentFilter, renderOptions } from './filters.js';
import { renderHeader } from './header.js';
import { flushLog } from './log.js';
import { updateRow, updateSummary } from './phone-list.js';
import { renderDetail, select } from './phone-panel.js';
import { renderReminderFormStatus, renderReminders, renderTargetOptions } from './reminders.js';
import { updateSelectionUi } from './selection.js';
import { placeRows } from './sorting.js';
import { dirty, state } from './store.js';
import { terms } from './util.js';

export function renderFrame(t0) {
  var ts = terms(dom.search.value), f = currentFilter();
  var rowsChanged = dirty.rows.size > 0 || dirty.filter || dirty.sortAll || dirty.resort.size > 0;
  dirty.rows.forEach(function (id) { var p = state.phones.get(id); if (p) updateRow(p, ts, f); });
  dirty.rows.clear();
  if (dirty.options) { dirty.options = false; if (renderOptions()) { dirty.filter = true; f = currentFilter(); } }
  if (dirty.filter) {
    dirty.filter = false;
    state.phones.forEach(function (p) { applyRowFilter(p, ts, f); });
    dom.filterClear.hidden = !f.any;
  }
  placeRows(t0);
  if (state.wantedId && state.phones.has(state.wantedId)) { var w = state.wantedId; state.wantedId = null; select(w, false); }
  if (rowsChanged) {
    updateSummary();
    var many = state.phones.size > MANY_PHONES;
    if (dom.table.classList.contains('many') !== many) dom.table.classList.toggle('many', many);
  }
  if (dirty.selection) updateSelectionUi();
  if (dirty.detail) renderDetail();
  if (dirty.header) { dirty.header = false; renderHeader(); }
  if (state.renderedNamesGen !== state.namesGen) {
    state.renderedNamesGen = state.namesGen;
    dirty.directory = true; dirty.reminders = true; renderTargetOptions();
  }
  if (dirty.bulk) renderBulkProgress();
  if (dirty.directory) renderDirectory();
  if (dirty.importStatus) renderImportStatus();
  if (dirty.reminders) renderReminders();
  if (dirty.reminderForm) renderReminderFormStatus();
  flushLog();
}

// The phone list: one table row per phone, kept up to date cell by cell, and the summary above it.
import { COLUMNS, DEFAULT_TITLE, IN_CALL } from './constants.js';
import { dom } from './dom.js';
import { applyRowFilter, currentFilter } from './filters.js';
import { displayName, linesText, registrationWord, subscriberOf, vendorLabel } from './model.js';
import { select } from './phone-panel.js';
import { onRowCheck } from './selection.js';
import { updateSortKey } from './sorting.js';
import { dirty, markDirty, schedule, state } from './store.js';
import { el, fmtLastSeen, fmtRemote, setData, setText, setTitle, str } from './util.js';

function createRow(p) {
  var tr = el('tr', { 'data-phone': p.id, tabindex: '0', role: 'row' });
  var cells = {};
  p.check = el('input', { type: 'checkbox', class: 'select-phone', 'aria-label': 'Select ' + p.id });
  p.check.checked = state.checked.has(p.id);
  tr.appendChild(el('td', { class: 'select', role: 'cell' }, p.check));
  COLUMNS.forEach(function (c) { var td = el('td', { class: c, role: 'cell' }); cells[c] = td; tr.appendChild(td); });
  p.nameText = el('span', { class: 'name-text' });
  p.badge = el('span', { class: 'badge unconfigured-badge', title: 'Not in the gateway configuration', text: 'unconfigured', hidden: true });
  p.driftBadge = el('span', { class: 'badge drift-badge', title: 'Its configuration differs from what the agent serves it: open it for the drift', text: 'drift', hidden: true });
  cells.name.append(p.nameText, ' ', p.badge, ' ', p.driftBadge);
  p.row = tr; p.cells = cells;
  if (state.checked.has(p.id)) tr.classList.add('checked');
  if (p.id === state.selectedId) { tr.classList.add('selected'); tr.setAttribute('aria-selected', 'true'); }
  p.inOrder = false;
  dirty.resort.add(p);   // placed by the sort step
  dirty.selection = true;
}

export function updateRow(p, ts, f) {
  if (!p.row) createRow(p);
  var tr = p.row, c = p.cells;
  var s = p.state || {}, info = p.info || {};
  var hasName = info.name != null && info.name !== '';
  var name = displayName(p);

  setText(p.nameText, name);
  p.nameText.classList.toggle('is-id', !hasName);
  setTitle(c.name, name);
  var unconfigured = !!p.info && info.configured === false;
  p.badge.hidden = !unconfigured;
  var drifted = !!p.provisioning && p.provisioning.in_sync === false;
  p.driftBadge.hidden = !drifted;
  tr.classList.toggle('drifted', drifted);
  tr.classList.toggle('unconfigured', unconfigured);
  setData(tr, 'configured', p.info ? String(info.configured !== false) : '');
  var checkLabel = 'Select ' + name;
  if (p.check.getAttribute('aria-label') !== checkLabel) p.check.setAttribute('aria-label', checkLabel);

  var sub = subscriberOf(p);
  var subName = sub ? str(sub.name) : '', subDept = sub ? str(sub.department) : '', subExt = sub ? str(sub.extension) : '';
  var subKey = sub ? subName + '\u0000' + subDept + '\u0000' + subExt : '';
  if (c.subscriber._key !== subKey) {
    c.subscriber._key = subKey;
    c.subscriber.replaceChildren();
    if (sub) {
      c.subscriber.append(el('span', { class: 'sub-name', text: subName || (subExt ? 'ext ' + subExt : '') }));
      if (subDept) c.subscriber.append(el('span', { class: 'sub-sep', text: ' \u00b7 ' }), el('span', { class: 'sub-dept', text: subDept }));
    }
    setTitle(c.subscriber, sub ? [subName, subDept, subExt ? 'extension ' + subExt : ''].filter(Boolean).join(' \u00b7 ') : '');
    setData(c.subscriber, 'extension', subExt);
  }

  setText(c['phone-id'], p.id);
  var vendorId = info.vendor ? str(info.vendor) : '';
  var vendor = vendorLabel(vendorId);
  var model = str(info.model);
  setText(c.vendor, [vendor, model].filter(Boolean).join(' '));
  setData(c.vendor, 'vendor', vendorId);
  setText(c.ip, str(info.ip));
  setText(c.firmware, str(info.firmware));

  var avail = p.availability || '';
  setText(c.availability, avail);
  setData(c.availability, 'value', avail);
  setData(tr, 'availability', avail);
  tr.classList.toggle('offline', avail === 'offline');

  var reg = registrationWord(p.state);
  setText(c.registration, reg);
  setData(c.registration, 'value', reg);
  setTitle(c.registration, linesText(p.state));

  var call = typeof s.call_state === 'string' ? s.call_state : '';
  setText(c['call-state'], call);
  setData(c['call-state'], 'value', call);
  setData(tr, 'callState', call);
  tr.classList.toggle('ringing', call === 'ringing');
  tr.classList.toggle('in-call', !!IN_CALL[call]);

  var rNum = str(s.remote), rName = str(s.remote_name);
  var rKey = rName + '\u0000' + rNum;
  if (c.remote._key !== rKey) {
    c.remote._key = rKey;
    c.remote.replaceChildren();
    if (rName) c.remote.append(el('span', { class: 'remote-name', text: rName }));
    if (rName && rNum && rName !== rNum) c.remote.append(' ');
    if (rNum && rNum !== rName) c.remote.append(el('span', { class: rName ? 'remote-number' : 'remote-number plain', text: rNum }));
    c.remote.title = fmtRemote(rNum, rName);
  }

  var dnd = typeof s.dnd === 'boolean' ? (s.dnd ? 'on' : 'off') : '';
  setText(c.dnd, dnd);
  setData(c.dnd, 'value', dnd);

  setText(c['last-seen'], fmtLastSeen(s.last_seen));
  setTitle(c['last-seen'], s.last_seen ? str(s.last_seen) : '');

  // what filters, options, the directory and reminders need to know
  if (vendorId !== p.vendorId) { p.vendorId = vendorId; dirty.options = true; }
  var groups = Array.isArray(info.groups) ? info.groups.map(str).filter(Boolean) : [];
  var gk = groups.join('\u0000');
  if (gk !== p.groupsKey) { p.groupsKey = gk; p.groups = groups; dirty.options = true; }
  p.inCall = !!IN_CALL[call];
  p.dndOn = s.dnd === true;
  var nk = name + '\u0000' + subKey;
  if (nk !== p.namesKey) { p.namesKey = nk; state.namesGen++; }

  updateSortKey(p);

  p.search = [p.id, info.mac, info.name, info.vendor, vendor, model, info.firmware, info.ip, info.agent,
    avail, reg, call, rNum, rName, unconfigured ? 'unconfigured' : '', drifted ? 'drift' : '', s.dnd === true ? 'dnd' : '',
    subName, subDept, subExt, groups.join(' '),
    Array.isArray(s.lines) ? s.lines.map(function (l) { return l && str(l.user); }).join(' ') : ''
  ].map(str).join(' ').toLowerCase();
  applyRowFilter(p, ts, f);
}

function removePhone(p) {
  state.phones.delete(p.id);
  dirty.rows.delete(p.id);
  dirty.resort.delete(p);
  if (p.inOrder) { var i = state.order.indexOf(p); if (i !== -1) state.order.splice(i, 1); p.inOrder = false; }
  if (p.row) p.row.remove();
  p.results.forEach(function (r) { if (r.tx && state.txIndex.get(r.tx) === r) state.txIndex.delete(r.tx); });
  if (state.selectedId === p.id) { state.selectedId = null; dirty.detail = true; }
  if (state.checked.delete(p.id)) dirty.selection = true;
  state.namesGen++;
  dirty.options = true;
  dirty.selection = true;
  schedule();
}
export function maybeRemove(p) {
  if (!p.state && !p.info && p.availability == null) removePhone(p);
  else markDirty(p);
}

export function updateSummary() {
  var total = state.phones.size, visible = 0, online = 0, ringing = 0;
  state.phones.forEach(function (p) {
    if (p.row && p.visible) visible++;
    if (p.availability === 'online') online++;
    if (p.state && p.state.call_state === 'ringing') ringing++;
  });
  var parts = [];
  parts.push(visible === total ? total + (total === 1 ? ' phone' : ' phones') : visible + ' of ' + total + ' phones');
  if (total) parts.push(online + ' online');
  if (ringing) parts.push(ringing + ' ringing');
  setText(dom.phoneCount, parts.join(' \u00b7 '));
  dom.phonesEmpty.hidden = total > 0 && visible > 0;
  var filtered = dom.search.value.trim() || currentFilter().any;
  setText(dom.phonesEmpty, total === 0 ? 'No phones yet. Waiting for the gateway\u2026'
    : (filtered ? 'No phone matches the search and filters.' : 'No phone matches the search.'));
  var title = ringing ? '(' + ringing + ' ringing) ' + DEFAULT_TITLE : DEFAULT_TITLE;
  if (document.title !== title) document.title = title;
}

export function wire() {
  function isFormControl(t) { return t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'BUTTON' || t.tagName === 'TEXTAREA'); }
  dom.phones.addEventListener('click', function (e) {
    var tr = e.target.closest('tr[data-phone]');
    if (!tr) return;
    var p = state.phones.get(tr.dataset.phone);
    if (e.target.classList.contains('select-phone')) {
      if (p) onRowCheck(p, e.target.checked, e.shiftKey);
      return;
    }
    if (e.target.closest('td.select')) {   // the cell around the box toggles it too
      if (p) onRowCheck(p, !state.checked.has(p.id), e.shiftKey);
      return;
    }
    select(tr.dataset.phone, false);
  });
  dom.phones.addEventListener('keydown', function (e) {
    var tr = e.target.closest('tr[data-phone]');
    if (!tr || isFormControl(e.target)) return;
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(tr.dataset.phone, false); return; }
    if (e.key === 'x' && !e.ctrlKey && !e.metaKey && !e.altKey) {
      var p = state.phones.get(tr.dataset.phone);
      if (p) { e.preventDefault(); onRowCheck(p, !state.checked.has(p.id), false); }
      return;
    }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      var n = tr;
      do { n = e.key === 'ArrowDown' ? n.nextElementSibling : n.previousElementSibling; } while (n && n.hidden);
      if (n) { e.preventDefault(); select(n.dataset.phone, true); }
    }
  });
}

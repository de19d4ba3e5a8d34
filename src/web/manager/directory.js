// The subscriber directory panel: the CSV import, the subscribers, phones without one and
// subscribers without a phone.
import { MAX_IMPORT_BYTES } from './constants.js';
import { dom } from './dom.js';
import { addLog, miscEntry } from './log.js';
import { answerOf, displayName, newTx } from './model.js';
import { revealPhone } from './phone-panel.js';
import { send, settle, touchRec } from './sending.js';
import { dirty, schedule, state, update } from './store.js';
import { asObject, el, hideUnmatched, setData, setText, str, terms } from './util.js';

var lastImport = null;           // last directory import result shown

export function onDirectory(payload) {
  var v = asObject(payload);
  if (v === undefined) return;
  update(function (s, d) { s.directory = v; d.directory = true; });
}
export function onDirectoryResult(payload) {
  var r = asObject(payload);
  if (!r) return;
  var a = answerOf(r), tx = a.tx, status = a.status, error = a.error;
  var rec = tx ? state.txIndex.get(tx) : null;
  if (rec && rec.kind === 'directory') settle(rec, status, error, r);
  else {
    lastImport = { kind: 'directory', tx: tx, command: 'import', arg: '', status: status, error: error, data: r,
                   own: false, sentAt: new Date(), doneAt: new Date() };
    dirty.importStatus = true; schedule();
  }
  var detail = status === 'ok' ? str(r.subscribers) + ' subscribers, ' + str(r.matched) + ' matched' : error;
  addLog(miscEntry('', 'directory', 'result', 'import', status, detail, tx, null));
}
function importFile() {
  var f = dom.dirFile.files && dom.dirFile.files[0];
  dom.dirFile.classList.remove('invalid');
  if (!f) {
    dom.dirFile.classList.add('invalid');
    lastImport = { kind: 'directory', status: 'error', error: 'Choose a CSV file first.', arg: '', own: true, local: true };
    renderImportStatus();
    return;
  }
  if (f.size > MAX_IMPORT_BYTES) {
    lastImport = { kind: 'directory', status: 'error', error: 'The file is too large (' + Math.round(f.size / 1024) + ' KiB).', arg: f.name, own: true, local: true };
    renderImportStatus();
    return;
  }
  var read = typeof f.text === 'function' ? f.text() : new Promise(function (resolve, reject) {
    var fr = new FileReader();
    fr.onload = function () { resolve(String(fr.result)); };
    fr.onerror = function () { reject(fr.error); };
    fr.readAsText(f);
  });
  var rec = { kind: 'directory', tx: newTx(), command: 'import', arg: f.name, status: 'pending', error: '', data: null,
              sentAt: new Date(), doneAt: null, own: true };
  lastImport = rec;
  renderImportStatus();
  read.then(function (text) {
    if (lastImport !== rec) return;
    send(state.base + '/directory/set', { csv: text, transaction: rec.tx }, rec);
    touchRec(rec);
  }, function (e) {
    settle(rec, 'error', 'the file could not be read: ' + (e && e.message ? e.message : e));
  });
}
export function renderImportStatus() {
  dirty.importStatus = false;
  var r = lastImport, node = dom.dirResult;
  if (!r) { setText(node, ''); setData(node, 'status', ''); return; }
  var text;
  if (r.status === 'pending') text = 'Importing ' + (r.arg || 'the file') + '\u2026';
  else if (r.status === 'ok') {
    var d = r.data || {};
    var n = Number(d.subscribers), m = Number(d.matched);
    text = (r.own ? 'Imported ' : 'Directory imported by another client: ') +
      (isNaN(n) ? '?' : n) + (n === 1 ? ' subscriber' : ' subscribers') + ' \u00b7 ' +
      (isNaN(m) ? '?' : m) + ' matched to phones' + (r.arg ? ' (' + r.arg + ')' : '');
  } else text = (r.local ? '' : 'Import failed: ') + (r.error || r.status);
  setText(node, text);
  setData(node, 'status', r.status);
  setData(node, 'transaction', r.tx || '');
  if (r.data && r.status === 'ok') {
    setData(node, 'subscribers', str(r.data.subscribers)); setData(node, 'matched', str(r.data.matched));
  } else { setData(node, 'subscribers', ''); setData(node, 'matched', ''); }
}
function phoneLink(id) {
  var p = state.phones.get(id);
  return el('span', { class: 'phone-link', 'data-goto': id, title: id, text: p ? displayName(p) : id });
}
export function renderDirectory() {
  dirty.directory = false;
  var d = state.directory || {};
  var subs = Array.isArray(d.subscribers) ? d.subscribers.filter(function (s) { return s && typeof s === 'object'; }) : [];
  var without = Array.isArray(d.phones_without_subscriber) ? d.phones_without_subscriber.map(str) : [];
  var noPhone = Array.isArray(d.subscribers_without_phone) ? d.subscribers_without_phone.map(str) : [];
  var byExt = new Map();
  subs.forEach(function (s) { byExt.set(str(s.extension), s); });
  var matched = subs.filter(function (s) { return Array.isArray(s.phones) && s.phones.length; }).length;
  setText(dom.dirCount, state.directory ? subs.length + (subs.length === 1 ? ' subscriber' : ' subscribers') + ' \u00b7 ' + matched + ' matched' : '');
  setText(dom.subCount, subs.length ? '(' + subs.length + ')' : '');
  setText(dom.noSubCount, '(' + without.length + ')');
  setText(dom.noPhoneCount, '(' + noPhone.length + ')');
  dom.dirEmpty.hidden = subs.length > 0;

  var frag = document.createDocumentFragment();
  subs.forEach(function (s) {
    var ids = Array.isArray(s.phones) ? s.phones.map(str) : [];
    var lp = el('span', { class: 'lp' });
    if (ids.length) ids.forEach(function (id, i) { if (i) lp.append(', '); lp.append(phoneLink(id)); });
    else lp.append('no phone');
    var li = el('li', { 'data-extension': str(s.extension), 'data-phones': ids.join(' ') },
      el('span', { class: 'ext', text: str(s.extension) }),
      el('span', { class: 'ln', text: str(s.name) }),
      el('span', { class: 'ld', text: str(s.department) }), lp);
    li._search = [s.extension, s.name, s.department].concat(ids.map(function (id) { var p = state.phones.get(id); return p ? displayName(p) + ' ' + id : id; }))
      .map(str).join(' ').toLowerCase();
    frag.appendChild(li);
  });
  dom.subList.replaceChildren(frag);

  frag = document.createDocumentFragment();
  without.forEach(function (id) {
    var p = state.phones.get(id);
    var li = el('li', { class: 'link', 'data-phone': id, title: 'Show ' + id },
      el('span', { class: 'ln', text: p ? displayName(p) : id }),
      p && displayName(p) !== id ? el('span', { class: 'mono', text: id }) : null);
    li._search = (id + ' ' + (p ? displayName(p) : '')).toLowerCase();
    frag.appendChild(li);
  });
  dom.noSub.replaceChildren(frag);

  frag = document.createDocumentFragment();
  noPhone.forEach(function (ext) {
    var s = byExt.get(ext) || {};
    var li = el('li', { 'data-extension': ext },
      el('span', { class: 'ext', text: ext }),
      el('span', { class: 'ln', text: str(s.name) }),
      el('span', { class: 'ld', text: str(s.department) }));
    li._search = [ext, s.name, s.department].map(str).join(' ').toLowerCase();
    frag.appendChild(li);
  });
  dom.noPhone.replaceChildren(frag);
  applyDirectoryFilter();
}
function applyDirectoryFilter() {
  var ts = terms(dom.dirFilter.value);
  [dom.subList, dom.noSub, dom.noPhone].forEach(function (list) { hideUnmatched(list, ts); });
}

export function wire() {
  dom.dirImport.addEventListener('click', importFile);
  dom.dirFile.addEventListener('change', function () {
    dom.dirFile.classList.remove('invalid');
    if (lastImport && lastImport.local) { lastImport = null; renderImportStatus(); }
  });
  dom.dirFilter.addEventListener('input', applyDirectoryFilter);
  [dom.subList, dom.noSub].forEach(function (list) {
    list.addEventListener('click', function (e) {
      var t = e.target.closest('[data-goto]') || (list === dom.noSub ? e.target.closest('li[data-phone]') : null);
      if (t) revealPhone(t.dataset.goto || t.dataset.phone);
    });
  });
}

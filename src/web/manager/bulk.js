// Bulk commands to the ticked phones, and the progress list of the last bulk job.
import { BULK } from './constants.js';
import { dom } from './dom.js';
import { displayName, scheduledText, subscriberText } from './model.js';
import { revealPhone } from './phone-panel.js';
import { sendPhoneCommand } from './sending.js';
import { dirty, flush, state } from './store.js';
import { clock, el, readSchedule, setData, setText, str } from './util.js';

var bulkJob = null, bulkCounter = 0;

export function bulkNote(text) { setText(dom.bulkNote, text || ''); }
function runBulk(command, value) {
  bulkNote('');
  var targets = state.order.filter(function (p) { return state.checked.has(p.id); });
  if (!targets.length) return;
  var arg = BULK[command], when = null;
  if (command === 'message') {
    value = dom.bulkText.value.trim();
    if (!value) { dom.bulkText.classList.add('invalid'); dom.bulkText.focus(); bulkNote('Enter the message text.'); return; }
    when = readSchedule(dom.bulkAt, dom.bulkIn);
    if (!when.ok) { bulkNote(when.error); return; }
  }
  if (command === 'reboot') {
    var n = targets.length;
    if (!window.confirm('Reboot ' + n + (n === 1 ? ' phone' : ' phones') + '?\n\n' +
        (n === 1 ? 'It' : 'They') + ' will be unavailable for a minute or two, and calls in progress are cut off.')) return;
  }
  var job = { id: ++bulkCounter, command: command, value: value == null ? '' : String(value), when: when && when.label || '',
              started: new Date(), items: [] };
  targets.forEach(function (p) {
    var rec = sendPhoneCommand(p.id, command, arg, value, when, { bulk: job });
    if (rec) job.items.push({ phone: p.id, rec: rec, li: null, key: '' });
  });
  bulkJob = job;
  if (when && when.extra && job.items.some(function (it) { return it.rec.status === 'pending'; })) { dom.bulkAt.value = ''; dom.bulkIn.value = ''; }
  buildBulkList();
  dirty.bulk = true;
  flush();
}
function buildBulkList() {
  var job = bulkJob;
  dom.bulkStatus.hidden = !job;
  if (!job) { dom.bulkResults.replaceChildren(); return; }
  setData(dom.bulkStatus, 'job', String(job.id));
  setData(dom.bulkStatus, 'command', job.command);
  setText(dom.bulkTitle, job.command + (job.value ? ' ' + (job.command === 'message' ? '\u201c' + job.value + '\u201d' : job.value) : '') +
    (job.when ? ' (' + job.when + ')' : '') + ' \u2192 ' + job.items.length + (job.items.length === 1 ? ' phone' : ' phones') +
    ' \u00b7 ' + clock(job.started));
  var frag = document.createDocumentFragment();
  job.items.forEach(function (it) {
    var p = state.phones.get(it.phone);
    it.li = el('li', { 'data-phone': it.phone, 'data-transaction': it.rec.tx, 'data-status': it.rec.status, title: it.phone },
      el('span', { class: 'bulk-phone', text: p ? displayName(p) : it.phone }),
      el('span', { class: 'bulk-sub', text: p ? subscriberText(p) : '' }),
      el('span', { class: 'bulk-result' }));
    frag.appendChild(it.li);
  });
  dom.bulkResults.replaceChildren(frag);
}
export function renderBulkProgress() {
  dirty.bulk = false;
  var job = bulkJob;
  if (!job) return;
  var ok = 0, failed = 0, total = job.items.length;
  job.items.forEach(function (it) {
    var r = it.rec;
    if (r.status === 'ok') ok++;
    else if (r.status !== 'pending') failed++;
    var key = r.status + '\u0000' + r.error + '\u0000' + (r.data ? str(r.data) : '');
    if (key === it.key) return;
    it.key = key;
    setData(it.li, 'status', r.status);
    var res = it.li.querySelector('.bulk-result');
    setText(res, r.status === 'pending' ? 'pending\u2026' : r.status);
    var old = it.li.querySelector('.bulk-error, .bulk-info');
    if (old) old.remove();
    var sched = scheduledText(r.data);
    if (r.error) it.li.append(el('span', { class: 'bulk-error', text: r.error }));
    else if (sched) it.li.append(el('span', { class: 'bulk-info', text: sched }));
  });
  var done = ok + failed, pending = total - done;
  var pr = dom.bulkProgress;
  setData(pr, 'done', String(done)); setData(pr, 'total', String(total));
  setData(pr, 'ok', String(ok)); setData(pr, 'failed', String(failed)); setData(pr, 'pending', String(pending));
  setData(pr, 'state', pending ? 'running' : 'done');
  var okPct = total ? (100 * ok / total) : 0, failPct = total ? (100 * failed / total) : 0;
  var parts = [
    el('span', { class: 'bar', 'aria-hidden': 'true' },
      el('span', { style: 'width:' + okPct.toFixed(1) + '%' }),
      el('span', { class: 'bar-failed', style: 'width:' + failPct.toFixed(1) + '%' })),
    el('span', { class: 'p-done', text: done + '/' + total + ' done' }),
    el('span', { class: 'p-ok', text: ok + ' ok' }),
    el('span', { class: 'p-failed', text: failed + ' failed' })];
  if (pending) parts.push(el('span', { class: 'p-pending', text: pending + ' pending\u2026' }));
  pr.replaceChildren.apply(pr, parts);
}

export function wire() {
  dom.bulk.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-bulk]');
    if (b && !b.disabled) runBulk(b.dataset.bulk, b.dataset.value != null ? b.dataset.value : null);
  });
  [dom.bulkText, dom.bulkAt, dom.bulkIn].forEach(function (i) {
    i.addEventListener('input', function () { i.classList.remove('invalid'); if (i !== dom.bulkText) { dom.bulkAt.classList.remove('invalid'); dom.bulkIn.classList.remove('invalid'); } bulkNote(''); });
    i.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { e.preventDefault(); var b = dom.bulk.querySelector('button[data-bulk="message"]'); if (!b.disabled) b.click(); }
    });
  });
  dom.bulkDismiss.addEventListener('click', function () { bulkJob = null; buildBulkList(); });
  dom.bulkResults.addEventListener('click', function (e) {
    var li = e.target.closest('li[data-phone]');
    if (li) revealPhone(li.dataset.phone);
  });
}

// The live log: an entry per event, result or refusal, newest first, with filter and pause.
import { LOG_MAX, LOG_MIN_MS } from './constants.js';
import { dom } from './dom.js';
import { displayName, scheduledText, subscriberText } from './model.js';
import { eventExtras, revealPhone } from './phone-panel.js';
import { schedule, state } from './store.js';
import { clock, el, fmtRemote, hideUnmatched, matches, setText, str, terms } from './util.js';

var pendingLog = [];             // log entries waiting for the next frame (oldest first)
var pauseBuffer = [];            // log entries held back while paused (oldest first)
var lastLogAt = -1e9;

function timeEl(d) {
  return el('time', { class: 'log-time', datetime: d.toISOString(), title: d.toLocaleString(), text: clock(d) });
}
export function eventEntry(p, ev) {
  var remote = fmtRemote(ev.remote, ev.remote_name);
  var extra = eventExtras(ev);
  var sub = subscriberText(p);
  var li = el('li', { class: 'log-entry log-event-entry', 'data-phone': p.id, 'data-kind': 'event', 'data-event': ev.event,
                      title: ev.vars ? str(ev.vars) : null },
    timeEl(ev.time),
    el('span', { class: 'log-phone', title: p.id, text: displayName(p) }),
    el('span', { class: 'log-subscriber', title: sub || null, text: sub }),
    el('span', { class: 'log-event', text: ev.event }),
    el('span', { class: 'log-remote', text: remote }),
    el('span', { class: 'log-extra', text: extra }));
  li._search = [p.id, displayName(p), sub, ev.event, str(ev.remote), str(ev.remote_name), extra, str(ev.call_id)]
    .join(' ').toLowerCase();
  return li;
}
export function resultEntry(p, rec) {
  var statusText = rec.status + (rec.error ? ': ' + rec.error : '');
  var sched = scheduledText(rec.data);
  var sub = subscriberText(p);
  var li = el('li', { class: 'log-entry log-result', 'data-phone': p.id, 'data-kind': 'result', 'data-status': rec.status,
                      'data-transaction': rec.tx || '', 'data-command': rec.command },
    timeEl(rec.doneAt || new Date()),
    el('span', { class: 'log-phone', title: p.id, text: displayName(p) }),
    el('span', { class: 'log-subscriber', title: sub || null, text: sub }),
    el('span', { class: 'log-kind', text: 'result' }),
    el('span', { class: 'log-event', text: rec.command + (rec.arg !== '' ? ' ' + rec.arg : '') }),
    el('span', { class: 'log-status', text: statusText }),
    el('span', { class: 'log-extra', text: [sched, rec.tx || ''].filter(Boolean).join(' \u00b7 ') }));
  li._search = [p.id, displayName(p), sub, 'result', rec.command, rec.arg, statusText, sched, rec.tx || ''].join(' ').toLowerCase();
  return li;
}
// A result that is not about one phone (group, directory import, reminder cancel).
export function miscEntry(phoneAttr, label, kind, command, status, detail, tx, attrs) {
  var statusText = status + (detail ? ': ' + detail : '');
  var props = { class: 'log-entry log-result', 'data-phone': phoneAttr, 'data-kind': kind, 'data-status': status,
                'data-transaction': tx || '', 'data-command': command };
  if (attrs) for (var k in attrs) props[k] = attrs[k];
  var li = el('li', props,
    timeEl(new Date()),
    el('span', { class: 'log-phone', text: label }),
    el('span', { class: 'log-subscriber', text: '' }),
    el('span', { class: 'log-kind', text: kind }),
    el('span', { class: 'log-event', text: command }),
    el('span', { class: 'log-status', text: statusText }),
    el('span', { class: 'log-extra', text: tx || '' }));
  li._search = [label, kind, command, statusText, tx || ''].join(' ').toLowerCase();
  return li;
}
// The gateway refused something this page sent (`{"error"}` on the websocket).
export function refusedEntry(phoneId, topic, rec, text) {
  var ph = phoneId ? state.phones.get(phoneId) : null;
  var li = el('li', { class: 'log-entry log-error', 'data-phone': phoneId, 'data-kind': 'error', 'data-status': 'error', title: topic || null },
    timeEl(new Date()),
    el('span', { class: 'log-phone', title: phoneId || null, text: ph ? displayName(ph) : (phoneId || 'gateway') }),
    el('span', { class: 'log-subscriber', text: ph ? subscriberText(ph) : '' }),
    el('span', { class: 'log-kind', text: 'refused' }),
    el('span', { class: 'log-event', text: rec ? rec.command : topic }),
    el('span', { class: 'log-status', text: text }));
  li._search = [phoneId, ph ? displayName(ph) : '', ph ? subscriberText(ph) : '', 'error refused', topic, text, rec ? rec.tx : ''].join(' ').toLowerCase();
  return li;
}

var logTerms = [];
export function addLog(li) {
  li.hidden = logTerms.length > 0 && !matches(li._search || '', logTerms);
  if (dom.pause.checked) {
    pauseBuffer.push(li);
    if (pauseBuffer.length > LOG_MAX) pauseBuffer.shift();
    setText(dom.pauseCount, pauseBuffer.length + ' new while paused');
    return;
  }
  pendingLog.push(li);
  if (pendingLog.length > LOG_MAX) pendingLog.shift();
  schedule();
}
var logCountDirty = true;
export function flushLog() {
  if (pendingLog.length && performance.now() - lastLogAt < LOG_MIN_MS) { schedule(); return; }   // next render
  if (pendingLog.length) {
    lastLogAt = performance.now();
    var frag = document.createDocumentFragment();
    for (var i = pendingLog.length - 1; i >= 0; i--) frag.appendChild(pendingLog[i]);   // newest first
    pendingLog.length = 0;
    dom.log.prepend(frag);
    while (dom.log.childElementCount > LOG_MAX) dom.log.lastElementChild.remove();
    logCountDirty = true;
  }
  if (logCountDirty) updateLogCount();
}
export function updateLogCount() {
  logCountDirty = false;
  var total = dom.log.childElementCount, shown = total;
  if (logTerms.length) { shown = 0; for (var n = dom.log.firstElementChild; n; n = n.nextElementSibling) if (!n.hidden) shown++; }
  setText(dom.logCount, logTerms.length ? shown + ' of ' + total : (total ? total + (total === 1 ? ' entry' : ' entries') : ''));
  dom.logEmpty.hidden = shown > 0;
  setText(dom.logEmpty, total ? 'No log entry matches the filter.' : 'No events yet.');
}
function applyLogFilter() {
  logTerms = terms(dom.logFilter.value);
  hideUnmatched(dom.log, logTerms);
  pendingLog.concat(pauseBuffer).forEach(function (li) { li.hidden = logTerms.length > 0 && !matches(li._search || '', logTerms); });
  updateLogCount();
}

export function wire() {
  dom.logFilter.addEventListener('input', applyLogFilter);
  dom.pause.addEventListener('change', function () {
    if (!dom.pause.checked && pauseBuffer.length) {
      pauseBuffer.forEach(function (li) { pendingLog.push(li); });
      pauseBuffer = [];
      while (pendingLog.length > LOG_MAX) pendingLog.shift();
      schedule();
    }
    setText(dom.pauseCount, '');
  });
  dom.logClear.addEventListener('click', function () {
    dom.log.replaceChildren();
    pendingLog.length = 0;
    pauseBuffer = [];
    setText(dom.pauseCount, '');
    updateLogCount();
  });
  dom.log.addEventListener('click', function (e) {
    var li = e.target.closest('.log-entry');
    if (!li || !li.dataset.phone || !state.phones.has(li.dataset.phone)) return;
    if (window.getSelection && String(window.getSelection()).length) return;   // let the user copy text
    revealPhone(li.dataset.phone);
  });
}

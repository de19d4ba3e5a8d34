// The reminders panel: scheduled messages by due time, cancelling one, and the form that
// schedules a message to a phone or group.
import { dom } from './dom.js';
import { allGroups } from './filters.js';
import { addLog, miscEntry } from './log.js';
import { answerOf, displayName, newTx, resolvePhone, scheduledText, subscriberText } from './model.js';
import { revealPhone } from './phone-panel.js';
import { send, sendPhoneCommand, settle } from './sending.js';
import { dirty, flush, schedule, state } from './store.js';
import { asArray, asObject, el, fmtDue, fmtRelative, readSchedule, setData, setText, str } from './util.js';

var cancelState = new Map();     // reminder id -> {status, error}
var remFormRec = null;           // last reminder scheduled from the Reminders panel

export function onReminders(agent, payload) {
  var list = asArray(payload);
  if (list === undefined) return;
  if (list === null) state.reminders.delete(agent);
  else state.reminders.set(agent, list.filter(function (r) { return r && typeof r === 'object' && r.id != null; }));
  // forget cancel states of reminders that are gone
  var ids = new Set();
  state.reminders.forEach(function (l) { l.forEach(function (r) { ids.add(str(r.id)); }); });
  cancelState.forEach(function (v, id) { if (!ids.has(id)) cancelState.delete(id); });
  dirty.reminders = true;
  schedule();
}
export function onCancelResult(agent, payload) {
  var r = asObject(payload);
  if (!r) return;
  var a = answerOf(r), tx = a.tx, status = a.status, error = a.error;
  var rec = tx ? state.txIndex.get(tx) : null;
  var id = r.id != null ? str(r.id) : (rec ? rec.id : '');
  if (rec && rec.kind === 'cancel') settle(rec, status, error);
  if (id && (rec || cancelState.has(id))) cancelState.set(id, { status: status, error: error });
  dirty.reminders = true; schedule();
  addLog(miscEntry('', 'reminders ' + agent, 'result', 'cancel', status, [id ? 'reminder ' + id : '', error].filter(Boolean).join(' \u00b7 '), tx, null));
}
function cancelReminder(id, agent) {
  var rec = { kind: 'cancel', tx: newTx(), id: id, command: 'cancel', arg: id, status: 'pending', error: '',
              sentAt: new Date(), doneAt: null, own: true };
  var sent = send(state.base + '/bridge/' + agent + '/reminders/cancel', { id: id, transaction: rec.tx }, rec);
  cancelState.set(id, { status: sent ? 'pending' : 'error', error: sent ? '' : rec.error });
  dirty.reminders = true;
  flush();
}
function targetLabel(target) {
  if (target.slice(0, 6) === 'group:') {
    var g = target.slice(6);
    return { text: g.toLowerCase() === 'all' ? 'All phones' : 'Group ' + g, sub: '', phone: null };
  }
  var p = resolvePhone(target);
  return { text: p ? displayName(p) : target, sub: p ? subscriberText(p) : '', phone: p };
}
export function renderReminders() {
  dirty.reminders = false;
  var all = [];
  state.reminders.forEach(function (list, agent) { list.forEach(function (r) { all.push({ r: r, agent: agent }); }); });
  all.forEach(function (x) { var d = new Date(str(x.r.due)); x.due = isNaN(d.getTime()) ? null : d; });
  all.sort(function (a, b) { return (a.due ? a.due.getTime() : Infinity) - (b.due ? b.due.getTime() : Infinity); });
  var many = state.reminders.size > 1;
  var frag = document.createDocumentFragment();
  all.forEach(function (x) {
    var r = x.r, id = str(r.id), target = str(r.target), t = targetLabel(target);
    var cs = cancelState.get(id);
    var overdue = x.due && x.due.getTime() <= Date.now();
    var btn = el('button', { type: 'button', class: 'btn small danger', 'data-cancel': id, 'data-agent': x.agent,
                             title: 'Cancel this reminder', text: 'Cancel', disabled: cs && cs.status === 'pending' });
    var li = el('li', { 'data-reminder': id, 'data-agent': x.agent, 'data-target': target, 'data-due': str(r.due),
                        'data-phone': t.phone ? t.phone.id : null, 'data-cancel-status': cs ? cs.status : null, 'data-overdue': overdue || null,
                        title: (r.transaction ? 'transaction ' + str(r.transaction) + ' \u00b7 ' : '') + 'reminder ' + id + (many ? ' \u00b7 agent ' + x.agent : '') },
      el('time', { class: 'rem-due', datetime: x.due ? x.due.toISOString() : null, title: x.due ? x.due.toLocaleString() : null,
                   text: x.due ? fmtDue(x.due) : str(r.due) }),
      x.due ? el('span', { class: 'rem-rel', text: fmtRelative(x.due) }) : null,
      el('span', { class: 'rem-target', text: t.text }),
      t.sub ? el('span', { class: 'rem-sub', text: t.sub }) : null,
      el('span', { class: 'rem-text', text: str(r.text) }),
      el('span', { class: 'rem-actions' },
        cs ? el('span', { class: 'rem-state', text: cs.status === 'pending' ? 'cancelling\u2026' : cs.status === 'ok' ? 'cancelled' : 'cancel failed: ' + (cs.error || cs.status) }) : null,
        btn));
    frag.appendChild(li);
  });
  dom.remList.replaceChildren(frag);
  dom.remEmpty.hidden = all.length > 0;
  setText(dom.remCount, all.length ? String(all.length) + ' scheduled' : '');
}
// Target choices: groups (with "all") and phones, rebuilt when names change (not while open).
export function renderTargetOptions() {
  var sel = dom.remTarget;
  if (document.activeElement === sel) { setTimeout(function () { state.renderedNamesGen = -1; schedule(); }, 1500); return; }
  var items = [['group:all', 'All phones']].concat(allGroups().map(function (g) { return ['group:' + g, 'Group ' + g]; }));
  var ps = Array.from(state.phones.values()).sort(function (a, b) { return a.tie < b.tie ? -1 : 1; });
  var key = JSON.stringify(items) + '\u0001' + ps.map(function (p) { return p.id + '\u0000' + p.namesKey; }).join('\u0001');
  if (sel._key === key) return;
  sel._key = key;
  var keep = sel.value;
  var gGroup = el('optgroup', { label: 'Groups' });
  items.forEach(function (it) { gGroup.append(el('option', { value: it[0], text: it[1] })); });
  var pGroup = el('optgroup', { label: 'Phones' });
  ps.forEach(function (p) {
    var s = subscriberText(p);
    pGroup.append(el('option', { value: p.id, text: displayName(p) + (s ? ' \u2014 ' + s : '') }));
  });
  sel.replaceChildren(el('option', { value: '', text: 'Target\u2026' }), gGroup, pGroup);
  sel.value = keep;
  if (sel.value !== keep) sel.value = '';
}
function scheduleReminder() {
  var target = dom.remTarget.value, text = dom.remText.value.trim();
  dom.remTarget.classList.toggle('invalid', !target);
  dom.remText.classList.toggle('invalid', !text);
  var when = readSchedule(dom.remAt, dom.remIn);
  var problem = !target ? 'Choose a phone or group.' : !text ? 'Enter the message text.' : !when.ok ? when.error
    : !when.extra ? 'Give a time (at) or a delay (in).' : '';
  if (problem) {
    if (when.ok && !when.extra) { dom.remAt.classList.add('invalid'); dom.remIn.classList.add('invalid'); }
    remFormRec = { status: 'error', error: problem, local: true };
    renderReminderFormStatus();
    return;
  }
  if (target.slice(0, 6) === 'group:') {
    var g = target.slice(6), tx = newTx();
    var payload = { text: text, transaction: tx };
    for (var k in when.extra) payload[k] = when.extra[k];
    var rec = { kind: 'group', group: g, tx: tx, command: 'message', arg: text, when: when.label, status: 'pending', error: '',
                data: null, sentAt: new Date(), doneAt: null, own: true, form: 'reminder' };
    send(state.base + '/group/' + g + '/cmd/message', payload, rec);
    remFormRec = rec;
  } else {
    remFormRec = sendPhoneCommand(target, 'message', 'text', text, when, { form: 'reminder' });
    if (!remFormRec) remFormRec = { status: 'error', error: 'That phone is gone.', local: true };
  }
  if (remFormRec.status === 'pending') { dom.remText.value = ''; dom.remAt.value = ''; dom.remIn.value = ''; }
  dirty.reminderForm = true;
  flush();
}
export function renderReminderFormStatus() {
  dirty.reminderForm = false;
  var r = remFormRec, node = dom.remStatus;
  if (!r) { setText(node, ''); setData(node, 'status', ''); return; }
  var text;
  if (r.local) text = r.error;
  else {
    var who = r.kind === 'group' ? (r.group.toLowerCase() === 'all' ? 'all phones' : 'group ' + r.group) : (state.phones.has(r.phone) ? displayName(state.phones.get(r.phone)) : r.phone);
    if (r.status === 'pending') text = 'Scheduling for ' + who + '\u2026';
    else if (r.status === 'ok') text = 'Scheduled for ' + who + (scheduledText(r.data) ? ': ' + scheduledText(r.data) : '');
    else text = 'Not scheduled: ' + (r.error || r.status);
  }
  setText(node, text);
  setData(node, 'status', r.status);
  setData(node, 'transaction', r.tx || '');
}

export function wire() {
  dom.remAdd.addEventListener('click', scheduleReminder);
  [dom.remText, dom.remAt, dom.remIn].forEach(function (i) {
    i.addEventListener('input', function () {
      i.classList.remove('invalid');
      if (i !== dom.remText) { dom.remAt.classList.remove('invalid'); dom.remIn.classList.remove('invalid'); }
    });
    i.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); scheduleReminder(); } });
  });
  dom.remTarget.addEventListener('change', function () { dom.remTarget.classList.remove('invalid'); });
  dom.remList.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-cancel]');
    if (b) { if (!b.disabled) cancelReminder(b.dataset.cancel, b.dataset.agent); return; }
    var li = e.target.closest('li[data-phone]');
    if (li) revealPhone(li.dataset.phone);
  });
  setInterval(function () { if (state.reminders.size) { dirty.reminders = true; schedule(); } }, 30000);   // "in 5 min"
}

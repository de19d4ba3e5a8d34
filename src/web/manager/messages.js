// Incoming websocket frames: each MQTT topic to the handler that updates the state.
import { PHONE_HISTORY } from './constants.js';
import { onDirectory, onDirectoryResult } from './directory.js';
import { addLog, eventEntry, miscEntry, refusedEntry, resultEntry } from './log.js';
import { answerOf, getPhone, scheduledText } from './model.js';
import { maybeRemove } from './phone-list.js';
import { onCancelResult, onReminders } from './reminders.js';
import { pushResult, settle } from './sending.js';
import { dirty, markDirty, schedule, state, update } from './store.js';
import { asObject, asWord, parseTs, str } from './util.js';

export function handleFrame(data) {
  var msg;
  try { msg = JSON.parse(data); } catch (e) { return; }
  if (Array.isArray(msg)) { msg.forEach(handleMessage); return; }
  handleMessage(msg);
}

function handleMessage(msg) {
  if (!msg || typeof msg !== 'object') return;
  if (msg.error != null && !('payload' in msg)) { onServerError(msg); return; }
  if (typeof msg.topic !== 'string' || state.base == null) return;
  var prefix = state.base + '/';
  if (msg.topic.slice(0, prefix.length) !== prefix) return;
  var parts = msg.topic.slice(prefix.length).split('/');
  if (parts[0] === 'bridge') {
    if (parts.length === 3 && parts[1] && parts[2] === 'state') onBridge(parts[1], msg.payload);
    else if (parts.length === 3 && parts[1] && parts[2] === 'reminders') onReminders(parts[1], msg.payload);
    else if (parts.length === 4 && parts[1] && parts[2] === 'reminders' && parts[3] === 'result') onCancelResult(parts[1], msg.payload);
    return;
  }
  if (parts[0] === 'group') {
    if (parts.length === 3 && parts[1] && parts[2] === 'result') onGroupResult(parts[1], msg.payload);
    return;
  }
  if (parts[0] === 'directory') {
    if (parts.length === 1) onDirectory(msg.payload);
    else if (parts.length === 2 && parts[1] === 'result') onDirectoryResult(msg.payload);
    return;
  }
  var id = parts[0];
  if (!id) return;
  if (parts.length === 1) { setPhoneField(id, 'state', asObject(msg.payload)); return; }
  if (parts.length !== 2) return;
  switch (parts[1]) {
    case 'info': setPhoneField(id, 'info', asObject(msg.payload)); break;
    case 'availability': setPhoneField(id, 'availability', asWord(msg.payload)); break;
    case 'event': onEvent(id, msg.payload); break;
    case 'result': onResult(id, msg.payload); break;
    case 'provisioning': onProvisioning(id, msg.payload); break;
    default: break;   // ignore anything else
  }
}

// A retained phone topic (state, info, availability): a value creates the phone if need be;
// null clears the field and forgets a phone with nothing left; undefined (unusable) is ignored.
function setPhoneField(id, field, v) {
  if (v === undefined) return;
  var p = getPhone(id, v !== null);
  if (!p) return;
  p[field] = v;
  if (v === null) maybeRemove(p); else markDirty(p);
}
function onProvisioning(id, payload) {
  var v = asObject(payload);
  if (v === undefined) return;
  var p = getPhone(id, false);
  if (!p) return;
  p.provisioning = v;
  markDirty(p);
}
function onBridge(agent, payload) {
  var w = asWord(payload);
  update(function (s, d) {
    if (w === null) s.bridges.delete(agent); else s.bridges.set(agent, w);
    d.header = true;
    var sel = s.selectedId ? s.phones.get(s.selectedId) : null;
    if (sel && sel.info && str(sel.info.agent) === agent) d.detail = true;
  });
}

function onEvent(id, payload) {
  var ev = asObject(payload);
  if (!ev) return;
  var p = getPhone(id, true);
  var rec = {
    event: ev.event != null && ev.event !== '' ? str(ev.event) : 'event',
    time: parseTs(ev.ts), remote: ev.remote, remote_name: ev.remote_name,
    local: ev.local, line: ev.line, key: ev.key, label: ev.label, call_id: ev.call_id,
    vars: ev.vars && typeof ev.vars === 'object' ? ev.vars : null
  };
  p.events.unshift(rec);
  if (p.events.length > PHONE_HISTORY) p.events.length = PHONE_HISTORY;
  // an event alone changes no table cell (the state topic does): only the detail panel
  if (!p.row) dirty.rows.add(p.id);
  if (p.id === state.selectedId) dirty.detail = true;
  schedule();
  addLog(eventEntry(p, rec));
}

function onResult(id, payload) {
  var r = asObject(payload);
  if (!r) return;
  var p = getPhone(id, true);
  var a = answerOf(r), tx = a.tx, status = a.status;
  var rec = tx ? state.txIndex.get(tx) : null;
  if (!rec || rec.kind !== 'phone' || rec.phone !== id) {
    // a member's answer to a group command this page sent is ours too
    var ours = !!(rec && rec.kind === 'group');
    rec = { kind: 'phone', tx: tx, phone: id, command: str(r.command) || '?', arg: ours ? rec.arg : '', when: '', topic: '',
            status: status, error: '', data: null, sentAt: new Date(), doneAt: null, own: ours, bulk: null, form: null };
    pushResult(p, rec);
  }
  if (r.command != null && r.command !== '') rec.command = str(r.command);
  settle(rec, status, a.error, r.data && typeof r.data === 'object' ? r.data : null);
  markDirty(p);
  addLog(resultEntry(p, rec));
}

function onGroupResult(group, payload) {
  var r = asObject(payload);
  if (!r) return;
  var a = answerOf(r), tx = a.tx, status = a.status, error = a.error;
  var rec = tx ? state.txIndex.get(tx) : null;
  var data = r.data && typeof r.data === 'object' ? r.data : null;
  if (rec && rec.kind === 'group' && rec.group === group) settle(rec, status, error, data);
  addLog(miscEntry('group/' + group, 'group ' + group, 'result', str(r.command) || (rec ? rec.command : '?'), status,
    [error, scheduledText(data)].filter(Boolean).join(' \u00b7 '), tx, { 'data-group': group }));
}

function onServerError(msg) {
  var text = str(msg.error) || 'refused';
  var topic = typeof msg.topic === 'string' ? msg.topic : '';
  var rec = null;
  if (msg.transaction != null) rec = state.txIndex.get(str(msg.transaction)) || null;
  if (!rec && topic) {
    // newest pending thing we sent on that topic
    state.txIndex.forEach(function (r) { if (r.topic === topic && r.status === 'pending' && (!rec || r.sentAt >= rec.sentAt)) rec = r; });
  }
  var phoneId = rec && rec.kind === 'phone' ? rec.phone : '';
  if (!phoneId && state.base && topic.slice(0, state.base.length + 1) === state.base + '/') {
    var first = topic.slice(state.base.length + 1).split('/')[0];
    if (first && first !== 'bridge' && first !== 'group' && first !== 'directory' && state.phones.has(first)) phoneId = first;
  }
  if (rec) settle(rec, 'error', text);
  addLog(refusedEntry(phoneId, topic, rec, text));
}

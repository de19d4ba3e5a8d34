// Sending commands over the websocket and following each one until its result (or timeout).
import { ARG_FIELD, PHONE_HISTORY, RESULT_TIMEOUT_MS } from './constants.js';
import { addLog, resultEntry } from './log.js';
import { newTx } from './model.js';
import { dirty, markDirty, schedule, state } from './store.js';

// Sends one frame; the record tracks its answer. Returns whether it went out.
export function send(topic, payload, rec) {
  rec.topic = topic; rec.sentAt = new Date(); rec.doneAt = null;
  rec.status = 'pending'; rec.error = ''; rec.own = true;
  if (rec.tx) state.txIndex.set(rec.tx, rec);
  var sent = false;
  if (state.base != null && state.ws && state.ws.readyState === WebSocket.OPEN) {
    try { state.ws.send(JSON.stringify({ topic: topic, payload: payload })); sent = true; }
    catch (e) { rec.error = 'send failed: ' + (e && e.message ? e.message : e); }
  } else rec.error = 'not connected to the gateway';
  if (!sent) { rec.status = 'error'; rec.doneAt = new Date(); }
  else {
    setTimeout(function () {
      if (rec.status !== 'pending') return;
      rec.status = 'timeout'; rec.error = 'no result after ' + (RESULT_TIMEOUT_MS / 1000) + ' s'; rec.doneAt = new Date();
      touchRec(rec);
    }, RESULT_TIMEOUT_MS);
  }
  return sent;
}
// Something about a record changed: mark the views that show it.
export function touchRec(rec) {
  if (rec.kind === 'phone') { var p = state.phones.get(rec.phone); if (p) markDirty(p); }
  if (rec.bulk) dirty.bulk = true;
  if (rec.form === 'reminder') dirty.reminderForm = true;
  if (rec.kind === 'directory') dirty.importStatus = true;
  if (rec.kind === 'cancel') dirty.reminders = true;
  schedule();
}
export function settle(rec, status, error, data) {
  rec.status = status;
  rec.error = error || (status === 'error' ? 'error' : '');
  if (data !== undefined) rec.data = data;
  rec.doneAt = new Date();
  touchRec(rec);
}

// A command to one phone. `when` = readSchedule() result or null. Returns the record.
export function sendPhoneCommand(phoneId, name, arg, value, when, opts) {
  var payload = {};
  if (arg !== 'none') payload[ARG_FIELD[arg] || arg] = value;
  if (when && when.extra) for (var k in when.extra) payload[k] = when.extra[k];
  return sendPhonePayload(phoneId, name, payload, value == null ? '' : String(value), when && when.label ? when.label : '', opts);
}

// A command to one phone with the payload as given (a transaction is added); `arg` and `when`
// describe it in the views. Returns the record, null when the phone is gone.
export function sendPhonePayload(phoneId, name, payload, arg, when, opts) {
  var p = state.phones.get(phoneId);
  if (!p) return null;
  var tx = newTx();
  payload.transaction = tx;
  var rec = { kind: 'phone', tx: tx, phone: phoneId, command: name, arg: arg, when: when, topic: '', status: 'pending',
              error: '', data: null, sentAt: new Date(), doneAt: null, own: true,
              bulk: opts && opts.bulk || null, form: opts && opts.form || null };
  pushResult(p, rec);
  if (!send(state.base + '/' + phoneId + '/cmd/' + name, payload, rec)) addLog(resultEntry(p, rec));
  markDirty(p);
  return rec;
}

// Keeps a phone's last results; a result that falls out is no longer awaited (unless a bulk job shows it).
export function pushResult(p, rec) {
  p.results.unshift(rec);
  while (p.results.length > PHONE_HISTORY) {
    var old = p.results.pop();
    if (old.tx && state.txIndex.get(old.tx) === old && !old.bulk) state.txIndex.delete(old.tx);
  }
}

// Phones as the page keeps them, and how they are named and described.
import { state } from './store.js';
import { fmtDue, str } from './util.js';

var txCounter = 0;
var pageId = Math.random().toString(36).slice(2, 8);

// A transaction id for something this page sends.
export function newTx() { return 'web-' + pageId + '-' + (++txCounter); }

export function getPhone(id, create) {
  var p = state.phones.get(id);
  if (!p && create) {
    p = { id: id, state: null, info: null, availability: null, events: [], results: [],
          row: null, cells: null, nameText: null, badge: null, check: null, search: '',
          sortVal: '', tie: '', inOrder: false, visible: true,
          vendorId: '', groups: [], groupsKey: '', inCall: false, dndOn: false, namesKey: null };
    state.phones.set(id, p);
    state.namesGen++;
  }
  return p;
}
export function displayName(p) {
  var n = p.info && p.info.name;
  return (n != null && n !== '') ? str(n) : p.id;
}
export function subscriberOf(p) {
  var s = p && p.info && p.info.subscriber;
  return s && typeof s === 'object' ? s : null;
}
// "Anna Schmidt · Sales" (or "ext 1001" for a subscriber without a name)
export function subscriberText(p) {
  var s = subscriberOf(p);
  if (!s) return '';
  var name = str(s.name) || (s.extension != null && s.extension !== '' ? 'ext ' + str(s.extension) : '');
  return [name, str(s.department)].filter(Boolean).join(' \u00b7 ');
}
// A phone reference as used by reminders: id, or name.
export function resolvePhone(ref) {
  if (state.phones.has(ref)) return state.phones.get(ref);
  var found = null;
  state.phones.forEach(function (p) { if (!found && p.info && p.info.name != null && str(p.info.name) === ref) found = p; });
  return found;
}
export function vendorLabel(vendorId) {
  if (!vendorId) return '';
  var v = state.vendors.get(vendorId);
  return (v && v.name) ? str(v.name) : str(vendorId);
}
export function registrationWord(s) {
  if (!s) return '';
  if (s.registered === true) return 'registered';
  if (s.registered === false) return 'unregistered';
  if (Array.isArray(s.lines)) {
    var known = s.lines.filter(function (l) { return l && typeof l.registered === 'boolean'; });
    if (known.length) return known.some(function (l) { return l.registered; }) ? 'registered' : 'unregistered';
  }
  return '';
}
export function linesText(s) {
  if (!s || !Array.isArray(s.lines) || !s.lines.length) return '';
  return s.lines.map(function (l) {
    if (!l || typeof l !== 'object') return str(l);
    var r = l.registered === true ? 'registered' : (l.registered === false ? 'unregistered' : 'unknown');
    return 'Line ' + str(l.line) + (l.user != null ? ' (' + str(l.user) + ')' : '') + ': ' + r;
  }).join('\n');
}

export function scheduledText(data) {
  if (!data || typeof data !== 'object' || data.reminder == null) return '';
  var d = data.due ? new Date(data.due) : null;
  return 'scheduled' + (d && !isNaN(d.getTime()) ? ' for ' + fmtDue(d) : '') + ' \u00b7 reminder ' + str(data.reminder);
}
function statusWord(s) { return s === 'ok' || s === 'error' ? s : (str(s) || 'unknown'); }
// What every view reads of a result payload: its transaction (or null), status word and error text.
export function answerOf(r) {
  return {
    tx: r.transaction != null && r.transaction !== '' ? str(r.transaction) : null,
    status: statusWord(r.status),
    error: r.error != null && r.error !== '' ? str(r.error) : ''
  };
}

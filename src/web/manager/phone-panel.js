// The phone panel: the selected phone's status, notices, commands, provisioning, results and events.
import { renderProvisioning } from './adoption.js';
import { renderCommands, updateCommandStatus } from './commands.js';
import { dom } from './dom.js';
import { displayName, linesText, registrationWord, scheduledText, subscriberOf, subscriberText, vendorLabel } from './model.js';
import { dirty, state } from './store.js';
import { clock, el, fmtLastSeen, fmtRemote, setData, setText, str } from './util.js';

var renderedCmdKey = '';         // the phone and vendor list the command forms were built for

export function select(id, focusRow) {
  var prev = state.selectedId ? state.phones.get(state.selectedId) : null;
  if (prev && prev.row) { prev.row.classList.remove('selected'); prev.row.removeAttribute('aria-selected'); }
  state.selectedId = id;
  renderedCmdKey = '';
  var p = id ? state.phones.get(id) : null;
  if (p && p.row) {
    p.row.classList.add('selected');
    p.row.setAttribute('aria-selected', 'true');
    if (focusRow) p.row.focus({ preventScroll: true });
  }
  try {
    history.replaceState(null, '', id ? '#' + encodeURIComponent(id) : location.pathname + location.search);
  } catch (e) { /* not fatal */ }
  renderDetail();   // synchronous: the panel is visible as soon as the click returns
}
export function revealPhone(id) {
  if (!state.phones.has(id)) return;
  select(id, false);
  var p = state.phones.get(id);
  if (p && p.row && !p.row.hidden) p.row.scrollIntoView({ block: 'nearest' });
}

export function infoRow(dl, label, field, value, attrs) {
  var dd = el('dd', { 'data-field': field });
  if (attrs) for (var k in attrs) if (attrs[k]) dd.setAttribute(k, attrs[k]);
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value == null ? '' : String(value);
  dl.append(el('dt', { text: label }), dd);
}

export function renderDetail() {
  dirty.detail = false;
  var p = state.selectedId ? state.phones.get(state.selectedId) : null;
  if (!p) {
    dom.detail.hidden = true;
    dom.layout.classList.remove('has-detail');
    delete dom.detail.dataset.phone;
    renderedCmdKey = '';
    return;
  }
  dom.detail.hidden = false;
  dom.layout.classList.add('has-detail');
  dom.detail.dataset.phone = p.id;
  var s = p.state || {}, info = p.info || {};

  setText(dom.detailTitle, displayName(p));
  var sub = subscriberOf(p);
  setText(dom.detailSubscriber, subscriberText(p));
  setData(dom.detailSubscriber, 'extension', sub ? str(sub.extension) : '');
  setText(dom.detailSub, [p.id, [vendorLabel(info.vendor ? str(info.vendor) : ''), str(info.model)].filter(Boolean).join(' ')]
    .filter(Boolean).join(' \u00b7 '));

  // status grid
  var dl = dom.detailInfo;
  dl.replaceChildren();
  infoRow(dl, 'Name', 'name', str(info.name));
  infoRow(dl, 'Subscriber', 'subscriber', sub
    ? [str(sub.name), str(sub.department), sub.extension != null && sub.extension !== '' ? 'ext ' + str(sub.extension) : ''].filter(Boolean).join(' \u00b7 ')
    : '');
  infoRow(dl, 'Groups', 'groups', p.groups.join(', '));
  infoRow(dl, 'ID', 'id', p.id);
  infoRow(dl, 'MAC', 'mac', str(info.mac));
  infoRow(dl, 'Vendor', 'vendor', vendorLabel(info.vendor ? str(info.vendor) : ''));
  infoRow(dl, 'Model', 'model', str(info.model));
  infoRow(dl, 'Firmware', 'firmware', str(info.firmware));
  var ip = str(info.ip);
  if (ip && /^[0-9A-Za-z.:-]+$/.test(ip)) {
    var host = ip.indexOf(':') !== -1 ? '[' + ip + ']' : ip;
    infoRow(dl, 'IP', 'ip', el('a', { href: 'http://' + host + '/', target: '_blank', rel: 'noopener noreferrer', title: 'Open the phone\u2019s web interface', text: ip }));
  } else infoRow(dl, 'IP', 'ip', ip);
  var agent = str(info.agent);
  infoRow(dl, 'Agent', 'agent', agent ? agent + (state.bridges.has(agent) ? ' (' + state.bridges.get(agent) + ')' : '') : '');
  infoRow(dl, 'Configured', 'configured', p.info ? (info.configured === false ? 'no (unconfigured)' : 'yes') : '');
  infoRow(dl, 'Availability', 'availability', p.availability || '');
  var reg = registrationWord(p.state);
  infoRow(dl, 'Registration', 'registration', reg);
  if (Array.isArray(s.lines) && s.lines.length) infoRow(dl, 'Lines', 'lines', linesText(s).split('\n').join('; '));
  var call = typeof s.call_state === 'string' ? s.call_state : '';
  infoRow(dl, 'Call state', 'call_state', call, { 'data-value': call });
  infoRow(dl, 'Remote', 'remote', fmtRemote(s.remote, s.remote_name));
  if (s.call_id != null && s.call_id !== '') infoRow(dl, 'Call ID', 'call_id', str(s.call_id));
  infoRow(dl, 'DND', 'dnd', typeof s.dnd === 'boolean' ? (s.dnd ? 'on' : 'off') : '');
  var fw = s.forward && typeof s.forward === 'object' ? s.forward : null;
  if (fw) {
    var active = ['always', 'busy', 'no_answer'].filter(function (k) { return fw[k] === true; })
      .map(function (k) { return k.replace('_', ' '); });
    infoRow(dl, 'Forward', 'forward', active.length ? active.join(', ') : 'off');
  } else infoRow(dl, 'Forward', 'forward', '');
  infoRow(dl, 'Muted', 'muted', typeof s.muted === 'boolean' ? (s.muted ? 'yes' : 'no') : '');
  infoRow(dl, 'Last event', 'last_event', str(s.last_event));
  infoRow(dl, 'Last seen', 'last_seen', s.last_seen ? fmtLastSeen(s.last_seen) : '');

  // notices
  dom.detailNotice.replaceChildren();
  if (p.availability === 'offline') dom.detailNotice.append(el('p', { class: 'note warn', text: 'The phone is offline; commands will probably fail.' }));
  if (p.info && info.configured === false) dom.detailNotice.append(el('p', { class: 'note warn', text: 'This phone is not in the gateway configuration.' }));

  // commands (rebuilt only when phone / vendor definition changes, so inputs keep their text)
  var vendorId = info.vendor ? str(info.vendor) : '';
  var key = p.id + '\u0000' + vendorId + '\u0000' + state.vendorsGen + '\u0000' + (state.vendorsLoaded ? 1 : 0);
  if (key !== renderedCmdKey) { renderedCmdKey = key; renderCommands(p, vendorId); }
  updateCommandStatus(p);

  renderProvisioning(p);

  // results
  dom.results.replaceChildren();
  p.results.slice(0, 30).forEach(function (r) { dom.results.append(resultItem(r)); });
  dom.resultsEmpty.hidden = p.results.length > 0;

  // events
  dom.events.replaceChildren();
  p.events.slice(0, 30).forEach(function (ev) { dom.events.append(eventItem(ev)); });
  dom.eventsEmpty.hidden = p.events.length > 0;
}

function resultItem(r) {
  var t = r.doneAt || r.sentAt;
  var li = el('li', { class: 'result', 'data-transaction': r.tx || '', 'data-status': r.status, 'data-command': r.command },
    el('time', { class: 't', datetime: t.toISOString(), text: clock(t) }),
    el('span', { class: 'result-cmd', text: r.command + (r.arg !== '' ? ' ' + r.arg : '') + (r.when ? ' (' + r.when + ')' : '') }),
    el('span', { class: 'result-status', text: r.status === 'pending' ? 'pending\u2026' : r.status }),
    el('span', { class: 'result-tx', text: r.tx ? r.tx + (r.own ? '' : ' (other client)') : 'other client' }));
  if (r.error) li.append(el('span', { class: 'result-error', text: r.error }));
  var sched = scheduledText(r.data);
  if (sched) { li.setAttribute('data-reminder', str(r.data.reminder)); li.append(el('span', { class: 'result-data', text: sched })); }
  return li;
}

export function eventExtras(ev) {
  var x = [];
  if (ev.line != null && ev.line !== '') x.push('line ' + str(ev.line));
  if (ev.key != null && ev.key !== '') x.push('key ' + str(ev.key) + (ev.label ? ' \u201c' + str(ev.label) + '\u201d' : ''));
  if (ev.local != null && ev.local !== '') x.push('local ' + str(ev.local));
  return x.join(' \u00b7 ');
}
function eventItem(ev) {
  return el('li', { class: 'detail-event', 'data-event': ev.event, title: ev.vars ? str(ev.vars) : null },
    el('time', { class: 't', datetime: ev.time.toISOString(), title: ev.time.toLocaleString(), text: clock(ev.time) }),
    el('span', { class: 'ev-name', text: ev.event }),
    el('span', { class: 'ev-remote', text: fmtRemote(ev.remote, ev.remote_name) }),
    el('span', { class: 'ev-extra', text: eventExtras(ev) }));
}

export function wire() {
  dom.detailClose.addEventListener('click', function () {
    var id = state.selectedId;
    select(null, false);
    var p = id ? state.phones.get(id) : null;
    if (p && p.row) p.row.focus({ preventScroll: true });
  });
}

// The phone panel's commands, built from the vendor's command list: inputs, toggles, actions,
// the configure and logo forms, and each command's last status.
import { dom } from './dom.js';
import { displayName } from './model.js';
import { renderDetail } from './phone-panel.js';
import { sendPhoneCommand, sendPhonePayload } from './sending.js';
import { state } from './store.js';
import { el, readSchedule, setData, setText, str } from './util.js';

var cmdStatusEls = new Map();    // command name -> status span in the detail panel

// A command whose payload is built by a form rather than one value.
export function sendCustom(phoneId, name, payload, label) {
  var rec = sendPhonePayload(phoneId, name, payload, label || '', '', null);
  if (rec && phoneId === state.selectedId) renderDetail();
  return rec;
}

// `configure`: a programmable key or a vendor setting, applied by re-provisioning.
function configureForms(p, c) {
  var keyNo = el('input', { class: 'field', type: 'number', min: '1', max: '200', placeholder: 'key', 'aria-label': 'Key number', style: 'width: 5em;' });
  var keyLabel = el('input', { class: 'field', placeholder: 'label, e.g. Garage door', 'aria-label': 'Key label', maxlength: '32', autocomplete: 'off' });
  var keyBtn = el('button', { type: 'button', class: 'btn primary', 'data-cmd': 'configure-key', text: 'Program key' });
  keyBtn.addEventListener('click', function () {
    var n = keyNo.value.trim();
    if (!/^\d+$/.test(n)) { keyNo.classList.add('invalid'); keyNo.focus(); return; }
    var keys = {}; keys[n] = keyLabel.value.trim() || null;
    sendCustom(p.id, 'configure', { keys: keys }, 'key ' + n + (keys[n] ? ' = ' + keys[n] : ' removed'));
  });
  var setKey = el('input', { class: 'field', placeholder: 'vendor setting', 'aria-label': 'Setting name', autocomplete: 'off', spellcheck: 'false' });
  var setVal = el('input', { class: 'field', placeholder: 'value (empty removes)', 'aria-label': 'Setting value', autocomplete: 'off', spellcheck: 'false' });
  var setBtn = el('button', { type: 'button', class: 'btn primary', 'data-cmd': 'configure-setting', text: 'Push setting' });
  setBtn.addEventListener('click', function () {
    var k = setKey.value.trim();
    if (!k) { setKey.classList.add('invalid'); setKey.focus(); return; }
    var settings = {}; settings[k] = setVal.value.trim() || null;
    sendCustom(p.id, 'configure', { settings: settings }, k + (settings[k] ? ' = ' + settings[k] : ' removed'));
  });
  [keyNo, setKey].forEach(function (i) { i.addEventListener('input', function () { i.classList.remove('invalid'); }); });
  return [
    el('div', { class: 'cmd-row', 'data-command': 'configure-key', title: c.description ? str(c.description) : null }, keyNo, keyLabel, keyBtn, statusEl('configure')),
    el('div', { class: 'cmd-row', 'data-command': 'configure-setting' }, setKey, setVal, setBtn)
  ];
}

// `logo`: an image uploaded here is converted and hosted by the agent, then applied.
function logoUpload(p) {
  var file = el('input', { type: 'file', accept: 'image/png,image/jpeg,image/bmp,image/gif', 'aria-label': 'Logo image file', 'data-upload-for': 'logo' });
  var btn = el('button', { type: 'button', class: 'btn', text: 'Upload logo' });
  btn.addEventListener('click', function () {
    var f = file.files && file.files[0];
    if (!f) { file.focus(); return; }
    btn.disabled = true;
    fetch('api/phones/' + encodeURIComponent(p.id) + '/logo', { method: 'POST', body: f, headers: { 'Content-Type': 'application/octet-stream' } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        btn.disabled = false;
        if (!res.ok || !res.body || !res.body.url) { dom.detailNotice.append(el('p', { class: 'note warn', text: 'Logo upload failed: ' + str(res.body && res.body.error) })); return; }
        sendCustom(p.id, 'logo', { url: res.body.url }, f.name);
      }, function (e) {
        btn.disabled = false;
        dom.detailNotice.append(el('p', { class: 'note warn', text: 'Logo upload failed: ' + str(e && e.message ? e.message : e) }));
      });
  });
  return el('div', { class: 'cmd-row', 'data-command': 'logo-upload' }, file, btn);
}

export function renderCommands(p, vendorId) {
  var box = dom.cmds;
  box.replaceChildren();
  cmdStatusEls.clear();
  if (!vendorId) { box.append(el('p', { class: 'note', text: 'Vendor not known yet \u2014 waiting for the phone\u2019s info.' })); return; }
  var v = state.vendors.get(vendorId);
  if (!v) {
    box.append(el('p', { class: 'note', text: state.vendorsLoaded
      ? 'This gateway has no command list for vendor \u201c' + vendorId + '\u201d.'
      : 'Loading vendor commands\u2026' }));
    return;
  }
  var cmds = (Array.isArray(v.commands) ? v.commands : []).filter(function (c) {
    return c && typeof c.name === 'string' && c.name;
  });
  if (!cmds.length) { box.append(el('p', { class: 'note', text: 'This vendor exposes no commands.' })); return; }

  var inputs = [], toggles = [], actions = [], dangerous = [], forms = [];
  cmds.forEach(function (c) {
    var arg = typeof c.arg === 'string' && c.arg ? c.arg : 'none';
    if (arg === 'none') (c.confirm ? dangerous : actions).push(c);
    else if (arg === 'on_off') toggles.push(c);
    else if (arg === 'changes') configureForms(p, c).forEach(function (row) { forms.push(row); });
    else inputs.push(c);
  });

  inputs.forEach(function (c) {
    var arg = c.arg;
    var input = el('input', {
      class: 'field', 'data-arg-for': c.name, type: arg === 'number' ? 'tel' : 'text',
      placeholder: c.description ? str(c.description) : arg, 'aria-label': c.name + ' ' + arg,
      autocomplete: 'off', spellcheck: 'false'
    });
    var btn = el('button', { type: 'button', class: 'btn primary' + (c.confirm ? ' danger' : ''), 'data-cmd': c.name, title: c.description ? str(c.description) : null, text: c.name });
    // a message can be shown later: at a local time or after a delay (the agent keeps it as a reminder)
    var atInput = null, inInput = null, schedRow = null;
    if (c.name === 'message') {
      atInput = el('input', { type: 'datetime-local', class: 'field', 'data-at-for': c.name, 'aria-label': c.name + ': show at (optional)', title: 'Show at this local time (optional)' });
      inInput = el('input', { type: 'text', class: 'field', 'data-in-for': c.name, placeholder: 'e.g. 10m', 'aria-label': c.name + ': show in (optional, e.g. 10m)', title: 'Show after this delay, e.g. 90s, 10m, 1h 30m (optional)', autocomplete: 'off', spellcheck: 'false' });
      schedRow = el('div', { class: 'cmd-schedule', 'data-schedule-for': c.name }, el('span', { text: 'later: at' }), atInput, el('span', { text: 'or in' }), inInput);
      [atInput, inInput].forEach(function (i) {
        i.addEventListener('input', function () { atInput.classList.remove('invalid'); inInput.classList.remove('invalid'); });
        i.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); btn.click(); } });
      });
    }
    btn.addEventListener('click', function () {
      var value = input.value.trim();
      if (arg === 'number') value = value.replace(/[\s()\/-]/g, '');
      if (!value) { input.classList.add('invalid'); input.focus(); return; }
      var when = readSchedule(atInput, inInput);
      if (!when.ok) { setText(dom.detailNotice, ''); dom.detailNotice.append(el('p', { class: 'note warn', text: when.error })); return; }
      if (runCommand(p.id, c, value, when) && when && when.extra) { atInput.value = ''; inInput.value = ''; }
    });
    input.addEventListener('input', function () { input.classList.remove('invalid'); });
    input.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); btn.click(); } });
    box.append(el('div', { class: 'cmd-row', 'data-command': c.name }, input, btn, statusEl(c.name)));
    if (schedRow) box.append(schedRow);
    if (c.name === 'logo') box.append(logoUpload(p));
  });
  forms.forEach(function (row) { box.append(row); });

  toggles.forEach(function (c) {
    var row = el('div', { class: 'cmd-row', 'data-command': c.name },
      el('span', { class: 'cmd-label', title: c.description ? str(c.description) : null }, c.name,
        c.description ? el('small', { text: str(c.description) }) : null));
    ['on', 'off'].forEach(function (val) {
      var b = el('button', { type: 'button', class: 'btn' + (c.confirm ? ' danger' : ''), 'data-cmd': c.name, 'data-value': val, 'aria-label': c.name + ' ' + val, text: val });
      b.addEventListener('click', function () { runCommand(p.id, c, val, null); });
      row.append(b);
    });
    row.append(statusEl(c.name));
    box.append(row);
  });

  var plain = actions.concat(dangerous);
  if (plain.length) {
    var wrap = el('div', { class: 'cmd-actions' });
    plain.forEach(function (c) {
      var b = el('button', { type: 'button', class: 'btn' + (c.confirm ? ' danger' : ''), 'data-cmd': c.name, title: c.description ? str(c.description) : null, text: c.name });
      b.addEventListener('click', function () { runCommand(p.id, c, null, null); });
      wrap.append(el('span', { class: 'cmd-action' }, b, statusEl(c.name)));
    });
    box.append(wrap);
  }
}

export function statusEl(name) {
  var s = el('span', { class: 'cmd-status', 'data-status-for': name, 'aria-live': 'polite' });
  cmdStatusEls.set(name, s);
  return s;
}
var STATUS_MARK = { pending: '\u2026', ok: '\u2713 ok', error: '\u2717 error', timeout: '\u2717 timeout' };
export function updateCommandStatus(p) {
  cmdStatusEls.forEach(function (span, name) {
    var r = null;
    for (var i = 0; i < p.results.length; i++) {
      if (p.results[i].own && p.results[i].command === name) { r = p.results[i]; break; }
    }
    var status = r ? r.status : '';
    setData(span, 'status', status);
    setText(span, r ? (STATUS_MARK[status] || status) : '');
    span.title = r ? (r.tx + ': ' + status + (r.error ? ' \u2014 ' + r.error : '')) : '';
  });
}

function runCommand(phoneId, cmd, value, when) {
  var p = state.phones.get(phoneId);
  if (!p) return false;
  if (cmd.confirm) {
    var desc = cmd.description ? str(cmd.description) + '\n\n' : '';
    if (!window.confirm(desc + 'Send "' + cmd.name + (value != null ? ' ' + value : '') + '" to ' + displayName(p) + '?')) return false;
  }
  var arg = typeof cmd.arg === 'string' && cmd.arg ? cmd.arg : 'none';
  var rec = sendPhoneCommand(phoneId, cmd.name, arg, value, when, null);
  if (p.id === state.selectedId) renderDetail();
  return !!rec && rec.status === 'pending';
}

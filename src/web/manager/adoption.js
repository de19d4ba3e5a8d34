// Provisioning in the phone panel: the adoption form for a discovered phone, what it was
// served, drift.
import { sendCustom, statusEl } from './commands.js';
import { infoRow } from './phone-panel.js';
import { $, el, fmtLastSeen, str } from './util.js';

var renderedAdoptFor = '';
export function renderProvisioning(p) {
  var info = p.info || {};
  var adoptBox = $('detail-adopt');
  if (info.configured === false) {
    if (renderedAdoptFor !== p.id) { renderedAdoptFor = p.id; adoptBox.replaceChildren(adoptForm(p)); }
  } else { renderedAdoptFor = ''; adoptBox.replaceChildren(); }
  var st = p.provisioning && typeof p.provisioning === 'object' ? p.provisioning : null;
  var dl = $('detail-prov');
  dl.replaceChildren();
  var drift = $('detail-drift');
  drift.replaceChildren();
  if (!st) { infoRow(dl, 'Served', 'served', 'not since the agent started'); return; }
  var sync = st.in_sync === true ? 'in sync' : st.in_sync === false ? 'drift' : 'unknown';
  infoRow(dl, 'Config', 'in_sync', sync, { 'data-value': sync });
  infoRow(dl, 'Served', 'served', st.served_at ? fmtLastSeen(st.served_at) + (st.file ? ' (' + str(st.file) + ')' : '') : 'not since the agent started');
  if (st.verified_at) infoRow(dl, 'Verified', 'verified', fmtLastSeen(st.verified_at) + (st.method === 'read_back' ? ' (read back from the phone)' : ' (by what was served)'));
  (Array.isArray(st.drift) ? st.drift : []).forEach(function (d) {
    drift.append(el('li', { class: 'drift', text: str(d.setting) + ': expected ' + str(d.expected) + ', has ' + (d.actual == null ? 'nothing' : str(d.actual)) }));
  });
  (Array.isArray(st.refused) ? st.refused : []).forEach(function (r) {
    drift.append(el('li', { class: 'drift refused', text: str(r) }));
  });
}

// Adopting a discovered phone: its address (left empty: the IP it called from), credentials,
// a name. The site's credentials go only to the IP the phone called from, so the address is
// not prefilled with the IP the phone reported, which may differ.
function adoptForm(p) {
  var f = {
    address: el('input', { class: 'field', name: 'address', placeholder: 'address (host or host:port; empty: the IP it called from)', 'aria-label': 'Address', autocomplete: 'off', spellcheck: 'false' }),
    username: el('input', { class: 'field', name: 'username', placeholder: 'username (site default)', 'aria-label': 'Username', autocomplete: 'off' }),
    password: el('input', { class: 'field', name: 'password', type: 'password', placeholder: 'password (site default at its own IP only)', 'aria-label': 'Password', autocomplete: 'new-password' }),
    name: el('input', { class: 'field', name: 'name', placeholder: 'name (optional)', 'aria-label': 'Name', autocomplete: 'off' })
  };
  var btn = el('button', { type: 'button', class: 'btn primary', 'data-cmd': 'adopt', text: 'Adopt' });
  btn.addEventListener('click', function () {
    var payload = {};
    ['address', 'username', 'password', 'name'].forEach(function (k) { var v = f[k].value.trim(); if (v) payload[k] = v; });
    sendCustom(p.id, 'adopt', payload, payload.address || '');
    f.password.value = '';
  });
  return el('div', { class: 'adopt', 'data-form': 'adopt' },
    el('p', { class: 'note', text: 'Discovered, not adopted: give its credentials to control it. Left empty, the address is the IP it called from and the credentials are the site defaults, which go to that address only.' }),
    el('div', { class: 'cmd-row' }, f.address, f.name),
    el('div', { class: 'cmd-row' }, f.username, f.password, btn, statusEl('adopt')));
}

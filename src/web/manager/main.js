// The Manager page's entry point: wires each panel's controls, subscribes the frame renderer to
// the store, draws the empty page and connects to the gateway.
//
// Where things are: store.js (the state), render.js (what a frame draws), messages.js (MQTT
// topics in), sending.js (commands out), connection.js (the websocket), api.js (REST), one
// module per panel: phone-list, filters, sorting, selection, bulk, phone-panel, commands,
// adoption, log, directory, reminders, header, health, session.
import { loadVendors } from './api.js';
import * as bulk from './bulk.js';
import * as connection from './connection.js';
import * as directory from './directory.js';
import { dom } from './dom.js';
import * as filters from './filters.js';
import { renderHeader } from './header.js';
import * as health from './health.js';
import * as log from './log.js';
import * as phoneList from './phone-list.js';
import * as phonePanel from './phone-panel.js';
import * as reminders from './reminders.js';
import { renderFrame } from './render.js';
import * as selection from './selection.js';
import * as session from './session.js';
import * as sorting from './sorting.js';
import { state, subscribe } from './store.js';
import { $, remembered } from './util.js';

// Collapsible panels (remembered in this browser).
function wireCollapse() {
  var collapsed = {};
  try { collapsed = JSON.parse(remembered.get('phone2mqtt.manager.collapsed') || '{}') || {}; } catch (e) { collapsed = {}; }
  document.querySelectorAll('button[data-collapse]').forEach(function (b) {
    var panel = $(b.dataset.collapse);
    function apply(c) {
      panel.classList.toggle('collapsed', c);
      b.setAttribute('aria-expanded', c ? 'false' : 'true');
    }
    apply(!!collapsed[b.dataset.collapse]);
    b.addEventListener('click', function () {
      var c = !panel.classList.contains('collapsed');
      apply(c);
      collapsed[b.dataset.collapse] = c;
      remembered.set('phone2mqtt.manager.collapsed', JSON.stringify(collapsed));
    });
  });
}

// Escape closes the phone panel; `/` goes to the search.
function wireKeys() {
  document.addEventListener('keydown', function (e) {
    var t = e.target, typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
    if (e.key === 'Escape') {
      if (typing && t.value) return;
      if (state.selectedId) { phonePanel.select(null, false); e.preventDefault(); }
    } else if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault(); dom.search.focus();
    }
  });
}

session.wire();
phoneList.wire();
sorting.wire();
selection.wire();
bulk.wire();
filters.wire();
phonePanel.wire();
log.wire();
directory.wire();
reminders.wire();
wireCollapse();
connection.wire();
wireKeys();
subscribe(renderFrame);

if (location.hash.length > 1) {
  try { state.wantedId = decodeURIComponent(location.hash.slice(1)); } catch (e) { state.wantedId = null; }
}
renderHeader();
phoneList.updateSummary();
selection.updateSelectionUi();
directory.renderDirectory();
reminders.renderReminders();
filters.renderOptions();
log.updateLogCount();
loadVendors();
connection.connect();
health.wire();

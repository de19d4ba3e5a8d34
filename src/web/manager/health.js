// The gateway's health in the top bar, from `/metrics` (Prometheus text): callbacks, commands,
// refusals by limit, websocket clients, MQTT reconnects, the MQTT outbox and task panics. Read every 15 s; a
// figure that means trouble (a refusal, a panic, a reconnect) is marked.
import { dom } from './dom.js';
import { el } from './util.js';

var POLL_MS = 15000;
var timer = 0;

// `name{labels} value` lines into { name: [{ labels, value }] }; comments skipped.
export function parseMetrics(text) {
  var out = {};
  text.split('\n').forEach(function (line) {
    if (!line || line.charAt(0) === '#') return;
    var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) return;
    var labels = {};
    (m[3] || '').replace(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) { labels[k] = v; return ''; });
    (out[m[1]] = out[m[1]] || []).push({ labels: labels, value: Number(m[4]) });
  });
  return out;
}

function sum(metrics, name) {
  return (metrics[name] || []).reduce(function (a, s) { return a + (isFinite(s.value) ? s.value : 0); }, 0);
}

function figure(label, value, title, trouble) {
  return el('span', { class: 'figure', 'data-trouble': trouble ? 'yes' : null, title: title },
    el('span', { class: 'label', text: label }), ' ', el('span', { class: 'value', text: String(value) }));
}

export function renderHealth(metrics) {
  var refusals = (metrics.phone2mqtt_refusals_total || []).filter(function (s) { return s.value > 0; });
  var refused = refusals.reduce(function (a, s) { return a + s.value; }, 0);
  var byLimit = refusals.map(function (s) { return s.labels.limit + ': ' + s.value; }).join('\n');
  var panics = sum(metrics, 'phone2mqtt_task_panics_total');
  var reconnects = sum(metrics, 'phone2mqtt_mqtt_reconnects_total');
  var queued = sum(metrics, 'phone2mqtt_outbox_messages');
  var drops = (metrics.phone2mqtt_outbox_dropped_total || []);
  var dropped = drops.reduce(function (a, s) { return a + s.value; }, 0);
  var byClass = drops.map(function (s) { return s.labels.class + ': ' + s.value; }).join('\n');
  var connected = sum(metrics, 'phone2mqtt_mqtt_connected') > 0;
  dom.health.replaceChildren(
    figure('Callbacks', sum(metrics, 'phone2mqtt_callbacks_total'), 'Action URL callbacks accepted from phones'),
    figure('Commands', sum(metrics, 'phone2mqtt_commands_total'), 'Commands accepted for phones and groups'),
    figure('Refused', refused, refused ? 'Inputs refused by a limit (README, table of limits):\n' + byLimit : 'No input refused by a limit', refused > 0),
    figure('Browsers', sum(metrics, 'phone2mqtt_websocket_clients'), 'Websocket clients connected now'),
    figure('Reconnects', reconnects, 'MQTT sessions re-established after a loss', reconnects > 0),
    figure('Outbox', queued + (dropped ? ' (' + dropped + ' dropped)' : ''),
      (connected ? 'Connected to the broker. ' : 'Not connected to the broker now. ') +
      'Messages waiting for the broker' + (dropped ? '; dropped from the full outbox:\n' + byClass : ''),
      !connected || dropped > 0),
    figure('Panics', panics, 'Panics caught in a supervised task (which was restarted)', panics > 0));
  dom.health.hidden = false;
}

function poll() {
  clearTimeout(timer);
  fetch('/metrics', { cache: 'no-store' }).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.text();
  }).then(function (text) { renderHealth(parseMetrics(text)); }, function () { dom.health.hidden = true; })
    .finally(function () { timer = setTimeout(poll, POLL_MS); });
}

export function wire() {
  poll();
}

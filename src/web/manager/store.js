// The state store: what the page knows, which views must be drawn again, and when they are.
//
// This module owns the state every panel reads (`state`) and the marks of what changed since the
// last frame (`dirty`). A module that changes something marks it and calls `schedule()` (or does
// both through `update()`); the renderer subscribed at start (render.js) then draws what is
// marked, at most once per animation frame, or at once after a user action (`flush()`).
// What only one panel shows (a form's last result, the bulk job) stays in that panel's module.
import { RENDER_MIN_MS } from './constants.js';

export const state = {
  base: null,                  // MQTT base topic, from /api/info
  version: '',                 // the gateway's version, from /api/info
  ws: null,                    // the websocket to the gateway, while there is one
  vendors: new Map(),          // vendor id -> vendor description
  vendorsLoaded: false,
  vendorsGen: 0,               // bumped when the vendor descriptions change
  phones: new Map(),           // phone id -> phone record
  bridges: new Map(),          // agent -> state word
  selectedId: null,            // the phone shown in the detail panel
  wantedId: null,              // selection requested by URL hash, applied once the phone appears
  checked: new Set(),          // ids ticked for bulk commands
  txIndex: new Map(),          // transaction -> record of something this page sent
  order: [],                   // phone records in table order (== DOM order of the rows)
  namesGen: 0,                 // bumped when a phone's name / subscriber / the phone set changes
  renderedNamesGen: -1,        // namesGen as last drawn
  directory: null,             // last <base>/directory payload
  reminders: new Map()         // agent -> [reminder]
};

// What the next frame draws again.
export const dirty = {
  rows: new Set(),             // ids of phones whose table row changed
  resort: new Set(),           // phones whose sort position may have changed
  sortAll: false, detail: false, header: true, filter: false,
  options: false, selection: false, bulk: false,
  directory: false, importStatus: false, reminders: false, reminderForm: false
};

// Frame work, for diagnostics.
export const stats = { flushes: 0, lastMs: 0, maxMs: 0, totalMs: 0, slow: 0 };
window.phone2mqttManagerStats = stats;

const renderers = [];
var scheduled = false, frameReq = 0, frameTimer = 0, delayTimer = 0, lastFlushAt = -1e9;

// `render(t0)` runs in every frame, `t0` being the frame's start (performance.now()).
export function subscribe(render) { renderers.push(render); }

// Changes the state and marks what to draw in one step: `change(state, dirty)`.
export function update(change) {
  change(state, dirty);
  schedule();
}

export function schedule() {
  if (scheduled) return;
  scheduled = true;
  var wait = lastFlushAt + RENDER_MIN_MS - performance.now();
  if (wait > 8) {
    delayTimer = setTimeout(function () { delayTimer = 0; frameReq = requestAnimationFrame(flush); }, wait);
  } else {
    frameReq = requestAnimationFrame(flush);
    wait = 0;
  }
  // rAF is throttled in background tabs; make sure the page still catches up.
  frameTimer = setTimeout(flush, wait + 250);
}

export function markDirty(p) {
  dirty.rows.add(p.id);
  if (p.id === state.selectedId) dirty.detail = true;
  schedule();
}

// All DOM work happens here, at most once per animation frame (and synchronously after a
// user action, so the page answers a click at once).
export function flush() {
  if (frameReq) { cancelAnimationFrame(frameReq); frameReq = 0; }
  if (frameTimer) { clearTimeout(frameTimer); frameTimer = 0; }
  if (delayTimer) { clearTimeout(delayTimer); delayTimer = 0; }
  scheduled = false;
  var t0 = performance.now();
  lastFlushAt = t0;
  renderers.forEach(function (render) { render(t0); });
  var ms = performance.now() - t0;
  stats.flushes++; stats.lastMs = ms; stats.totalMs += ms;
  if (ms > stats.maxMs) stats.maxMs = ms;
  if (ms > 16) stats.slow++;
}

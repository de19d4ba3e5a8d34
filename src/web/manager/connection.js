// The websocket to the gateway: connecting (after /api/info), the connection badge, and
// reconnecting with backoff.
import { loadInfo, loadVendors } from './api.js';
import { BACKOFF_MAX, BACKOFF_MIN, CONNECT_TIMEOUT_MS } from './constants.js';
import { dom } from './dom.js';
import { handleFrame } from './messages.js';
import { loadMe } from './session.js';
import { state } from './store.js';
import { setText } from './util.js';

var connecting = false, backoff = BACKOFF_MIN, retryTimer = 0, retryAt = 0, tickTimer = 0;

function setConn(word) {
  if (dom.conn.dataset.state !== word || dom.conn.textContent !== word) {
    dom.conn.textContent = word;
    dom.conn.dataset.state = word;
  }
  document.body.dataset.conn = word;
  dom.reconnect.hidden = word !== 'disconnected';
  if (word !== 'disconnected') { clearInterval(tickTimer); tickTimer = 0; setText(dom.connDetail, ''); }
}
function tick() {
  var left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  setText(dom.connDetail, 'showing last known state \u00b7 retrying in ' + left + ' s');
}
function scheduleRetry() {
  setConn('disconnected');
  var delay = backoff;
  backoff = Math.min(backoff * 2, BACKOFF_MAX);
  retryAt = Date.now() + delay;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
  tick();
  clearInterval(tickTimer);
  tickTimer = setInterval(tick, 1000);
}
function wsUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
}

export function connect() {
  clearTimeout(retryTimer); retryTimer = 0;
  if (state.ws || connecting) return;
  connecting = true;
  setConn('connecting');
  loadInfo().then(function (ok) {
    connecting = false;
    if (state.ws) return;
    if (!ok && state.base == null) { scheduleRetry(); return; }
    loadMe();
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { scheduleRetry(); return; }
    state.ws = sock;
    var guard = setTimeout(function () {
      if (state.ws === sock && sock.readyState === WebSocket.CONNECTING) sock.close();
    }, CONNECT_TIMEOUT_MS);
    sock.onopen = function () {
      clearTimeout(guard);
      if (state.ws !== sock) return;
      backoff = BACKOFF_MIN;
      setConn('connected');
      loadVendors();   // (re)load the command lists; only re-rendered if they changed
    };
    sock.onmessage = function (e) { if (state.ws === sock && typeof e.data === 'string') handleFrame(e.data); };
    sock.onerror = function () { /* a close event follows */ };
    sock.onclose = function () {
      clearTimeout(guard);
      if (state.ws !== sock) return;
      state.ws = null;
      scheduleRetry();
    };
  });
}

export function wire() {
  dom.reconnect.addEventListener('click', function () {
    backoff = BACKOFF_MIN;
    connect();
  });
  window.addEventListener('online', function () { if (!state.ws && !connecting) { backoff = BACKOFF_MIN; connect(); } });
}

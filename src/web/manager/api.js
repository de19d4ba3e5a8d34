// The REST API the page reads: the gateway's info and the vendors' command lists.
import { BACKOFF_MAX, BACKOFF_MIN } from './constants.js';
import { toLogin } from './session.js';
import { dirty, schedule, state, update } from './store.js';
import { str } from './util.js';

var vendorsLoading = false, vendorsJson = '', vendorRetryTimer = 0, vendorDelay = BACKOFF_MIN;

export function fetchJson(url) {
  var ctl = typeof AbortController === 'function' ? new AbortController() : null;
  var timer = setTimeout(function () { if (ctl) ctl.abort(); }, 8000);
  return fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' }, signal: ctl ? ctl.signal : undefined })
    .then(function (r) { if (r.status === 401) toLogin(); if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .finally(function () { clearTimeout(timer); });
}

export function loadInfo() {
  return fetchJson('/api/info').then(function (info) {
    update(function (s, d) {
      if (info && typeof info.base_topic === 'string' && info.base_topic.replace(/\/+$/, '')) s.base = info.base_topic.replace(/\/+$/, '');
      else if (s.base == null) s.base = 'phone2mqtt';
      s.version = info && info.version != null ? str(info.version) : '';
      d.header = true;
    });
    return true;
  }, function () { return false; });
}

export function loadVendors() {
  if (vendorsLoading) return;
  vendorsLoading = true;
  clearTimeout(vendorRetryTimer);
  fetchJson('/api/vendors').then(function (list) {
    if (!Array.isArray(list)) throw new Error('unexpected /api/vendors response');
    var json = JSON.stringify(list);
    if (json !== vendorsJson || !state.vendorsLoaded) {
      vendorsJson = json;
      state.vendors.clear();
      list.forEach(function (v) { if (v && typeof v.id === 'string') state.vendors.set(v.id, v); });
      state.vendorsLoaded = true;
      state.vendorsGen++;
      state.phones.forEach(function (p) { dirty.rows.add(p.id); });
      dirty.detail = true;
      dirty.options = true;
      schedule();
    }
    vendorDelay = BACKOFF_MIN;
  }).catch(function () {
    vendorRetryTimer = setTimeout(loadVendors, vendorDelay);
    vendorDelay = Math.min(vendorDelay * 2, BACKOFF_MAX);
  }).finally(function () { vendorsLoading = false; });
}

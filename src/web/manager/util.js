// Small helpers every panel uses: building elements, formatting times, reading payloads.
// Nothing here knows the page's state.

export function $(id) { return document.getElementById(id); }
// Build an element. Text is always set through text nodes / textContent,
// attributes through setAttribute: network data never reaches innerHTML.
export function el(tag, props) {
  var e = document.createElement(tag);
  if (props) {
    for (var k in props) {
      if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
      var v = props[k];
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.slice(0, 2) === 'on' && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (var i = 2; i < arguments.length; i++) {
    var c = arguments[i];
    if (c == null || c === false || c === '') continue;
    e.append(c);
  }
  return e;
}
export function str(v) {
  if (v == null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') { try { return JSON.stringify(v); } catch (e) { return ''; } }
  return String(v);
}
export function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
export function setData(node, key, value) {
  if (value == null || value === '') { if (key in node.dataset) delete node.dataset[key]; }
  else if (node.dataset[key] !== value) node.dataset[key] = value;
}
export function setTitle(node, text) { if (node.title !== text) node.title = text; }
function pad(n) { return (n < 10 ? '0' : '') + n; }
export function clock(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
function dateStr(d) { return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()); }
export function parseTs(ts) {
  if (typeof ts === 'string' && ts) { var d = new Date(ts); if (!isNaN(d.getTime())) return d; }
  return new Date();
}
export function fmtLastSeen(iso) {
  if (iso == null || iso === '') return '';
  var d = new Date(iso);
  if (isNaN(d.getTime())) return str(iso);
  var now = new Date();
  if (dateStr(d) === dateStr(now)) return clock(d);
  return dateStr(d) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}
// A due time in local time: "2026-11-26 15:00" (today / tomorrow spelled out).
export function fmtDue(d) {
  var hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  var today = new Date(), tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
  if (dateStr(d) === dateStr(today)) return 'today ' + hm;
  if (dateStr(d) === dateStr(tomorrow)) return 'tomorrow ' + hm;
  return dateStr(d) + ' ' + hm;
}
export function fmtRelative(d) {
  var s = Math.round((d.getTime() - Date.now()) / 1000);
  if (s <= 0) return 'due now';
  if (s < 60) return 'in ' + s + ' s';
  var m = Math.round(s / 60);
  if (m < 60) return 'in ' + m + ' min';
  var h = Math.floor(m / 60), rm = m % 60;
  if (h < 48) return 'in ' + h + ' h' + (rm ? ' ' + rm + ' min' : '');
  return 'in ' + Math.round(h / 24) + ' days';
}
export function fmtRemote(number, name) {
  var n = str(number), nm = str(name);
  if (n && nm && n !== nm) return nm + ' (' + n + ')';
  return nm || n;
}
export function terms(q) { return q.toLowerCase().split(/\s+/).filter(Boolean); }
export function matches(haystack, ts) {
  for (var i = 0; i < ts.length; i++) if (haystack.indexOf(ts[i]) === -1) return false;
  return true;
}
// Hides the items of a list whose search text (`_search`) lacks one of the terms.
export function hideUnmatched(list, ts) {
  for (var n = list.firstElementChild; n; n = n.nextElementSibling) {
    var hide = ts.length > 0 && !matches(n._search || '', ts);
    if (n.hidden !== hide) n.hidden = hide;
  }
}
// Sort key that orders "Desk 2" before "Desk 10".
export function natural(s) {
  return s.toLowerCase().replace(/\d+/g, function (n) { return n.length >= 12 ? n : ('000000000000' + n).slice(-12); });
}
export function ipKey(ip) {
  var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return ip ? '~' + ip.toLowerCase() : '';
  return [m[1], m[2], m[3], m[4]].map(function (o) { return ('00' + o).slice(-3); }).join('.');
}
// The value of a datetime-local input as RFC 3339 with the browser's UTC offset at that time.
function localToRfc3339(v) {
  var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(v || '');
  if (!m) return null;
  var d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  if (isNaN(d.getTime())) return null;
  var off = -d.getTimezoneOffset(), sign = off < 0 ? '-' : '+';
  off = Math.abs(off);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) +
    sign + pad(Math.floor(off / 60)) + ':' + pad(off % 60);
}
// "10m", "90s", "1h 30m", "2 hours": a number followed by a unit, one or more times.
function validDelay(v) { return /^\s*(\d+(\.\d+)?\s*[a-zA-Z\u00b5]+\s*)+$/.test(v); }
// Reads optional at/in inputs: {ok, at, in, label} (ok false = invalid, inputs marked).
export function readSchedule(atInput, inInput) {
  var atV = atInput ? atInput.value.trim() : '', inV = inInput ? inInput.value.trim() : '';
  if (atInput) atInput.classList.remove('invalid');
  if (inInput) inInput.classList.remove('invalid');
  if (atV && inV) {
    atInput.classList.add('invalid'); inInput.classList.add('invalid');
    return { ok: false, error: 'Give a time (at) or a delay (in), not both.' };
  }
  if (atV) {
    var at = localToRfc3339(atV);
    if (!at) { atInput.classList.add('invalid'); return { ok: false, error: 'The time is not valid.' }; }
    if (new Date(at).getTime() < Date.now() - 60000) { atInput.classList.add('invalid'); return { ok: false, error: 'The time is in the past.' }; }
    return { ok: true, extra: { at: at }, label: 'at ' + fmtDue(new Date(at)) };
  }
  if (inV) {
    if (!validDelay(inV)) { inInput.classList.add('invalid'); return { ok: false, error: 'The delay needs a unit, e.g. 90s, 10m or 1h 30m.' }; }
    return { ok: true, extra: { 'in': inV }, label: 'in ' + inV };
  }
  return { ok: true, extra: null, label: '' };
}
// A payload as JSON: the value; null for "cleared" (empty / null payload); undefined when it
// is text but not JSON.
function parsed(payload) {
  if (payload == null) return null;
  if (typeof payload !== 'string') return payload;
  var t = payload.trim();
  if (!t) return null;
  try { payload = JSON.parse(t); } catch (e) { return undefined; }
  return payload == null ? null : payload;
}
// Payload expected to be a JSON object. Returns the object, null for
// "cleared" (empty / null payload) or undefined for an unusable payload.
export function asObject(payload) {
  var v = parsed(payload);
  if (v == null) return v;
  return (typeof v === 'object' && !Array.isArray(v)) ? v : undefined;
}
// Payload expected to be a JSON array; null means cleared, undefined unusable.
export function asArray(payload) {
  var v = parsed(payload);
  if (v == null) return v;
  return Array.isArray(v) ? v : undefined;
}
// Payload expected to be a plain word ("online"); null means cleared.
export function asWord(payload) {
  if (payload == null) return null;
  if (typeof payload === 'string') {
    var t = payload.trim();
    if (t.charAt(0) === '"') { try { t = String(JSON.parse(t)).trim(); } catch (e) { /* keep raw */ } }
    return t === '' ? null : t;
  }
  if (typeof payload === 'boolean') return payload ? 'online' : 'offline';
  if (typeof payload === 'object' && typeof payload.state === 'string') return payload.state || null;
  return str(payload) || null;
}
// Settings kept in this browser (the collapsed panels); private mode keeps none.
export var remembered = {
  get: function (k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } },
  set: function (k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* private mode */ } }
};

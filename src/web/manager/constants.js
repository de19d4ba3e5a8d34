// The page's fixed numbers and tables.
export const LOG_MAX = 500;               // entries kept in the live log
export const PHONE_HISTORY = 50;          // events / results kept per phone
export const RESULT_TIMEOUT_MS = 30000;   // a command without result after this is flagged
export const BACKOFF_MIN = 1000;
export const BACKOFF_MAX = 10000;
export const CONNECT_TIMEOUT_MS = 10000;
export const RESORT_INCREMENTAL_MAX = 40; // more changed sort keys than this in one frame: sort everything
// Under sustained traffic, network-driven renders are coalesced: every render re-runs the
// browser's paint pipeline for the whole page, which costs far more than the DOM updates.
// User actions still render at once (flush() is called directly).
export const RENDER_MIN_MS = 100;         // at most ~10 network-driven renders per second
export const LOG_MIN_MS = 200;            // new log entries are inserted at most every 200 ms
export const RESORT_MIN_MS = 500;         // rows change places (live sort key) at most every 500 ms
export const MAX_IMPORT_BYTES = 4 * 1024 * 1024;
export const MANY_PHONES = 150;           // above this, rows out of view are not rendered (content-visibility)
export const DEFAULT_TITLE = 'phone2mqtt Manager';
// payload field per command arg type (unknown arg types use their own name)
export const ARG_FIELD = { number: 'number', on_off: 'state', text: 'text', key: 'key', url: 'url' };
export const COLUMNS = ['name', 'subscriber', 'phone-id', 'vendor', 'ip', 'firmware', 'availability',
  'registration', 'call-state', 'remote', 'dnd', 'last-seen'];
export const IN_CALL = { talking: 1, held: 1, dialing: 1 };
export const CALL_RANK = { ringing: '0', talking: '1', held: '2', dialing: '3', idle: '8' };
// bulk commands: argument type of each (the payload field follows ARG_FIELD)
export const BULK = { dnd: 'on_off', message: 'text', reboot: 'none' };

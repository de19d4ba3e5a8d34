// The login session: who is logged in, the way back to the login page, the first-admin form.
import { fetchJson } from './api.js';
import { $, setText, str } from './util.js';

// Not logged in (or the session ended): the login page.
export function toLogin() { location.replace('/login'); }

// Who is logged in: the name, the logout button, what the role may do, the first-admin form.
export function loadMe() {
  return fetchJson('/api/me').then(function (me) {
    document.body.dataset.role = str(me.role);
    setText($('me-name'), str(me.name));
    setText($('me-role'), str(me.role));
    $('me').hidden = false;
    $('first-user').hidden = !me.first_user;
  }, function () { /* retried with the next connect */ });
}

// The first admin, created from the page logged in with the one-time link.
export function wire() {
  $('first-user-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var form = e.target, status = $('first-user-status');
    var body = { name: form.elements.name.value.trim(), password: form.elements.password.value, role: 'admin' };
    setText(status, 'creating\u2026');
    fetch('/api/users', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { if (r.status === 401) toLogin(); return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { setText(status, 'not created: ' + str(res.body && res.body.error)); return; }
        form.reset();
        setText(status, '');
        $('first-user').hidden = true;
      }, function (err) { setText(status, 'not created: ' + str(err && err.message ? err.message : err)); });
  });
}

// Vigil login page. No inline scripts: loaded as a module under a strict CSP.
'use strict';

const form = document.getElementById('login-form');
const errorBox = document.getElementById('login-error');
const button = document.getElementById('login-button');

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

// Only same-document hash routes are accepted as a destination after login: from ?next=
// (a session that ended), else this page's own hash (a bookmarked /ui/#/search?q=… link is
// redirected here by the server and the browser keeps its fragment).
const SAFE_HASH = /^#\/[A-Za-z0-9/_-]*(\?[A-Za-z0-9%._~*+=&-]*)?$/;
function destination() {
  const next = new URLSearchParams(location.search).get('next') || location.hash || '';
  if (SAFE_HASH.test(next)) return '/ui/' + next;
  return '/ui/';
}

async function alreadySignedIn() {
  try {
    const r = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.ok) location.replace(destination());
  } catch (_) { /* not signed in or server down: stay here */ }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showError('Enter your user name and password.');
    (username ? form.elements.password : form.elements.username).focus();
    return;
  }
  errorBox.hidden = true;
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const r = await fetch('/api/v1/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (r.ok) {
      location.assign(destination());
      return;
    }
    let msg = `Sign-in failed (HTTP ${r.status})`;
    try {
      const body = await r.json();
      if (body && typeof body.error === 'string') msg = body.error;
    } catch (_) { /* not JSON */ }
    if (r.status === 429) {
      const after = r.headers.get('Retry-After');
      if (after && !msg.includes(after)) msg += ` (retry after ${after} s)`;
    }
    showError(msg);
    form.elements.password.select();
    form.elements.password.focus();
  } catch (e) {
    showError('Cannot reach the Vigil server: ' + (e && e.message ? e.message : e));
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
});

alreadySignedIn();

// The REST API. State-changing requests carry the CSRF token that /api/me hands out
// (the same value as the visio_csrf cookie): the server refuses them without it.

let me = null;

export async function whoAmI({ fresh = false } = {}) {
  if (!me || fresh) {
    const response = await fetch('/api/me', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    me = await response.json();
  }
  return me;
}

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method)) headers['X-CSRF-Token'] = (await whoAmI()).csrf;
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
}

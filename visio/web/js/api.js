// The REST API. State-changing requests carry the CSRF token that /api/me hands out
// (the same value as the visio_csrf cookie): the server refuses them without it.

let me = null;

// {user: {id, name, email} | null, csrf, sign_in, can_create_rooms}
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

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

// The JSON answer of a request, or an ApiError with the server's `detail`.
export async function apiJson(method, path, body) {
  const response = await api(method, path, body);
  if (!response.ok) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch { /* no JSON body */ }
    throw new ApiError(response.status, typeof detail === 'string' ? detail : null);
  }
  return response.status === 204 ? null : response.json();
}

// Where "Sign in" goes: the identity provider, then back to `next` (this page by default).
export function signInUrl(next = window.location.pathname + window.location.search) {
  return `/auth/login?next=${encodeURIComponent(next || '/')}`;
}

// The page of a room's transcripts and recordings.
export function transcriptsPath(roomId) {
  return `/${encodeURIComponent(roomId)}/transcripts`;
}

export async function signOut() {
  await apiJson('POST', '/auth/logout');
  me = null;
}

export function myRooms() {
  return apiJson('GET', '/api/rooms');
}

// changes: {name?, access?, language?}
export function updateRoom(id, changes) {
  return apiJson('PATCH', `/api/rooms/${encodeURIComponent(id)}`, changes);
}

export function getRoom(id) {
  return apiJson('GET', `/api/rooms/${encodeURIComponent(id)}`);
}

// Transcripts and recordings (captures) of a room, newest first.
export function roomCaptures(id) {
  return apiJson('GET', `/api/rooms/${encodeURIComponent(id)}/captures`);
}

export function deleteCapture(id) {
  return apiJson('DELETE', `/api/captures/${encodeURIComponent(id)}`);
}

export function retryCapture(id) {
  return apiJson('POST', `/api/captures/${encodeURIComponent(id)}/retry`);
}

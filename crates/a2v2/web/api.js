// Thin client for the management API. The session cookie is HttpOnly, so the CSRF token from
// the session body is the only credential this code holds, and only in memory.

let csrfToken = null;
let onUnauthenticated = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

// Called when a request made with a session comes back 401: the session ended (signed out
// elsewhere, expired, or the member was removed), so the app must send the person to sign in.
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || defaultMessage(status));
    this.status = status;
    this.code = error.code || 'unknown';
    this.fields = error.fields || null;
    this.requestId = error.request_id || null;
  }
}

function defaultMessage(status) {
  if (status === 0) return 'Could not reach the server. Check your connection and try again.';
  if (status >= 500) return 'The server ran into a problem. Try again in a moment.';
  return `The request failed (HTTP ${status}).`;
}

// `headers` adds request headers (such as If-Match); a `Blob` body (a chosen file) is sent as
// it is, with its own type, instead of as JSON.
export async function api(method, path, body, { quietUnauthenticated = false, headers: extra = {} } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  const raw = body instanceof Blob;
  if (body !== undefined && !raw) headers['Content-Type'] = 'application/json';
  if (raw) headers['Content-Type'] = 'text/csv';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    if (response.status === 401 && !quietUnauthenticated) onUnauthenticated();
    throw err;
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// Follows `next_cursor` until the list is complete; used for small lists such as agents.
export async function listAll(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', `${path}${query({ limit: 200, cursor })}`);
    items.push(...page.data);
    cursor = page.has_more ? page.next_cursor : null;
  } while (cursor);
  return items;
}

export const enc = encodeURIComponent;

// Uploads a file as a multipart `file` part with progress reports; `onProgress(fraction)`
// runs as bytes go out. fetch() cannot report upload progress, so this uses XMLHttpRequest.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', path);
    request.setRequestHeader('Accept', 'application/json');
    if (csrfToken) request.setRequestHeader('X-CSRF-Token', csrfToken);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(request.responseText);
      } catch {
        data = null;
      }
      if (request.status >= 200 && request.status < 300) {
        resolve(data);
        return;
      }
      if (request.status === 401) onUnauthenticated();
      reject(new ApiError(request.status, data));
    });
    request.addEventListener('error', () => reject(new ApiError(0, null)));
    const form = new FormData();
    form.append('file', file, file.name);
    request.send(form);
  });
}

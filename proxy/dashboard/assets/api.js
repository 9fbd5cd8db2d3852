// The JSON API of the sidecar, called with the bearer token that the reader gives once
// per browser session (kept in sessionStorage, sent as Authorization: Bearer).

const TOKEN_KEY = 'ctwa-sidecar.api-token';

/** ApiError is an answer that is not 2xx, with the API's own message in words. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

let promptForToken = async () => {
  throw new ApiError(401, 'unauthorized', 'The sidecar needs its API token.');
};
let pendingPrompt = null;

/** setTokenPrompt installs the function that asks the reader for the token; it resolves
 * to the token, or rejects when the reader cancels. */
export function setTokenPrompt(fn) {
  promptForToken = fn;
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives until the page is closed */
  }
}

/** request calls the API. opts: method, body (object → JSON, string → as is), type
 * (content type of a string body), as: 'json' (default) or 'blob', quiet: never ask for
 * the token. A 401 asks for the token once (concurrent calls share the question) and
 * retries; a token the sidecar refused is dropped before asking. */
export async function request(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: opts.as === 'blob' ? 'text/csv, application/json' : 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let body = opts.body;
    if (body !== undefined && typeof body !== 'string') {
      body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      headers['Content-Type'] = opts.type || 'text/plain';
    }
    let res;
    try {
      res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store' });
    } catch (err) {
      throw new ApiError(0, 'unreachable',
        `Cannot reach the sidecar (${err.message}). Is it still running, and was this page opened from its API address?`);
    }
    if (res.status === 401 && attempt < 5 && !opts.quiet) {
      const refused = Boolean(token);
      // A refused token is dropped at once: whatever the reader does next, nothing wrong
      // stays in the tab.
      if (refused && getToken() === token) setToken('');
      else if (getToken() && getToken() !== token) continue; // another call got a new token meanwhile
      if (!pendingPrompt) {
        pendingPrompt = promptForToken(refused).finally(() => { pendingPrompt = null; });
      }
      setToken(await pendingPrompt);
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    if (opts.as === 'blob') return { blob: await res.blob(), filename: filenameOf(res) };
    return res.json();
  }
}

async function errorOf(res) {
  let code = 'http_' + res.status;
  let message = `The sidecar answered ${res.status} ${res.statusText}.`;
  let field = '';
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      field = body.error.field || '';
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, code, message, field);
}

function filenameOf(res) {
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  return m ? m[1] : 'download.csv';
}

/** download fetches a CSV with the token and hands it to the browser as a file. */
export async function download(path, filename) {
  const { blob } = await request(path, { as: 'blob' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

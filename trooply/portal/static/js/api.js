// The portal's only way to the server: the public /v1 API, same origin, with the secret key as a bearer token.
// The key lives in sessionStorage: it is gone when the tab closes and never sits in a URL or a cookie.

const KEY_STORAGE = "trooply.portal.key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  signIn(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

const listeners = { unauthorized: [] };
export function onUnauthorized(callback) {
  listeners.unauthorized.push(callback);
}

// API paths are absolute from the site root: the portal lives at /portal/, the API at /v1/.
export async function api(method, path, { json, form, query, key } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${key || session.key}`, Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser writes the multipart boundary
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
  } catch (error) {
    throw new ApiError(0, "network_error", "The server could not be reached. Check that it is running.", null);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : { code: "http_error", message: `${response.status} ${response.statusText}` };
    const apiError = new ApiError(response.status, error.code, error.message, error.details);
    if (response.status === 401 && !key) listeners.unauthorized.forEach((callback) => callback(apiError));
    throw apiError;
  }
  return payload;
}

export const get = (path, query) => api("GET", path, { query });
export const postJson = (path, json, query) => api("POST", path, { json, query });
export const postForm = (path, form) => api("POST", path, { form });
export const del = (path) => api("DELETE", path);

// The product id is one path segment: encode every reserved character.
export const productPath = (id) => `/v1/products/${encodeURIComponent(id)}`;

export function describeError(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  return error.code && error.code !== "http_error" ? `${error.message} (${error.code})` : error.message;
}

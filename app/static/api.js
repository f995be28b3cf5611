// The service's API as the page uses it. The token lives in sessionStorage (this tab only),
// travels in the Authorization header and nowhere else: never in a URL, never logged.

const TOKEN_KEY = "faceq.token";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the service, or a failure to reach it, in words. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** "the API token is not valid (HTTP 403, invalid_token)" */
  describe() {
    if (!this.status) return this.message;
    return `${this.message} (HTTP ${this.status}${this.code ? `, ${this.code}` : ""})`;
  }
}

function headers() {
  const token = getToken();
  return token ? { Authorization: token } : {};
}

async function errorOf(response) {
  let code = "";
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) {
      code = String(body.error.code || "");
      message = String(body.error.message || message);
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, code, message);
}

async function request(path) {
  let response;
  try {
    response = await fetch(path, { headers: headers(), cache: "no-store" });
  } catch {
    throw new ApiError(0, "unreachable", "the service cannot be reached");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** GET a JSON document. */
export async function getJson(path) {
  return (await request(path)).json();
}

/** GET a binary (an image) and return an object URL for it. */
export async function getBlobUrl(path) {
  const blob = await (await request(path)).blob();
  return URL.createObjectURL(blob);
}

/**
 * POST ``form`` (multipart) with upload progress; resolves to the JSON answer.
 * ``onProgress(fraction)`` gets 0..1 while the body is sent, then null while the service works.
 * Returns {promise, abort}.
 */
export function postForm(path, form, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(null));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body !== null) {
        resolve(body);
        return;
      }
      const error = body && body.error ? body.error : {};
      reject(
        new ApiError(
          xhr.status,
          String(error.code || ""),
          String(error.message || xhr.statusText || "the service gave no answer"),
        ),
      );
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "unreachable", "the service cannot be reached")),
    );
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "cancelled")));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

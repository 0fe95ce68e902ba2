// connect.js: a minimal client for the Connect protocol's JSON encoding.
// Unary calls POST application/json; server streams POST
// application/connect+json with enveloped messages (flags byte, big-endian
// uint32 length, payload); flag 0x02 marks the end-of-stream message.

const END_STREAM = 0x02;
const COMPRESSED = 0x01;

/** ConnectError carries a Connect error code ("unavailable", ...) and message. */
export class ConnectError extends Error {
  constructor(code, message, details = []) {
    super(message ? `${code}: ${message}` : code);
    this.name = 'ConnectError';
    this.code = code;
    this.rawMessage = message || '';
    this.details = details;
  }
}

// Codes for HTTP statuses when the server sent no Connect error body.
function codeFromStatus(status) {
  switch (status) {
    case 400: return 'internal';
    case 401: return 'unauthenticated';
    case 403: return 'permission_denied';
    case 404: return 'unimplemented';
    case 429: case 502: case 503: case 504: return 'unavailable';
    default: return 'unknown';
  }
}

async function errorFromResponse(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (body && typeof body.code === 'string') {
    return new ConnectError(body.code, body.message || '', body.details || []);
  }
  return new ConnectError(codeFromStatus(res.status), `HTTP ${res.status}`);
}

function toConnectError(err) {
  if (err instanceof ConnectError) return err;
  if (err && err.name === 'AbortError') return new ConnectError('canceled', 'request canceled');
  return new ConnectError('unavailable', err && err.message ? err.message : String(err));
}

/** encodeEnvelope frames one JSON message. */
export function encodeEnvelope(flags, obj) {
  const payload = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.length, false);
  out.set(payload, 5);
  return out;
}

/**
 * createClient returns {unary, stream} bound to a base URL (default: this
 * origin) and a token getter; a non-empty token is sent as a bearer token.
 */
export function createClient({ baseUrl = '', token = () => '' } = {}) {
  function headers(contentType) {
    const h = { 'Content-Type': contentType, 'Connect-Protocol-Version': '1' };
    const t = token();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  }

  /** unary calls service/method with a protojson request object. */
  async function unary(service, method, request = {}, { signal, timeoutMs = 10000 } = {}) {
    const h = headers('application/json');
    h['Connect-Timeout-Ms'] = String(timeoutMs);
    let res;
    try {
      res = await fetch(`${baseUrl}/${service}/${method}`, {
        method: 'POST', headers: h, body: JSON.stringify(request), signal,
      });
    } catch (err) {
      throw toConnectError(err);
    }
    if (!res.ok) throw await errorFromResponse(res);
    try {
      return await res.json();
    } catch (err) {
      throw new ConnectError('internal', `decode response: ${err.message}`);
    }
  }

  /**
   * stream calls a server-streaming method and yields each response message.
   * It ends when the server sends the end-stream message, throwing its error
   * if it carries one. Abort the signal to cancel.
   */
  async function* stream(service, method, request = {}, { signal } = {}) {
    let res;
    try {
      res = await fetch(`${baseUrl}/${service}/${method}`, {
        method: 'POST', headers: headers('application/connect+json'),
        body: encodeEnvelope(0, request), signal,
      });
    } catch (err) {
      throw toConnectError(err);
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (!res.body) throw new ConnectError('internal', 'response has no body stream');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = new Uint8Array(0);
    try {
      for (;;) {
        while (buf.length >= 5) {
          const flags = buf[0];
          const len = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1, false);
          if (buf.length < 5 + len) break;
          const payload = buf.subarray(5, 5 + len);
          buf = buf.slice(5 + len);
          if (flags & COMPRESSED) throw new ConnectError('internal', 'compressed message not supported');
          const msg = len ? JSON.parse(decoder.decode(payload)) : {};
          if (flags & END_STREAM) {
            if (msg.error) throw new ConnectError(msg.error.code || 'unknown', msg.error.message || '', msg.error.details || []);
            return;
          }
          yield msg;
        }
        let chunk;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw toConnectError(err);
        }
        if (chunk.done) throw new ConnectError('unavailable', 'stream ended without an end-stream message');
        const next = new Uint8Array(buf.length + chunk.value.length);
        next.set(buf);
        next.set(chunk.value, buf.length);
        buf = next;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  return { unary, stream };
}

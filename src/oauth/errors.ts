// Reads an error answer from the Stellantis IDP or API in whichever shape it came (OAuth2,
// API gateway, backend, text/HTML or nothing) and says it in one line with the HTTP status,
// never echoing a token that the body may carry.
import { STATUS_CODES } from "node:http";

export interface ApiErrorInfo {
  status: number;
  shape: "oauth" | "gateway" | "backend" | "text" | "empty";
  code?: string;
  /** one line: "HTTP 401 invalid_client: Client authentication failed" */
  message: string;
}

/** Longest piece of server text kept in a message. */
const MAX_TEXT = 200;

const CERT_495 = "invalid or expired client certificate";

export function describeErrorBody(status: number, body: string, contentType?: string): ApiErrorInfo {
  const head = `HTTP ${status}`;
  const trimmed = body.trim();
  if (trimmed === "") {
    return finish({ status, shape: "empty", message: `${head}${reasonPhrase(status)} (empty body)` });
  }
  const json = parseJsonObject(trimmed, contentType);
  if (json) {
    const info = fromJson(status, json);
    if (info) return finish(info);
    return finish({ status, shape: "text", message: `${head}: ${cut(redactText(JSON.stringify(redactJson(json))))}` });
  }
  const text = /html/i.test(contentType ?? "") || /^<(!doctype|html|\?xml|head|body)/i.test(trimmed) ? htmlToText(trimmed) : trimmed;
  const line = cut(redactText(oneLine(text)));
  return finish({ status, shape: "text", message: line ? `${head}: ${line}` : `${head}${reasonPhrase(status)} (no readable text in the body)` });
}

function fromJson(status: number, j: Record<string, unknown>): ApiErrorInfo | undefined {
  const head = `HTTP ${status}`;
  // OAuth2 (RFC 6749 §5.2): {"error": "invalid_client", "error_description": "..."}
  if (typeof j.error === "string" && j.error !== "") {
    const desc = str(j.error_description) ?? str(j.message);
    const code = cut(oneLine(j.error));
    return { status, shape: "oauth", code, message: `${head} ${code}${desc ? `: ${desc}` : ""}` };
  }
  // IBM-style API gateway: {"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "..."}
  if ("httpCode" in j || "httpMessage" in j || "moreInformation" in j) {
    const code = str(j.httpCode);
    const httpMessage = str(j.httpMessage);
    const more = str(j.moreInformation);
    const gw = code && code !== String(status) ? ` (gateway ${code})` : "";
    const what = [httpMessage, more].filter(Boolean).join(": ");
    return { status, shape: "gateway", ...(code ? { code } : {}), message: `${head}${gw}${what ? ` ${what}` : ""}` };
  }
  // Backend: {"code": 495, "message": "..."}, sometimes wrapped as {"error": {"code", "message"}}.
  const inner = isObject(j.error) ? j.error : j;
  if ("code" in inner || "message" in inner) {
    const code = str(inner.code);
    const msg = str(inner.message);
    if (code === "495" || status === 495) {
      const extra = msg && !msg.toLowerCase().includes(CERT_495) ? `: ${msg}` : "";
      return { status, shape: "backend", code: code ?? "495", message: `${head} ${CERT_495}${extra}` };
    }
    const c = code && code !== String(status) ? ` ${code}` : "";
    return { status, shape: "backend", ...(code ? { code } : {}), message: `${head}${c}${msg ? `: ${msg}` : reasonPhrase(status)}` };
  }
  return undefined;
}

/** Makes the message one safe line, and names 495 whatever shape carried it. */
function finish(info: ApiErrorInfo): ApiErrorInfo {
  let message = redactText(oneLine(info.message));
  if (info.status === 495 && !message.toLowerCase().includes(CERT_495)) message += ` (${CERT_495})`;
  return { ...info, message };
}

function parseJsonObject(text: string, contentType: string | undefined): Record<string, unknown> | undefined {
  // Gateways often say text/plain or nothing for JSON: go by the body, not only by the header.
  if (!text.startsWith("{") && !/json/i.test(contentType ?? "")) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A short one-line string from a JSON value, or undefined when there is nothing to say. */
function str(v: unknown): string | undefined {
  if (typeof v === "string") return v.trim() === "" ? undefined : cut(oneLine(v));
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

function reasonPhrase(status: number): string {
  const r = STATUS_CODES[status];
  return r ? ` ${r}` : "";
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function cut(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

/** Text of an HTML page: scripts and styles dropped, tags removed, common entities decoded. */
function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/&lt;/gi, "<")
    .replace(/&gt;/gi, ">")
    .replace(/&quot;/gi, '"')
    .replace(/&#39;|&apos;/gi, "'")
    .replace(/&amp;/gi, "&");
}

const SECRET_KEYS = /^(access_token|refresh_token|id_token|token|client_secret|password)$/i;

function redactJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redactJson);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) out[k] = SECRET_KEYS.test(k) ? "[redacted]" : redactJson(val);
  return out;
}

/** Removes token values from free text: JSON or form pairs, and Bearer/Basic credentials. */
export function redactText(s: string): string {
  return s
    .replace(/("?\b(?:access_token|refresh_token|id_token|client_secret)"?\s*[:=]\s*"?)[^"&\s,;}]+/gi, "$1[redacted]")
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, "$1 [redacted]");
}

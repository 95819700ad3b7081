// Calls to the API: who the caller is (their API key, kept in this browser), and errors turned into
// sentences people understand (401 asking for a key, 429 with its Retry-After, 503 naming what is down,
// 422 naming the field), in the page's language.

import { t } from "./i18n.js";

const KEY_STORE = "chatbot.apiKey";
const MAX_TOKENS_STORE = "chatbot.maxTokens";

export const account = {
  get apiKey() {
    return localStorage.getItem(KEY_STORE) || "";
  },
  set apiKey(value) {
    if (value) localStorage.setItem(KEY_STORE, value);
    else localStorage.removeItem(KEY_STORE);
  },
  get maxTokens() {
    const value = parseInt(localStorage.getItem(MAX_TOKENS_STORE) || "", 10);
    return Number.isFinite(value) && value > 0 ? value : null;
  },
  set maxTokens(value) {
    if (value) localStorage.setItem(MAX_TOKENS_STORE, String(value));
    else localStorage.removeItem(MAX_TOKENS_STORE);
  },
  signOut() {
    localStorage.removeItem(KEY_STORE);
  },
};

// The strings table's sentence for an error code, else for a status.
const EXPLANATIONS = {
  prompt_too_long: "error.promptTooLong",
  max_tokens_too_large: "error.maxTokens",
  401: "error.key",
  403: "error.forbidden",
  404: "error.notFound",
  409: "error.conflict",
  413: "error.tooLarge",
  429: "error.busy",
  503: "error.down",
};

export class ApiError extends Error {
  constructor(status, code, message, { fields = [], retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }

  // What to tell the person, in the page's language: a sentence for the kind of refusal, then the
  // server's own message (its details: the field, the limit). The countdown of a 429 is the
  // banner's job (it has retryAfter).
  get explanation() {
    const message = this.message;
    if (this.status === 0) return message;
    if (this.status === 422 && this.fields.length) {
      return t("error.fields", { fields: this.fields.map((field) => `"${field}"`).join(", "), message });
    }
    const key = EXPLANATIONS[this.code] || EXPLANATIONS[this.status];
    return key ? t(key, { message }) : t("error.other", { message, status: this.status });
  }
}

export function headers(extra = {}) {
  const result = { ...extra };
  if (account.apiKey) result.Authorization = `Bearer ${account.apiKey}`;
  return result;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the status line
  }
  const error = body?.error ?? {};
  const retry = parseInt(response.headers.get("Retry-After") || "", 10);
  return new ApiError(response.status, error.code || "error", error.message || response.statusText, {
    fields: error.fields || [],
    retryAfter: Number.isFinite(retry) ? retry : null,
  });
}

// fetch with the caller's headers; a refusal becomes an ApiError, a network failure too (status 0).
export async function request(path, { method = "GET", body, json, signal, accept, extraHeaders = {} } = {}) {
  const extra = { ...extraHeaders };
  if (json !== undefined) {
    extra["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (accept) extra.Accept = accept;
  let response;
  try {
    response = await fetch(path, { method, body, signal, headers: headers(extra) });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", t("error.network"));
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

export async function download(path, fallbackName) {
  const response = await request(path);
  const disposition = response.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="([^"]+)"/i.exec(disposition);
  const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Small DOM helpers every view shares: elements, the error banner (with a 429's countdown), the
// delete confirmation, avatars.

import { headers } from "./api.js";
import { t } from "./i18n.js";

export const $ = (selector, root = document) => root.querySelector(selector);

// An element with properties (className, textContent, dataset...) and children; text is never HTML.
export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  const { dataset, attrs, ...rest } = props;
  Object.assign(element, rest);
  Object.assign(element.dataset, dataset || {});
  for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, value);
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

const banner = () => $("#banner");
let countdown = null;

// Shows what went wrong; a 429 counts down its Retry-After and calls `onReady` at zero.
export function showError(error, onReady) {
  clearInterval(countdown);
  const element = banner();
  element.hidden = false;
  element.className = "banner error";
  const text = error.explanation || error.message || String(error);
  if (error.status === 429 && error.retryAfter) {
    let left = error.retryAfter;
    const tick = () => {
      element.textContent = t("banner.retryIn", { text, seconds: left });
      if (left-- <= 0) {
        clearInterval(countdown);
        element.textContent = t("banner.retryNow", { text });
        onReady?.();
      }
    };
    tick();
    countdown = setInterval(tick, 1000);
    return;
  }
  element.textContent = text;
}

export function showInfo(text) {
  clearInterval(countdown);
  const element = banner();
  element.hidden = false;
  element.className = "banner info";
  element.textContent = text;
}

export function clearBanner() {
  clearInterval(countdown);
  banner().hidden = true;
}

export function confirmDelete(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// The character's picture, or its initial on a colour of its own when it has none. The picture is
// fetched with the API key (an <img src> cannot send it) and shown from a blob: URL.
export function avatar(character, size = "") {
  if (character.has_avatar) {
    const image = el("img", { className: `avatar ${size}`, alt: "", width: 96, height: 96 });
    const url = `/characters/${character.id}/avatar?v=${encodeURIComponent(character.updated_at)}`;
    fetch(url, { headers: headers() })
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(response.statusText))))
      .then((blob) => {
        image.addEventListener("load", () => URL.revokeObjectURL(image.src), { once: true });
        image.src = URL.createObjectURL(blob);
      })
      .catch(() => image.replaceWith(initialOf(character, size)));
    return image;
  }
  return initialOf(character, size);
}

function initialOf(character, size) {
  const hue = [...character.name].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 360;
  const initial = el("span", { className: `avatar initial ${size}`, textContent: character.name[0] || "?" });
  initial.style.background = `hsl(${hue} 45% 40%)`;
  initial.setAttribute("aria-hidden", "true");
  return initial;
}

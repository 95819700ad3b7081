// Batches: submit a JSONL file of dialogue jobs; the caller's batches (GET /batches, so a reload or
// another browser shows them too) with their progress, results to download, cancel.

import { download, getJson, request } from "./api.js";
import { t } from "./i18n.js";
import { $, clearBanner, el, showError } from "./ui.js";

const POLL_MS = 1000;
const SHOWN = 20; // the caller's newest batches (GET /batches), wherever they were submitted

let timer = null;

function row(batch) {
  const finished = batch.counts.complete + batch.counts.error + batch.counts.cancelled;
  const counts = Object.entries(batch.counts)
    .filter(([, count]) => count)
    .map(([state, count]) => t("batch.count", { count, state: t(`state.${state}`) }))
    .join(", ");
  const open = batch.state === "queued" || batch.state === "running";
  return el(
    "li",
    { className: "batch", dataset: { id: batch.id, state: batch.state } },
    el("div", { className: "batch-head" }, el("code", { textContent: batch.id }), el("span", { className: "badge", textContent: t(`state.${batch.state}`) })),
    el("progress", { max: batch.total, value: finished, attrs: { "aria-label": t("batch.progressLabel", { id: batch.id, finished, total: batch.total }) } }),
    el("p", { className: "hint", textContent: `${t("batch.done", { finished, total: batch.total })}${counts ? ` — ${counts}` : ""}` }),
    el(
      "div",
      { className: "row" },
      el("button", { type: "button", textContent: t("batch.download"), onclick: () => download(`/batches/${batch.id}/results`, `batch-${batch.id}.jsonl`).catch(showError) }),
      open ? el("button", { type: "button", className: "danger", textContent: t("batch.cancel"), onclick: () => cancel(batch.id) }) : null,
    ),
  );
}

async function cancel(id) {
  try {
    await request(`/batches/${id}/cancel`, { method: "POST" });
    await refresh();
  } catch (error) {
    showError(error);
  }
}

async function refresh() {
  clearTimeout(timer);
  const batches = (await getJson(`/batches?page_size=${SHOWN}`)).items;
  $("#batch-list").replaceChildren(...batches.map(row));
  $("#batch-none").hidden = batches.length > 0;
  if (batches.some((batch) => batch.state === "queued" || batch.state === "running") && !$("#view-batches").hidden) {
    timer = setTimeout(() => refresh().catch(showError), POLL_MS);
  }
}

async function submit(event) {
  event.preventDefault();
  const file = $("#batch-file").files[0];
  if (!file) return;
  clearBanner();
  try {
    await getJson("/batches", { method: "POST", body: file, extraHeaders: { "Content-Type": "application/x-ndjson" } });
    $("#batch-file").value = "";
    await refresh();
  } catch (error) {
    showError(error);
  }
}

export function showBatches() {
  refresh().catch(showError);
}

export function initBatches() {
  $("#batch-form").addEventListener("submit", submit);
}

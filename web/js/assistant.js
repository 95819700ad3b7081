// The assistant (`/Llama_stream`): questions and streamed answers, the grounding switch, and the
// sources a grounded answer was given.

import { account, request } from "./api.js";
import { t } from "./i18n.js";
import { jobFailure, stopJob, streamJob } from "./jobs.js";
import { renderRoleplay, streamRenderer } from "./render.js";
import { $, clearBanner, el, showError } from "./ui.js";

let conversationId = null; // the topic: later questions continue it
let jobId = null;

function bubble(role, text) {
  const body = el("div", { className: "msg-body" });
  renderRoleplay(body, text);
  const element = el("article", { className: `msg ${role}` }, el("div", { className: "msg-head" }, el("span", { className: "msg-name", textContent: role === "user" ? t("chat.you") : t("assistant.name") })), body);
  $("#assistant-log").append(element);
  element.scrollIntoView({ block: "end" });
  return element;
}

function sourcesList(sources) {
  return el(
    "details",
    { className: "sources", open: true },
    el("summary", { textContent: t("assistant.sources", { n: sources.length }) }),
    el(
      "ol",
      {},
      ...sources.map((source) =>
        el("li", { textContent: t("assistant.source", { title: source.title, dataset: source.dataset, row: source.row, score: Number(source.score).toFixed(2) }) }),
      ),
    ),
  );
}

function setBusy(busy) {
  $("#assistant-send").disabled = busy;
  $("#assistant-stop").hidden = !busy;
}

async function ask(event) {
  event?.preventDefault();
  const input = $("#assistant-input");
  const question = input.value.trim();
  if (!question || jobId) return;
  clearBanner();
  const body = { input_data: question, google_access: $("#grounding").checked };
  if (conversationId) body.conversation_id = conversationId;
  if (account.maxTokens) body.max_tokens = account.maxTokens;
  let response;
  try {
    response = await request("/Llama_stream", { method: "POST", json: body, accept: "text/event-stream" });
  } catch (error) {
    showError(error, () => ($("#assistant-send").disabled = false));
    return;
  }
  input.value = "";
  bubble("user", question);
  const answer = bubble("assistant", "");
  answer.classList.add("streaming");
  const renderer = streamRenderer(answer.querySelector(".msg-body"));
  conversationId = response.headers.get("X-Conversation-Id");
  jobId = response.headers.get("X-Job-Id");
  setBusy(true);
  const job = { id: jobId, text: "", lastEventId: null };
  try {
    const final = await streamJob(job, response, () => renderer.set(job.text));
    if (final?.event === "error") showError(jobFailure(final.data));
    if (final?.data.finish_reason === "cancelled") answer.querySelector(".msg-head").append(el("span", { className: "badge", textContent: t("chat.stopped") }));
    if (final?.data.sources?.length) answer.append(sourcesList(final.data.sources));
  } catch (error) {
    showError(error);
  } finally {
    answer.classList.remove("streaming");
    jobId = null;
    setBusy(false);
  }
}

export function initAssistant() {
  $("#assistant-form").addEventListener("submit", ask);
  $("#assistant-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ask();
    }
  });
  $("#assistant-stop").addEventListener("click", () => jobId && stopJob(jobId).catch(showError));
  $("#assistant-new").addEventListener("click", () => {
    conversationId = null;
    $("#assistant-log").replaceChildren();
  });
}

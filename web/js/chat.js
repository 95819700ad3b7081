// Chat with a character: pick a greeting, stream replies, Stop, Regenerate with swipes, Continue, the
// conversation list; a reply still streaming when the page reloads is resumed where it was.

import { account, getJson, request } from "./api.js";
import { t } from "./i18n.js";
import { isLeaving, jobFailure, stopJob, streamJob } from "./jobs.js";
import { renderRoleplay, streamRenderer } from "./render.js";
import { resumeJob } from "./sse.js";
import { $, avatar, clearBanner, confirmDelete, el, showError } from "./ui.js";

// The reply being streamed, kept per tab so that a reload resumes it.
const PENDING = "chatbot.pendingReply";

const state = {
  character: null,
  conversation: null, // with its messages
  job: null, // {id, mode: "message"|"regenerate"|"continue", characterId, conversationId, base, text, lastEventId}
  requesting: false, // a reply asked for, its response not yet here
};

const PENDING_FIELDS = ["id", "mode", "characterId", "conversationId", "base", "text", "lastEventId"];
const savePending = (job) => sessionStorage.setItem(PENDING, JSON.stringify(job, PENDING_FIELDS));
const loadPending = () => JSON.parse(sessionStorage.getItem(PENDING) || "null");
const clearPending = () => sessionStorage.removeItem(PENDING);

function generation() {
  const params = { detach: true }; // a reload must not cancel the reply: it is resumed
  if (account.maxTokens) params.max_tokens = account.maxTokens;
  return params;
}

// --- rendering -------------------------------------------------------------------------------

const log = () => $("#chat-log");
const nearBottom = (box) => box.scrollHeight - box.scrollTop - box.clientHeight < 80;

function speaker(role) {
  if (role === "assistant") return state.conversation?.character_name || state.character?.name || t("chat.character");
  return state.conversation?.user_name || t("chat.you");
}

function messageElement(role, { id = "", status = "" } = {}) {
  const body = el("div", { className: "msg-body" });
  const picture = role === "assistant" && state.character ? avatar(state.character, "small") : null;
  const head = el("div", { className: "msg-head" }, picture, el("span", { className: "msg-name", textContent: speaker(role) }));
  if (status === "cancelled") head.append(el("span", { className: "badge", textContent: t("chat.stopped") }));
  if (status === "error") head.append(el("span", { className: "badge error", textContent: t("chat.failed") }));
  return el("article", { className: `msg ${role}`, dataset: { id, role } }, head, body);
}

const userTurns = () => state.conversation.messages.some((message) => message.role === "user");

// Make alternative `index` of the last reply the current one, on the server: the one a reload shows,
// Continue goes on from and the next turn's prompt holds (as SillyTavern keeps the one shown).
async function chooseSwipe(message, index) {
  try {
    const path = `/conversations/${state.conversation.id}/swipe`;
    const chosen = await getJson(path, { method: "PUT", json: { swipe_id: index } });
    const messages = state.conversation.messages;
    messages[messages.indexOf(message)] = chosen;
    renderLog();
  } catch (error) {
    showError(error);
  }
}

// The < n/m > arrows of the last reply; > on the last alternative asks for a new one (Regenerate).
function swipeControls(message) {
  const shown = message.swipe_id;
  const total = message.swipes.length;
  const go = (index) => chooseSwipe(message, index);
  const busy = Boolean(state.job) || state.requesting;
  return el(
    "div",
    { className: "swipes" },
    el("button", { type: "button", className: "swipe-prev", textContent: "<", disabled: busy || shown === 0, onclick: () => go(shown - 1), attrs: { "aria-label": t("chat.previous") } }),
    el("span", { className: "swipe-count", textContent: `${shown + 1}/${total}` }),
    el("button", {
      type: "button",
      className: "swipe-next",
      textContent: ">",
      disabled: busy,
      onclick: () => (shown + 1 < total ? go(shown + 1) : regenerate()),
      attrs: { "aria-label": t(shown + 1 < total ? "chat.next" : "chat.newAlternative") },
    }),
    el("button", { type: "button", className: "regenerate", textContent: t("chat.regenerate"), disabled: busy, onclick: regenerate }),
  );
}

function renderLog() {
  const box = log();
  const stick = nearBottom(box);
  const messages = state.conversation?.messages || [];
  const lastIndex = messages.length - 1;
  const job = state.job;
  const elements = messages.map((message, index) => {
    const element = messageElement(message.role, message);
    const text = message.content;
    const isLast = index === lastIndex && message.role === "assistant";
    if (isLast && job && job.mode !== "message") {
      element.classList.add("streaming");
      element.dataset.jobId = job.id;
      job.renderer = streamRenderer(element.querySelector(".msg-body"));
      job.renderer.set(job.base + job.text);
    } else {
      renderRoleplay(element.querySelector(".msg-body"), text);
    }
    if (isLast && userTurns()) element.append(swipeControls(message));
    return element;
  });
  if (job && job.mode === "message") {
    const element = messageElement("assistant");
    element.classList.add("streaming");
    element.dataset.jobId = job.id;
    job.renderer = streamRenderer(element.querySelector(".msg-body"));
    job.renderer.set(job.text);
    elements.push(element);
  }
  box.replaceChildren(...elements);
  if (stick) box.scrollTop = box.scrollHeight;
  updateButtons();
}

function updateButtons() {
  const busy = Boolean(state.job) || state.requesting;
  const open = Boolean(state.conversation);
  $("#send").disabled = busy || !open;
  $("#stop").hidden = !busy;
  const messages = state.conversation?.messages || [];
  $("#continue").disabled = busy || !open || messages.at(-1)?.role !== "assistant" || !userTurns();
}

// --- jobs ------------------------------------------------------------------------------------

async function reloadConversation() {
  if (!state.conversation) return;
  state.conversation = await getJson(`/conversations/${state.conversation.id}`);
  renderLog();
}

// The log is busy from the click that asks for a reply until the stored reply is shown.
const setBusy = (busy) => log().setAttribute("aria-busy", String(busy));

async function follow(job, response) {
  setBusy(true);
  state.job = job;
  renderLog();
  const box = log();
  let final = null;
  try {
    final = await streamJob(job, response, () => {
      savePending(job);
      const stick = nearBottom(box);
      job.renderer.set(job.base + job.text);
      if (stick) box.scrollTop = box.scrollHeight;
    });
  } catch (error) {
    clearPending();
    showError(error);
  }
  if (isLeaving()) return;
  if (final) clearPending();
  if (final?.event === "error") showError(jobFailure(final.data));
  if (state.job !== job) return; // the view moved to another conversation meanwhile
  state.job = null;
  await reloadConversation().catch(showError);
  setBusy(false);
}

async function startJob(mode, path, body) {
  const conversation = state.conversation;
  const last = conversation.messages.at(-1);
  let response;
  clearBanner();
  setBusy(true);
  state.requesting = true;
  renderLog();
  try {
    response = await request(path, { method: "POST", json: { ...body, ...generation() }, accept: "text/event-stream" });
  } catch (error) {
    state.requesting = false;
    setBusy(false);
    showError(error, updateButtons);
    if (error.retryAfter) $("#send").disabled = true; // until the countdown ends
    return false;
  }
  const job = {
    id: response.headers.get("X-Job-Id"),
    mode,
    characterId: state.character?.id || conversation.character_id,
    conversationId: conversation.id,
    base: mode === "continue" ? last.content : "",
    text: "",
    lastEventId: null,
  };
  state.requesting = false;
  savePending(job);
  await follow(job, response);
  return true;
}

async function send(event) {
  event?.preventDefault();
  const input = $("#chat-input");
  const text = input.value.trim();
  if (!text || state.job || state.requesting || !state.conversation) return;
  input.value = "";
  const now = new Date().toISOString();
  state.conversation.messages.push({ id: "", role: "user", content: text, swipes: [text], swipe_id: 0, status: "complete", created_at: now });
  const sent = await startJob("message", `/conversations/${state.conversation.id}/messages`, { input_data: text });
  if (!sent) {
    state.conversation.messages.pop();
    input.value = text;
    renderLog();
  }
}

function regenerate() {
  if (state.job || state.requesting) return;
  startJob("regenerate", `/conversations/${state.conversation.id}/regenerate`, {});
}

function continueReply() {
  if (state.job || state.requesting) return;
  startJob("continue", `/conversations/${state.conversation.id}/continue`, {});
}

async function stop() {
  if (!state.job) return;
  try {
    await stopJob(state.job.id);
  } catch (error) {
    showError(error);
  }
}

// --- conversations ---------------------------------------------------------------------------

function greetings(character) {
  return [character.first_mes, ...(character.alternate_greetings || [])];
}

async function listConversations() {
  const list = $("#conversation-list");
  const page = await getJson(`/conversations?character_id=${state.character.id}&page_size=50`);
  list.replaceChildren(
    ...page.items.map((conversation) => {
      const when = new Date(conversation.updated_at).toLocaleString();
      const current = conversation.id === state.conversation?.id;
      return el(
        "li",
        { className: current ? "current" : "", dataset: { id: conversation.id } },
        el(
          "a",
          { href: `#/chat/${state.character.id}/${conversation.id}`, attrs: current ? { "aria-current": "true" } : {} },
          el("span", { className: "preview", textContent: conversation.preview || t("chat.noMessages") }),
          el("time", { className: "when", dateTime: conversation.updated_at, textContent: when }),
        ),
        el("button", {
          type: "button",
          className: "small danger",
          textContent: t("chat.deleteConversation"),
          attrs: { "aria-label": t("chat.deleteLabel", { when }) },
          onclick: () => removeConversation(conversation.id, when),
        }),
      );
    }),
  );
  return page.items;
}

async function removeConversation(conversationId, when) {
  if (!(await confirmDelete(t("chat.confirmDelete", { when })))) return;
  try {
    await request(`/conversations/${conversationId}`, { method: "DELETE" });
    if (state.conversation?.id === conversationId) location.hash = `#/chat/${state.character.id}`;
    else await listConversations();
  } catch (error) {
    showError(error);
  }
}

async function newChat(event) {
  event.preventDefault();
  try {
    const conversation = await getJson("/conversations", {
      method: "POST",
      json: { character_id: state.character.id, greeting_index: parseInt($("#greeting-select").value, 10) || 0 },
    });
    location.hash = `#/chat/${state.character.id}/${conversation.id}`;
  } catch (error) {
    showError(error);
  }
}

function showCharacter(character) {
  $("#chat-character").replaceChildren(avatar(character), el("h2", { textContent: character.name }));
  $("#new-chat-button").disabled = false;
  const select = $("#greeting-select");
  select.replaceChildren(
    ...greetings(character).map((text, index) => {
      const preview = text.replaceAll("{{char}}", character.name).replaceAll("{{user}}", "User").slice(0, 60);
      const label = index === 0 ? t("chat.firstMessage", { preview }) : t("chat.alternate", { n: index, preview });
      return el("option", { value: String(index), textContent: label });
    }),
  );
}

// #/chat/{characterId}[/{conversationId}]: the character's conversations, and one of them open.
export async function showChat(characterId, conversationId) {
  if (state.job && state.job.conversationId !== conversationId) {
    state.job = null; // its stream goes on server-side (detached); this view now shows another chat
    setBusy(false);
  }
  if (!characterId) {
    const last = localStorage.getItem("chatbot.lastCharacter");
    if (last) location.hash = `#/chat/${last}`;
    else {
      state.character = null;
      state.conversation = null;
      $("#new-chat-button").disabled = true;
      $("#chat-character").replaceChildren(el("p", { className: "hint", textContent: t("chat.pickCharacter") }));
      $("#conversation-list").replaceChildren();
      renderLog();
    }
    return;
  }
  try {
    if (state.character?.id !== characterId) {
      $("#new-chat-button").disabled = true;
      state.character = await getJson(`/characters/${characterId}`);
    }
    localStorage.setItem("chatbot.lastCharacter", characterId);
    showCharacter(state.character);
    state.conversation = conversationId ? await getJson(`/conversations/${conversationId}`) : null;
    const conversations = await listConversations();
    if (!conversationId && conversations.length) {
      location.hash = `#/chat/${characterId}/${conversations[0].id}`;
      return;
    }
    renderLog();
    if (state.conversation) $("#chat-input").focus();
  } catch (error) {
    if (error.status === 404) localStorage.removeItem("chatbot.lastCharacter");
    showError(error);
  }
}

// The reply this tab was streaming when it was reloaded, if any.
export const pendingReply = loadPending;

// After a reload: the reply that was streaming goes on from the last event this tab had shown.
export async function resumePending(job) {
  history.replaceState(null, "", `#/chat/${job.characterId}/${job.conversationId}`);
  setBusy(true);
  await showChat(job.characterId, job.conversationId);
  try {
    const status = await getJson(`/jobs/${job.id}`);
    if (["queued", "running"].includes(status.state)) {
      await follow(job, await resumeJob(job.id, job.lastEventId));
      return;
    }
    clearPending(); // it ended while the page reloaded: the stored reply is the whole of it
    await reloadConversation();
  } catch (error) {
    clearPending();
    showError(error);
  }
  setBusy(false);
}

export function initChat() {
  $("#composer").addEventListener("submit", send);
  $("#chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("#stop").addEventListener("click", stop);
  $("#continue").addEventListener("click", continueReply);
  $("#new-chat").addEventListener("submit", newChat);
}

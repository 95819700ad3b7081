// The page's entry: the account settings, and the views by the address's hash
// (#/characters, #/new, #/edit/{id}, #/chat/{character}/{conversation}, #/assistant, #/batches).

import { account } from "./api.js";
import { initAssistant } from "./assistant.js";
import { initBatches, showBatches } from "./batches.js";
import { initCharacters, showEditor, showGallery } from "./characters.js";
import { initChat, pendingReply, resumePending, showChat } from "./chat.js";
import { initLanguageSwitch, t, translatePage } from "./i18n.js";
import { $, clearBanner } from "./ui.js";

function showView(name, nav = name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const [section = "characters", first, second] = location.hash.replace(/^#\/?/, "").split("/");
  if (section === "chat") {
    showView("chat");
    await showChat(first, second);
  } else if (section === "new" || section === "edit") {
    showView("editor", "characters");
    await showEditor(section === "edit" ? first : null);
  } else if (section === "assistant") {
    showView("assistant");
    $("#assistant-input").focus();
  } else if (section === "batches") {
    showView("batches");
    showBatches();
  } else {
    showView("characters");
    await showGallery();
  }
}

function initAccount() {
  const describe = () => {
    $("#account-state").textContent = account.apiKey
      ? t("account.signedIn")
      : t("account.noKey");
    if (!account.apiKey) $("#api-key").closest("details").open = true;
  };
  $("#api-key").value = account.apiKey;
  $("#max-tokens").value = account.maxTokens ?? "";
  describe();
  $("#account-form").addEventListener("submit", (event) => {
    event.preventDefault();
    account.apiKey = $("#api-key").value.trim();
    account.maxTokens = parseInt($("#max-tokens").value, 10) || null;
    describe();
    clearBanner(); // what a missing key caused is asked again with the new one
    event.target.closest("details").open = false;
    route();
  });
  $("#sign-out").addEventListener("click", () => {
    account.signOut();
    $("#api-key").value = "";
    describe();
  });
}

translatePage();
initLanguageSwitch($("#lang-select"));
initAccount();
initCharacters();
initChat();
initAssistant();
initBatches();
addEventListener("hashchange", () => {
  clearBanner();
  route();
});
const pending = pendingReply();
if (pending) {
  showView("chat");
  await resumePending(pending);
} else {
  await route();
}

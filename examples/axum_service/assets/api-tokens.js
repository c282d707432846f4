// The API Tokens page's script: the two modals, the clipboard, and creating
// a token with `fetch`. The new token is only ever in this page's memory:
// not in a URL, the history, a cookie or a cached page, since the page
// itself never carries it. Closing the modal forgets it and reloads the list.
"use strict";

const createForm = document.getElementById("create-token");
if (createForm) {
  const created = document.getElementById("token-created");
  const tokenText = document.getElementById("new-token");
  const tokenLabel = document.getElementById("new-token-label");
  const copyStatus = document.getElementById("copy-status");
  const createError = document.getElementById("create-error");
  const createButton = document.getElementById("create-button");

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    createError.textContent = "";
    createButton.disabled = true;
    try {
      const response = await fetch(createForm.action, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(createForm)),
        cache: "no-store",
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok || typeof answer.token !== "string") {
        createError.textContent = answer.message
          || `The token could not be created (the service answered ${response.status}).`;
        return;
      }
      tokenText.textContent = answer.token;
      tokenLabel.textContent = answer.label;
      copyStatus.textContent = "";
      created.showModal();
    } catch {
      createError.textContent = "The service could not be reached. Nothing was created: try again.";
    } finally {
      createButton.disabled = false;
    }
  });

  document.getElementById("copy-token").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(tokenText.textContent);
      copyStatus.textContent = "Copied.";
    } catch {
      // Refused (no permission, or not a secure context): select it instead.
      getSelection().selectAllChildren(tokenText);
      copyStatus.textContent = "Copying was refused: the token is selected, copy it yourself.";
    }
  });

  // Done, Escape, or any other close: forget the token, show the new list.
  document.getElementById("close-token").addEventListener("click", () => created.close());
  created.addEventListener("close", () => {
    tokenText.textContent = "";
    location.replace(location.pathname);
  });
  // A page kept for the back button must not keep the token.
  addEventListener("pagehide", () => {
    tokenText.textContent = "";
  });
}

const confirmRevoke = document.getElementById("confirm-revoke");
if (confirmRevoke) {
  const revokeForm = document.getElementById("revoke-form");
  for (const button of document.querySelectorAll("button[data-revoke]")) {
    button.addEventListener("click", () => {
      document.getElementById("revoke-label").textContent = button.dataset.label;
      revokeForm.action = button.dataset.revoke;
      confirmRevoke.showModal();
    });
  }
  document.getElementById("cancel-revoke").addEventListener("click", () => confirmRevoke.close());
}

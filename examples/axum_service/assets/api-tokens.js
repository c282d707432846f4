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

  // Set by Done: any other close (a second Escape, which browsers let
  // through) reopens the modal rather than lose the token.
  let done = false;

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
      if (response.status !== 201 && answer.message) {
        createError.textContent = answer.message;
        return;
      }
      if (response.status !== 201 || typeof answer.token !== "string") {
        createError.textContent = "The answer could not be read, so a token may have been "
          + "created: reload the page, and revoke any token you did not get.";
        return;
      }
      tokenText.textContent = answer.token;
      tokenLabel.textContent = answer.label;
      copyStatus.textContent = "";
      done = false;
      created.showModal();
    } catch {
      createError.textContent = "The connection failed, so a token may have been created: "
        + "reload the page, and revoke any token you did not get.";
    } finally {
      createButton.disabled = false;
    }
  });

  document.getElementById("copy-token").addEventListener("click", async () => {
    if (!tokenText.textContent) {
      copyStatus.textContent = "There is no token to copy any more.";
      return;
    }
    try {
      await navigator.clipboard.writeText(tokenText.textContent);
      copyStatus.textContent = "Copied.";
    } catch {
      // Refused (no permission, or not a secure context): select it instead.
      getSelection().selectAllChildren(tokenText);
      copyStatus.textContent = "Copying was refused: the token is selected, copy it yourself.";
    }
  });

  // Only Done closes it: Escape would lose the token before it is copied.
  created.addEventListener("cancel", (event) => event.preventDefault());
  document.getElementById("close-token").addEventListener("click", () => {
    done = true;
    created.close();
  });
  // Closed by Done: forget the token, show the new list.
  created.addEventListener("close", () => {
    if (!done) {
      created.showModal();
      return;
    }
    tokenText.textContent = "";
    location.replace(location.pathname);
  });
  // A page kept for the back button keeps no token, and comes back as a
  // fresh list rather than as an emptied modal.
  addEventListener("pagehide", () => {
    tokenText.textContent = "";
  });
  addEventListener("pageshow", (event) => {
    if (event.persisted && created.open) {
      location.replace(location.pathname);
    }
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

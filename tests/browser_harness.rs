//! The browser harness the pages' tests use (`common::browser`), checked
//! against a page of its own: a real headless Chromium clicks a Copy
//! button, the harness reads the clipboard back and takes a screenshot.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use fantoccini::Locator;
use fantoccini::key::Key;

use common::browser::{self, Browser};
use common::http::serve;

/// A page like the service's token page: a text, a **Copy** button that
/// puts it on the clipboard and says whether that worked, and a box to
/// paste into.
fn copy_page(text: &str) -> Router {
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Copy check</title></head>
<body>
  <h1>Copy check</h1>
  <code id="text">{text}</code>
  <button id="copy" type="button">Copy Token</button>
  <p id="status" role="status"></p>
  <textarea id="paste" aria-label="Paste here"></textarea>
  <script>
    const status = document.getElementById("status");
    document.getElementById("copy").addEventListener("click", () => {{
      navigator.clipboard.writeText(document.getElementById("text").textContent).then(
        () => {{ status.textContent = "Copied"; }},
        error => {{ status.textContent = "Copy failed: " + error; }});
    }});
  </script>
</body>
</html>"#
    );
    Router::new().route("/", get(move || async move { Html(page) }))
}

/// A text no earlier run or other test copied.
/// Clicks the page's Copy button as a user would, and waits until the
/// page says it copied.
async fn click_copy(browser: &Browser) {
    let button = browser.find(Locator::Id("copy")).await.unwrap();
    button.click().await.unwrap();
    browser.wait_for_text("#status", "Copied").await;
}

fn fresh_text() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("copy-check-{}", nanos.as_nanos())
}

/// The script a page would run to copy without the user's click.
const COPY_WITHOUT_A_CLICK: &str = "const done = arguments[0];
    navigator.clipboard.writeText('copied by a script').then(
        () => done('copied'), error => done(String(error)));";

#[tokio::test]
async fn the_copy_button_puts_its_text_on_the_clipboard() {
    let text = fresh_text();
    let url = serve(copy_page(&text)).await;
    let browser = browser::start("copy_button").await;
    browser.goto(&url).await.unwrap();
    browser.screenshot("page").await;

    click_copy(&browser).await;
    assert_eq!(browser.clipboard_text().await, text);

    // What a user pastes with Ctrl+V is the same text: the harness reads
    // the clipboard itself, not something the page keeps.
    let paste = browser.find(Locator::Id("paste")).await.unwrap();
    paste
        .send_keys(&format!("{}v", &*Key::Control))
        .await
        .unwrap();
    assert_eq!(paste.prop("value").await.unwrap().as_deref(), Some(&*text));

    let screenshot = browser.screenshot("copied").await;
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap();
    assert_eq!(
        screenshot,
        target.join("browser-screenshots/copy_button/02-copied.png")
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        screenshot.display()
    );
    browser.close().await;
}

#[tokio::test]
async fn each_browser_has_its_own_clipboard_which_only_a_click_fills() {
    let url = serve(copy_page(&fresh_text())).await;
    let watching = browser::start("clipboard_watching").await;
    watching.goto(&url).await.unwrap();
    assert_eq!(watching.clipboard_text().await, "", "a fresh clipboard");

    // As for a user: a page cannot copy without a click, before the
    // harness has read the clipboard or after.
    let refused =
        "NotAllowedError: Failed to execute 'writeText' on 'Clipboard': Write permission denied.";
    let copied = watching
        .execute_async(COPY_WITHOUT_A_CLICK, vec![])
        .await
        .unwrap();
    assert_eq!(copied, refused);
    assert_eq!(watching.clipboard_text().await, "");
    let copied = watching
        .execute_async(COPY_WITHOUT_A_CLICK, vec![])
        .await
        .unwrap();
    assert_eq!(copied, refused);

    // Another browser's copy lands on its own clipboard only, so tests
    // running side by side never see each other's.
    let copying = browser::start("clipboard_copying").await;
    copying.goto(&url).await.unwrap();
    click_copy(&copying).await;
    assert_ne!(copying.clipboard_text().await, "");
    assert_eq!(watching.clipboard_text().await, "");

    copying.close().await;
    watching.close().await;
}

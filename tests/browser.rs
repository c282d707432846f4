//! The example's API Tokens pages in a real browser: headless Chromium,
//! driven over WebDriver as a person would use them. Shown once, copied,
//! used, revoked, refused. Each step's screenshot is saved under
//! `target/browser-screenshots/<test>/`.
//!
//! `scripts/test` installs Debian's `chromium` and `chromium-driver` when
//! they are missing; without them these tests fail saying how to get them.

mod common;

// The example itself, not a copy of it: its `main` is not called here.
#[path = "../examples/axum_service/main.rs"]
#[allow(dead_code)]
mod axum_service;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use api_tokens::{IssueRequest, PageRequest, Scope, TokenService, TokenStatus};
use axum::response::Html;
use fantoccini::Locator;
use reqwest::StatusCode;

use common::browser::{self, Browser};
use common::http::{client, serve, serve_with_connect_info};
use common::logs::Captured;
use common::{fixture, org, org_admin};

const ACME_PAGE: &str = "/organizations/acme/settings/api-tokens";
const SHOP_PAGE: &str = "/organizations/acme/domains/shop/settings/security/api-tokens";
/// A route that takes any token valid for domain acme/shop.
const SHOP_RESOURCE: &str = "/organizations/acme/domains/shop/resource";

/// The example service on a loopback port.
struct Site {
    url: String,
    tokens: Arc<TokenService>,
}

async fn start_site() -> Site {
    capture_every_log();
    let tokens = Arc::new(
        fixture()
            .service
            .with_permissions(axum_service::permissions()),
    );
    let url = serve_with_connect_info(axum_service::app(tokens.clone())).await;
    Site { url, tokens }
}

impl Site {
    /// What the protected API route answers `token`, as an API client
    /// (not the browser) calls it.
    async fn call_api_with(&self, token: &str) -> StatusCode {
        let request = client().get(format!("{}{SHOP_RESOURCE}", self.url));
        request.bearer_auth(token).send().await.unwrap().status()
    }

    async fn tokens_of(&self, scope: &Scope) -> Vec<api_tokens::TokenSummary> {
        let admin = org_admin("acme");
        let page = self.tokens.list(&admin, scope, PageRequest::first(100));
        page.await.unwrap().tokens
    }
}

/// Everything the service logs, from every thread of every test in this
/// binary, at debug level: a token must never be in it.
fn capture_every_log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

fn css(selector: &str) -> Locator<'_> {
    Locator::Css(selector)
}

async fn click(browser: &Browser, selector: &str) {
    let element = browser.wait().for_element(css(selector)).await;
    let element = element.unwrap_or_else(|error| panic!("{selector}: {error}"));
    element.click().await.unwrap();
}

async fn text_of(browser: &Browser, selector: &str) -> String {
    let element = browser.wait().for_element(css(selector)).await;
    let element = element.unwrap_or_else(|error| panic!("{selector}: {error}"));
    element.text().await.unwrap()
}

/// The page's text once it holds `needle` (what a page that submits a
/// form as it loads shows next), or whatever it holds after ten seconds.
async fn body_text_once_it_holds(browser: &Browser, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline {
        // Any error: the page is between two documents; look again.
        if let Ok(body) = browser.find(css("body")).await
            && let Ok(shown) = body.text().await
        {
            if shown.contains(needle) {
                return shown;
            }
            text = shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}

/// The path of the page the browser shows.
async fn path_shown(browser: &Browser) -> String {
    browser.current_url().await.unwrap().path().to_owned()
}

/// Signs in on the demo's sign-in page, which leads to the user's own API
/// Tokens page.
async fn sign_in(browser: &Browser, site: &Site, user: &str) {
    browser
        .goto(&format!("{}/sign-in", site.url))
        .await
        .unwrap();
    browser.screenshot("sign-in").await;
    click(browser, &format!("#sign-in-{user}")).await;
    assert_eq!(text_of(browser, "#signed-in-as").await, user);
}

/// Fills in Create Token, submits it, and reads the token from the modal.
async fn create_token(browser: &Browser, label: &str, role: &str) -> String {
    let field = browser
        .wait()
        .for_element(css("#token-label"))
        .await
        .unwrap();
    field.send_keys(label).await.unwrap();
    let roles = browser.find(css("#token-role")).await.unwrap();
    roles.select_by_value(role).await.unwrap();
    browser.screenshot("create-form-filled").await;
    click(browser, "#create-button").await;
    browser
        .wait()
        .for_element(css("#token-created[open]"))
        .await
        .unwrap();
    assert_eq!(text_of(browser, "#new-token-label").await, label);
    let warning = text_of(browser, "#token-created .warning").await;
    assert!(
        warning.contains("This is the only time the token is shown. It cannot be viewed again"),
        "{warning}"
    );
    text_of(browser, "#new-token").await
}

/// Copy Token puts the token on the clipboard a user pastes from.
async fn copy_token(browser: &Browser, token: &str) {
    click(browser, "#copy-token").await;
    browser.wait_for_text("#copy-status", "Copied.").await;
    assert_eq!(browser.clipboard_text().await, token);
}

/// Done closes the modal; the list, reloaded, shows the token's row (and
/// never the token).
async fn close_modal(browser: &Browser, label: &str) {
    click(browser, "#close-token").await;
    // The page reloads itself: a find may meet the navigation, so retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let row = browser.find(css("tr[data-token-id] td.label")).await;
        match row {
            Ok(row) => break row.text().await.unwrap(),
            Err(error) if Instant::now() > deadline => panic!("no row after Done: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(shown, label);
    assert!(browser.find(css("#token-created[open]")).await.is_err());
}

/// The token is nowhere the browser keeps or shows: not in the page, its
/// address, a cookie (HttpOnly ones included), or any page of the tab's
/// history; nor in a second tab opening the same page.
async fn assert_token_nowhere(browser: &Browser, token: &str) {
    let check_page = async |context: &str| {
        let source = browser.source().await.unwrap();
        assert!(
            !source.contains(token),
            "{context}: the token is in the page"
        );
        let url = browser.current_url().await.unwrap();
        assert!(
            !url.as_str().contains(token),
            "{context}: the token is in the address"
        );
        for cookie in browser.get_all_cookies().await.unwrap() {
            assert!(
                !cookie.to_string().contains(token),
                "{context}: in a cookie"
            );
        }
    };
    check_page("after reload").await;
    let page = browser.current_url().await.unwrap();

    // Every entry of the tab's history, back to the sign-in page.
    let entries = browser
        .execute("return history.length", vec![])
        .await
        .unwrap();
    let entries = entries.as_u64().unwrap();
    for _ in 1..entries {
        browser.back().await.unwrap();
        let at = browser.current_url().await.unwrap();
        check_page(&format!("back at {at}")).await;
    }
    for _ in 1..entries {
        browser.forward().await.unwrap();
        let at = browser.current_url().await.unwrap();
        check_page(&format!("forward at {at}")).await;
    }
    assert_eq!(browser.current_url().await.unwrap(), page);

    // Another tab on the same page.
    let first = browser.window().await.unwrap();
    let tab = browser.new_window(true).await.unwrap();
    browser.switch_to_window(tab.handle).await.unwrap();
    browser.goto(page.as_str()).await.unwrap();
    browser.wait().for_element(css("#tokens")).await.unwrap();
    check_page("in another tab").await;
    browser.close_window().await.unwrap();
    browser.switch_to_window(first).await.unwrap();
}

/// Revoke, confirmed in its modal: the list marks the token revoked.
async fn revoke(browser: &Browser, label: &str) {
    click(browser, "tr[data-token-id] button.revoke").await;
    browser
        .wait()
        .for_element(css("#confirm-revoke[open]"))
        .await
        .unwrap();
    assert_eq!(text_of(browser, "#revoke-label").await, label);
    browser.screenshot("confirm-revoke").await;
    click(browser, "#confirm-revoke-button").await;
    let notice = text_of(browser, ".notice").await;
    assert_eq!(
        notice,
        format!("“{label}” is revoked: every request with it is refused from now on.")
    );
    assert_eq!(
        text_of(browser, "tr[data-token-id] .status").await,
        "Revoked"
    );
    // A revoked token is marked, not hidden, and offers no second Revoke.
    assert!(
        browser
            .find(css("tr[data-token-id] button.revoke"))
            .await
            .is_err()
    );
    browser.screenshot("revoked").await;
}

/// The whole flow on the page the admin signed in to: create, read it from
/// the modal, copy it, use it (200), close and reload (gone), revoke with
/// confirmation, use it again (401).
async fn create_use_and_revoke(browser: &Browser, site: &Site, label: &str, role: &str) {
    let token = create_token(browser, label, role).await;
    assert!(token.starts_with("acme"), "{token}");
    // Escape, twice (browsers let a second one close a modal that refused
    // the first): the token stays until Done.
    for _ in 0..2 {
        let focused = browser.active_element().await.unwrap();
        focused.send_keys("\u{E00C}").await.unwrap();
    }
    assert!(
        browser.find(css("#token-created[open]")).await.is_ok(),
        "Escape closed it"
    );
    assert_eq!(text_of(browser, "#new-token").await, token);
    browser.screenshot("token-shown-once").await;
    copy_token(browser, &token).await;
    assert_eq!(site.call_api_with(&token).await, StatusCode::OK);
    // What the service's worker does every few seconds.
    site.tokens.flush_last_used().await.unwrap();

    close_modal(browser, label).await;
    browser.refresh().await.unwrap();
    browser.wait().for_element(css("#tokens")).await.unwrap();
    let last_used = text_of(browser, "tr[data-token-id] td:nth-child(5)").await;
    assert!(last_used.ends_with(" UTC"), "last used: {last_used}");
    browser.screenshot("list-after-reload").await;
    assert_token_nowhere(browser, &token).await;

    revoke(browser, label).await;
    assert_eq!(site.call_api_with(&token).await, StatusCode::UNAUTHORIZED);
    let log = capture_every_log().text();
    assert!(
        log.contains("API token refused"),
        "the capture misses the service's log"
    );
    assert!(!log.contains(&token), "the token is in a log line");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_admin_creates_uses_and_revokes_a_token() {
    let site = start_site().await;
    let browser = browser::start("organization_admin").await;
    sign_in(&browser, &site, "alice").await;
    assert_eq!(path_shown(&browser).await, ACME_PAGE);
    let breadcrumb = text_of(&browser, ".breadcrumb").await;
    assert_eq!(breadcrumb, "Organization Settings (acme) › API Tokens");
    browser.screenshot("organization-page").await;

    create_use_and_revoke(&browser, &site, "CI deploys", "editor").await;
    let tokens = site.tokens_of(&org("acme")).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].status, TokenStatus::Revoked);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_admin_does_the_same_and_is_refused_the_organization_page() {
    let site = start_site().await;
    let browser = browser::start("domain_admin").await;
    sign_in(&browser, &site, "bob").await;
    assert_eq!(path_shown(&browser).await, SHOP_PAGE);
    let breadcrumb = text_of(&browser, ".breadcrumb").await;
    assert_eq!(breadcrumb, "Domain Settings (shop) › Security › API Tokens");
    // A domain admin may not grant more than Admin, and the form says so.
    let roles = browser.find_all(css("#token-role option")).await.unwrap();
    let mut offered = Vec::new();
    for role in roles {
        offered.push(role.attr("value").await.unwrap().unwrap());
    }
    assert_eq!(offered, ["viewer", "editor", "admin"]);
    browser.screenshot("domain-page").await;

    create_use_and_revoke(&browser, &site, "shop sync", "viewer").await;

    browser
        .goto(&format!("{}{ACME_PAGE}", site.url))
        .await
        .unwrap();
    let problem = text_of(&browser, "#problem").await;
    assert_eq!(
        problem,
        "You are signed in as bob, an admin of domain acme/shop. Only an admin of \
         organization acme may see and manage its API tokens."
    );
    assert!(browser.find(css("#create-token")).await.is_err());
    browser.screenshot("organization-page-refused").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_label_is_said_in_words_and_creates_nothing() {
    let site = start_site().await;
    let browser = browser::start("bad_label").await;
    sign_in(&browser, &site, "alice").await;
    // Only spaces: the browser's `required` lets it through, the crate does not.
    let field = browser
        .wait()
        .for_element(css("#token-label"))
        .await
        .unwrap();
    field.send_keys("   ").await.unwrap();
    click(&browser, "#create-button").await;
    browser
        .wait_for_text(
            "#create-error",
            "The label is empty: say what the token is for.",
        )
        .await;
    assert!(browser.find(css("#token-created[open]")).await.is_err());
    browser.screenshot("bad-label").await;
    assert!(site.tokens_of(&org("acme")).await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_post_from_another_site_changes_nothing() {
    let site = start_site().await;
    let alice = org_admin("acme");
    let issued = site
        .tokens
        .issue(&alice, IssueRequest::new(org("acme"), "kept"))
        .await
        .unwrap();
    let browser = browser::start("forged_post").await;
    sign_in(&browser, &site, "alice").await;

    // Another site (`localhost` is not `127.0.0.1`'s site) whose pages
    // submit forms to ours as soon as they load.
    let create = format!("{}{ACME_PAGE}", site.url);
    let revoke = format!("{}{ACME_PAGE}/{}/revoke", site.url, issued.summary.id);
    // A sign-in as carol, with a sign-in token the attacker chose and
    // plants as our cookie (cookies do not tell ports apart).
    let planted = "1".repeat(32);
    let sign_in = format!("{}/sign-in", site.url);
    let forms = [
        format!(
            r#"<form method="post" action="{create}"><input name="csrf" value="{0}">
               <input name="label" value="forged"><input name="role" value="admin">
               <input name="expires" value="never"></form>"#,
            "0".repeat(32)
        ),
        format!(r#"<form method="post" action="{revoke}"><input name="csrf" value=""></form>"#),
        format!(
            r#"<form method="post" action="{sign_in}"><input name="csrf" value="{planted}">
               <input name="user" value="carol"></form>"#
        ),
    ];
    let plant = format!("demo_sign_in={planted}; Path=/sign-in");
    let mut attacker = axum::Router::new();
    for (n, form) in forms.into_iter().enumerate() {
        let page =
            format!("<!DOCTYPE html><body onload=\"document.forms[0].submit()\">{form}</body>");
        let answer = (
            [(axum::http::header::SET_COOKIE, plant.clone())],
            Html(page),
        );
        attacker = attacker.route(&format!("/{n}"), axum::routing::get(async || answer));
    }
    let same_site = serve(attacker).await;
    // From a page of another site (`localhost` is not `127.0.0.1`) the
    // browser sends our cookies with no POST; from another port of the
    // same host it does (and takes cookies that page sets for us), so the
    // origin the browser names and the form's token are what stop it.
    let cross_site = same_site.replace("127.0.0.1", "localhost");
    let not_signed_in = "You are not signed in";
    let not_ours = "This form did not come from your page";
    let stale_sign_in = "This sign-in form is out of date, or came from another site";
    let attacks = [
        (
            &cross_site,
            "cross-site",
            [not_signed_in, not_signed_in, stale_sign_in],
        ),
        (&same_site, "same-site", [not_ours, not_ours, stale_sign_in]),
    ];
    for (attacker, kind, refusals) in attacks {
        for (n, action) in ["create", "revoke", "sign-in"].into_iter().enumerate() {
            browser.goto(&format!("{attacker}/{n}")).await.unwrap();
            let text = body_text_once_it_holds(&browser, refusals[n]).await;
            assert!(text.contains(refusals[n]), "{kind} {action}: {text}");
            // A page in words, not the script's JSON.
            assert!(!text.contains(r#"{"message""#), "{kind} {action}: {text}");
            browser.screenshot(&format!("forged-{action}-{kind}")).await;
        }
    }
    // Still alice: the forged sign-in changed no session.
    browser
        .goto(&format!("{}{ACME_PAGE}", site.url))
        .await
        .unwrap();
    assert_eq!(text_of(&browser, "#signed-in-as").await, "alice");
    let tokens = site.tokens_of(&org("acme")).await;
    assert_eq!(tokens.len(), 1, "the forged create went through");
    assert_eq!(
        tokens[0].status,
        TokenStatus::Active,
        "the forged revoke went through"
    );

    // The real page still works in the same browser.
    browser
        .goto(&format!("{}{ACME_PAGE}", site.url))
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "tr[data-token-id] td.label").await,
        "kept"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_or_reloading_with_the_token_shown_never_shows_it_again() {
    let site = start_site().await;
    let browser = browser::start("leaving_with_the_modal_open").await;
    sign_in(&browser, &site, "alice").await;
    let page = browser.current_url().await.unwrap();

    // Away to another page and back, the modal still open when leaving.
    let first = create_token(&browser, "left open", "viewer").await;
    browser
        .goto(&format!("{}/sign-in", site.url))
        .await
        .unwrap();
    browser.back().await.unwrap();
    assert_eq!(browser.current_url().await.unwrap(), page);
    browser.wait().for_element(css("#tokens")).await.unwrap();
    assert!(browser.find(css("#token-created[open]")).await.is_err());
    assert!(!browser.source().await.unwrap().contains(&first));
    browser.screenshot("back-after-leaving").await;

    // Reloaded with the modal open.
    let second = create_token(&browser, "reloaded", "viewer").await;
    browser.refresh().await.unwrap();
    browser.wait().for_element(css("#tokens")).await.unwrap();
    assert!(browser.find(css("#token-created[open]")).await.is_err());
    let source = browser.source().await.unwrap();
    assert!(!source.contains(&first) && !source.contains(&second));
    // Both tokens were made, and are listed by label.
    let labels = browser
        .find_all(css("tr[data-token-id] td.label"))
        .await
        .unwrap();
    assert_eq!(labels.len(), 2);
    browser.close().await;
}

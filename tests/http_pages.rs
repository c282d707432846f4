//! The example's API Tokens pages over real HTTP, without a browser: what
//! every answer carries, forged and unsigned POSTs, words for every refusal,
//! escaping, paging and the session bound. `tests/browser.rs` walks the same
//! pages in Chromium.

mod common;

// The example itself, not a copy of it: its `main` is not called here.
#[path = "../examples/axum_service/main.rs"]
#[allow(dead_code)]
mod axum_service;

use std::sync::Arc;

use api_tokens::{ExpiryPolicy, PageRequest, Scope, ScopeKind, TokenService, TokenStatus};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};

use axum_service::demo_auth::{MAX_SESSIONS, SESSION_COOKIE, Session, Sessions};
use common::http::*;
use common::{DAY, fixture, org, org_admin};

const ACME_PAGE: &str = "/organizations/acme/settings/api-tokens";
const SHOP_PAGE: &str = "/organizations/acme/domains/shop/settings/security/api-tokens";

/// The example on a loopback port, and a client that does not follow
/// redirects (so that the test sees them).
struct Site {
    url: String,
    tokens: Arc<TokenService>,
    client: reqwest::Client,
}

/// A signed-in browser, as far as HTTP goes: its cookie and its forgery
/// token.
struct SignedIn {
    cookie: String,
    csrf: String,
}

async fn start() -> Site {
    start_with(fixture().service).await
}

async fn start_with(service: TokenService) -> Site {
    let tokens = Arc::new(service.with_permissions(axum_service::permissions()));
    let url = serve_with_connect_info(axum_service::app(tokens.clone())).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Site {
        url,
        tokens,
        client,
    }
}

/// The `name=value` of a `Set-Cookie`.
fn cookie_of(answer: &Answer) -> String {
    let set = answer.headers[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The sign-in form's forgery token (signed in, the page's header holds
/// the session's first).
fn sign_in_csrf(page: &str) -> String {
    let form = page.find(r#"action="/sign-in""#).expect("a sign-in form");
    csrf_in(&page[form..])
}

/// The first forgery token a page holds.
fn csrf_in(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a csrf field")
        + 19;
    page[start..start + 32].to_owned()
}

impl Site {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        Answer::of(request.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Answer {
        self.post_accepting("application/json", path, cookie, form)
            .await
    }

    /// [`Self::post`], saying what the answer may be (`Accept`): the page's
    /// script asks for JSON, a plain form submission for HTML.
    async fn post_accepting(
        &self,
        accept: &str,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let request = self.form_post(path, cookie, form).header("accept", accept);
        Answer::of(request.send().await.unwrap()).await
    }

    /// A form's POST, as a page makes it.
    fn form_post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let body = form
            .iter()
            .map(|(name, value)| format!("{name}={}", urlencode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request
    }

    /// Signs in as `user` the way the sign-in page does.
    async fn sign_in(&self, user: &str) -> SignedIn {
        let page = self.get("/sign-in", None).await;
        let anonymous = cookie_of(&page);
        let csrf = sign_in_csrf(&page.body);
        let signed_in = self
            .post(
                "/sign-in",
                Some(&anonymous),
                &[("csrf", &csrf), ("user", user)],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        let cookie = cookie_of(&signed_in);
        let home = signed_in.headers[LOCATION].to_str().unwrap().to_owned();
        let page = self.get(&home, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        SignedIn {
            csrf: csrf_in(&page.body),
            cookie,
        }
    }

    async fn create(&self, who: &SignedIn, page: &str, label: &str) -> Answer {
        let form = create_form(who.csrf.as_str(), label, "viewer", "30d");
        self.post(page, Some(&who.cookie), &form).await
    }

    async fn tokens_of(&self, scope: &Scope) -> Vec<api_tokens::TokenSummary> {
        let admin = org_admin("acme");
        let page = self.tokens.list(&admin, scope, PageRequest::first(100));
        page.await.unwrap().tokens
    }
}

/// Create Token's form, as the page sends it.
fn create_form<'a>(
    csrf: &'a str,
    label: &'a str,
    role: &'a str,
    expires: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("csrf", csrf),
        ("label", label),
        ("role", role),
        ("expires", expires),
    ]
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_answer_is_kept_by_no_cache_and_runs_no_script_but_ours() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    let answers = [
        site.get("/sign-in", None).await,
        site.get(ACME_PAGE, Some(&alice.cookie)).await,
        site.create(&alice, ACME_PAGE, "CI deploys").await,
        site.get("/assets/api-tokens.js", None).await,
    ];
    for answer in &answers {
        assert_eq!(answer.headers[CACHE_CONTROL], "no-store", "{answer:?}");
        let policy = answer.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    }
    // The token is in the create answer's body only.
    let created = &answers[2];
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.json()["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("acmeo_"));
    for (name, value) in &created.headers {
        assert!(!value.to_str().unwrap_or("").contains(&token), "{name}");
    }
    let page = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert!(page.body.contains("CI deploys"));
    assert!(!page.body.contains(&token));
}

#[tokio::test]
async fn a_signed_out_page_goes_to_sign_in_and_sign_out_ends_the_session() {
    let site = start().await;
    let away = site.get(ACME_PAGE, None).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.headers[LOCATION], "/sign-in");

    let alice = site.sign_in("alice").await;
    let out = site
        .post("/sign-out", Some(&alice.cookie), &[("csrf", &alice.csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie still works"
    );
    // Signing out again, the session already over: just to the sign-in page.
    let again = site
        .post("/sign-out", Some(&alice.cookie), &[("csrf", &alice.csrf)])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(again.headers[LOCATION], "/sign-in");
}

#[tokio::test]
async fn the_sign_in_page_keeps_nothing_and_leaves_a_session_alone() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    // Opened again while signed in: no session cookie is set,
    // so the one the browser has still works.
    let again = site.get("/sign-in", Some(&alice.cookie)).await;
    let cookies: Vec<_> = again.headers.get_all(SET_COOKIE).iter().collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].to_str().unwrap().starts_with("demo_sign_in="));
    let page = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);

    // Signing in from that browser ends its old session.
    let form_cookie = cookie_of(&again);
    let both = format!("{}; {form_cookie}", alice.cookie);
    let csrf = sign_in_csrf(&again.body);
    let form = [("csrf", csrf.as_str()), ("user", "bob")];
    let as_bob = site.post("/sign-in", Some(&both), &form).await;
    assert_eq!(as_bob.status, StatusCode::SEE_OTHER, "{}", as_bob.body);
    let old = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert_eq!(
        old.status,
        StatusCode::SEE_OTHER,
        "the old session still works"
    );
}

#[tokio::test]
async fn a_forged_sign_in_or_sign_out_is_refused() {
    let site = start().await;
    let page = site.get("/sign-in", None).await;
    let form_cookie = cookie_of(&page);
    let csrf = sign_in_csrf(&page.body);
    // Another site's sign-in form: no sign-in cookie, or not its token.
    let wrong = "0".repeat(32);
    for (cookie, sent) in [(None, csrf.as_str()), (Some(form_cookie.as_str()), &wrong)] {
        let form = [("csrf", sent), ("user", "alice")];
        let answer = site.post("/sign-in", cookie, &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{cookie:?}");
        assert!(
            answer
                .body
                .contains("This sign-in form is out of date, or came from another site")
        );
        assert!(
            answer.headers.get(SET_COOKIE).is_none(),
            "{cookie:?} signed in"
        );
    }
    // Another site's sign-out form: the session stays.
    let alice = site.sign_in("alice").await;
    for sent in ["", &wrong] {
        let answer = site
            .post("/sign-out", Some(&alice.cookie), &[("csrf", sent)])
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(
            answer
                .body
                .contains("This form did not come from your page")
        );
    }
    let page = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "a forged sign-out worked");
}

/// A POST some other page makes: path, cookie sent, form.
type Forgery<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);

#[tokio::test]
async fn forged_posts_change_nothing_and_say_why() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    let acme = org("acme");
    let created = site.create(&alice, ACME_PAGE, "kept").await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = site.tokens_of(&acme).await[0].id;
    let revoke = format!("{ACME_PAGE}/{id}/revoke");

    let wrong = "0".repeat(32);
    let other_session = site.sign_in("alice").await;
    let forgeries: [Forgery; 6] = [
        // Another site's form: the browser sends no SameSite=Strict cookie.
        (
            ACME_PAGE,
            None,
            vec![("label", "forged"), ("role", "admin"), ("expires", "never")],
        ),
        // The cookie without the page's token, or with a wrong one.
        (
            ACME_PAGE,
            Some(&alice.cookie),
            vec![("label", "forged"), ("role", "viewer"), ("expires", "7d")],
        ),
        (
            ACME_PAGE,
            Some(&alice.cookie),
            create_form(&wrong, "forged", "viewer", "7d").to_vec(),
        ),
        // Another session's token.
        (
            ACME_PAGE,
            Some(&alice.cookie),
            create_form(&other_session.csrf, "forged", "viewer", "7d").to_vec(),
        ),
        (&revoke, None, vec![]),
        (&revoke, Some(&alice.cookie), vec![("csrf", &wrong)]),
    ];
    for (path, cookie, form) in forgeries {
        let answer = site.post(path, cookie, &form).await;
        // Which check refused it: the session, or the form's token.
        let (status, words) = match cookie {
            None => (StatusCode::UNAUTHORIZED, "You are not signed in"),
            Some(_) => (
                StatusCode::FORBIDDEN,
                "This form did not come from your page",
            ),
        };
        assert_eq!(answer.status, status, "{path} {cookie:?} {form:?}");
        assert!(answer.body.contains(words), "{path}: {}", answer.body);
        assert!(
            answer.body.contains("Nothing was changed"),
            "{path}: {}",
            answer.body
        );
    }
    // Another site's form, sent as a browser sends it: a page in words.
    let form = [("label", "forged"), ("role", "viewer"), ("expires", "7d")];
    let answer = site
        .post_accepting("text/html", ACME_PAGE, None, &form)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer.body.starts_with("<!DOCTYPE html>"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("You are not signed in"),
        "{}",
        answer.body
    );

    let tokens = site.tokens_of(&acme).await;
    assert_eq!(tokens.len(), 1, "a forged create went through");
    assert_eq!(
        tokens[0].status,
        TokenStatus::Active,
        "a forged revoke went through"
    );

    // The real form still works.
    let revoked = site
        .post(&revoke, Some(&alice.cookie), &[("csrf", &alice.csrf)])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert_eq!(site.tokens_of(&acme).await[0].status, TokenStatus::Revoked);
}

#[tokio::test]
async fn refusals_are_said_in_words() {
    let site = start().await;
    let bob = site.sign_in("bob").await;

    // A domain admin on the organization's page.
    let page = site.get(ACME_PAGE, Some(&bob.cookie)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("You are signed in as bob, an admin of domain acme/shop. Only an admin of organization acme may see and manage its API tokens."), "{}", page.body);
    assert!(!page.body.contains("create-token"));
    let create = site.create(&bob, ACME_PAGE, "sneaky").await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert!(
        create.json()["message"]
            .as_str()
            .unwrap()
            .contains("Only an admin of organization acme")
    );
    assert!(site.tokens_of(&org("acme")).await.is_empty());

    // Bad labels: the crate's rule, as a sentence.
    let cases = [
        ("   ", "The label is empty: say what the token is for."),
        (&"x".repeat(101), "The label is longer than 100 characters."),
    ];
    for (label, message) in cases {
        let answer = site.create(&bob, SHOP_PAGE, label).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer.json()["message"], message);
    }
    // A role or lifetime the form never offers.
    let form = create_form(bob.csrf.as_str(), "x", "owner", "30d");
    let answer = site.post(SHOP_PAGE, Some(&bob.cookie), &form).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("role owner")
    );
    let form = create_form(bob.csrf.as_str(), "x", "viewer", "2d");
    let answer = site.post(SHOP_PAGE, Some(&bob.cookie), &form).await;
    assert_eq!(answer.json()["message"], "Choose when it expires.");

    // Addresses that name nothing, and an unknown token.
    let bad_id = site
        .get(
            "/organizations/ac%20me/settings/api-tokens",
            Some(&bob.cookie),
        )
        .await;
    assert_eq!(bad_id.status, StatusCode::NOT_FOUND);
    assert!(
        bad_id.body.contains("There is no such page"),
        "{}",
        bad_id.body
    );
    let bad_cursor = site
        .get(&format!("{SHOP_PAGE}?after=nonsense"), Some(&bob.cookie))
        .await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
    assert!(bad_cursor.body.contains("start from the first page"));
    let unknown = format!("{SHOP_PAGE}/{}/revoke", "A".repeat(11));
    let answer = site
        .post(&unknown, Some(&bob.cookie), &[("csrf", &bob.csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert!(answer.body.contains(r#"id="problem""#), "{}", answer.body);
    // An address no route takes: words for a browser, the bare 404 for an
    // API client.
    let nowhere = "/organizations/acme/settings";
    let request = site.client.get(format!("{}{nowhere}", site.url));
    let typed = Answer::of(request.header("accept", "text/html").send().await.unwrap()).await;
    assert_eq!(typed.status, StatusCode::NOT_FOUND);
    assert!(
        typed.body.contains("There is no such page"),
        "{}",
        typed.body
    );
    let api = site.get(nowhere, None).await;
    assert_eq!((api.status, api.body.as_str()), (StatusCode::NOT_FOUND, ""));
    // A revoke address opened as a page (pasted, say).
    let opened = site.get(&unknown, Some(&bob.cookie)).await;
    assert_eq!(opened.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(opened.body.contains("use its buttons"), "{}", opened.body);
    // Still signed in there: the way home, not to the sign-in page.
    assert!(
        opened
            .body
            .contains(r#"href="/organizations/acme/domains/shop/settings/security/api-tokens""#)
    );
    for answer in [&page, &bad_id, &bad_cursor, &answer, &opened] {
        assert!(
            answer.body.starts_with("<!DOCTYPE html>"),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn a_create_form_sent_without_the_script_creates_nothing() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    // What a browser without JavaScript sends: the right session and form.
    let form = create_form(alice.csrf.as_str(), "no script", "viewer", "30d");
    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let answer = site
        .post_accepting(accept, ACME_PAGE, Some(&alice.cookie), &form)
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("Creating a token needs JavaScript"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("acmeo_"), "{}", answer.body);
    assert!(site.tokens_of(&org("acme")).await.is_empty());
}

#[tokio::test]
async fn the_form_offers_only_what_the_admin_and_the_policy_allow() {
    let policy = ExpiryPolicy::default()
        .with_max_lifetime(ScopeKind::Organization, 90 * DAY)
        .unwrap();
    let site = start_with(fixture().service.with_expiry_policy(policy)).await;
    let options = |page: &str, select: &str| -> Vec<String> {
        let select = page
            .split(&format!(r#"<select id="{select}""#))
            .nth(1)
            .unwrap();
        let select = &select[..select.find("</select>").unwrap()];
        let values = select.split(r#"<option value=""#).skip(1);
        values
            .map(|option| option[..option.find('"').unwrap()].to_owned())
            .collect()
    };
    // Organization tokens live at most 90 days: nothing longer is offered.
    let alice = site.sign_in("alice").await;
    let page = site.get(ACME_PAGE, Some(&alice.cookie)).await.body;
    assert_eq!(options(&page, "token-expires"), ["1d", "7d", "30d", "90d"]);
    assert_eq!(options(&page, "token-role"), ["viewer", "editor", "admin"]);
    // And asking for more anyway is refused in words.
    let form = create_form(alice.csrf.as_str(), "x", "viewer", "1y");
    let answer = site.post(ACME_PAGE, Some(&alice.cookie), &form).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Organization tokens may live at most 90d"),
        "{message}"
    );
    // Domain tokens have no maximum here.
    let bob = site.sign_in("bob").await;
    let page = site.get(SHOP_PAGE, Some(&bob.cookie)).await.body;
    assert_eq!(
        options(&page, "token-expires"),
        ["1d", "7d", "30d", "90d", "1y", "never"]
    );
}

#[tokio::test]
async fn labels_are_shown_as_text_never_as_markup() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    let label = r#"<script>alert("x")</script> & "quotes""#;
    let created = site.create(&alice, ACME_PAGE, label).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let page = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
}

#[tokio::test]
async fn a_long_list_pages_and_revoked_tokens_stay_marked() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    let page_size = axum_service::pages::PAGE_SIZE;
    for n in 0..page_size + 2 {
        let created = site.create(&alice, ACME_PAGE, &format!("token {n}")).await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let oldest = site.tokens_of(&org("acme")).await.pop().unwrap();
    let revoke = format!("{ACME_PAGE}/{}/revoke", oldest.id);
    let revoked = site
        .post(&revoke, Some(&alice.cookie), &[("csrf", &alice.csrf)])
        .await;
    assert_eq!(
        revoked.headers[LOCATION],
        format!("{ACME_PAGE}?revoked={}", oldest.id)
    );

    // The notice names it, though it is on the second page of the list;
    // and says nothing of a token that is not revoked.
    let notice = format!("“{}” is revoked", oldest.label);
    let location = revoked.headers[LOCATION].to_str().unwrap();
    let after = site.get(location, Some(&alice.cookie)).await;
    assert!(after.body.contains(&notice), "{}", after.body);
    let newest = site.tokens_of(&org("acme")).await.remove(0);
    let claim = format!("{ACME_PAGE}?revoked={}", newest.id);
    let claimed = site.get(&claim, Some(&alice.cookie)).await;
    assert!(!claimed.body.contains("is revoked:"), "{}", claimed.body);

    let first = site.get(ACME_PAGE, Some(&alice.cookie)).await;
    assert_eq!(first.body.matches("<tr data-token-id").count(), page_size);
    let link = first
        .body
        .split(r#"id="older" href=""#)
        .nth(1)
        .expect("a link to older tokens");
    let older = &link[..link.find('"').unwrap()];
    let second = site.get(older, Some(&alice.cookie)).await;
    assert_eq!(second.body.matches("<tr data-token-id").count(), 2);
    let row = second
        .body
        .split(&format!(r#"data-token-id="{}""#, oldest.id))
        .nth(1)
        .unwrap();
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(r#"class="status revoked">Revoked"#), "{row}");
    assert!(row.contains("by alice"), "{row}");
    assert!(
        !row.contains("data-revoke"),
        "a revoked token offers Revoke"
    );
}

#[test]
fn sessions_are_bounded_and_the_least_recently_seen_goes_first() {
    let sessions = Sessions::default();
    let first = sessions.start("alice");
    let second = sessions.start("bob");
    for _ in 2..MAX_SESSIONS {
        sessions.start("carol");
    }
    let with = |session: &Session| {
        let mut headers = axum::http::HeaderMap::new();
        let cookie = format!("{SESSION_COOKIE}={}", session.id);
        headers.insert(COOKIE, cookie.parse().unwrap());
        headers
    };
    // Seen now, so no longer the least recent.
    assert!(sessions.find(&with(&first)).is_some());
    let one_more = sessions.start("carol");
    assert!(sessions.find(&with(&one_more)).is_some());
    assert!(sessions.find(&with(&first)).is_some());
    assert!(
        sessions.find(&with(&second)).is_none(),
        "the least recently used session was kept"
    );
}

#[tokio::test]
async fn a_form_the_browser_says_came_from_another_origin_is_refused() {
    let site = start().await;
    let alice = site.sign_in("alice").await;
    let page = site.get("/sign-in", None).await;
    let (form_cookie, sign_in_csrf) = (cookie_of(&page), sign_in_csrf(&page.body));
    // What a page on another port of this host can send: our cookies (it
    // may have planted them) and matching tokens. Only the browser's
    // `Sec-Fetch-Site` tells it from our own page.
    let create = create_form(alice.csrf.as_str(), "x", "viewer", "7d");
    let sign_in = [("csrf", sign_in_csrf.as_str()), ("user", "carol")];
    for origin in ["same-site", "cross-site"] {
        let request = site.form_post(ACME_PAGE, Some(&alice.cookie), &create);
        let request = request.header("accept", "application/json");
        let answer = request
            .header("sec-fetch-site", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{origin}");
        let request = site.form_post("/sign-in", Some(&form_cookie), &sign_in);
        let answer = request
            .header("sec-fetch-site", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(answer.headers().get(SET_COOKIE).is_none(), "{origin}");
    }
    assert!(site.tokens_of(&org("acme")).await.is_empty());
    // From our own page, as the browser says: it goes through.
    let request = site.form_post(ACME_PAGE, Some(&alice.cookie), &create);
    let request = request.header("accept", "application/json");
    let ours = request
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), StatusCode::CREATED);
}

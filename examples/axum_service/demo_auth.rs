//! DEMO ONLY: sign-in that anyone can use. API clients name an admin in
//! the `X-Demo-User` header ([`DemoAdmin`]); browsers pick one on the
//! sign-in page and get a session cookie ([`Sessions`]). Replace both with
//! your own sessions (cookie, SSO, …), resolving the [`Actor`] and its
//! grants as [`admin`] does here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use api_tokens::{Actor, Role, Scope};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::TryRng;
use rand::rngs::SysRng;
use serde_json::json;
use subtle::ConstantTimeEq;

/// Who may sign in, and the scope where each is Admin.
pub const USERS: &[(&str, &str)] = &[
    ("alice", "organization acme"),
    ("bob", "domain acme/shop"),
    ("carol", "organization globex"),
];

pub const BANNER: &str =
    "demo admins (X-Demo-User): alice (org acme), bob (domain acme/shop), carol (org globex)";

/// The demo user `name`, as an [`Actor`] holding Admin where [`USERS`]
/// says, with that scope; `None` for anyone else.
pub fn admin(name: &str) -> Option<(&'static str, Actor, Scope)> {
    let &(user, scope) = USERS.iter().find(|(user, _)| *user == name)?;
    let valid = "USERS holds valid ids and scopes";
    let (id, scope): (_, Scope) = (user.parse().expect(valid), scope.parse().expect(valid));
    let actor = Actor::new(id).with_grant(scope.clone(), Role::Admin);
    Some((user, actor, scope))
}

/// The admin the request's `X-Demo-User` names.
pub struct DemoAdmin(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for DemoAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let name = parts.headers.get("x-demo-user").map(|name| name.to_str());
        let Some((_, actor, _)) = name.and_then(Result::ok).and_then(admin) else {
            // The crate's error shape, and the challenge a 401 must carry
            // (RFC 9110 §11.6.1).
            let challenge = [(WWW_AUTHENTICATE, r#"DemoUser realm="api-tokens example""#)];
            let description = "send X-Demo-User: alice, bob or carol (demo sign-in)";
            let body = json!({ "error": "unauthenticated", "error_description": description });
            return Err((StatusCode::UNAUTHORIZED, challenge, Json(body)).into_response());
        };
        Ok(DemoAdmin(actor))
    }
}

/// The session cookie's name. `HttpOnly` (no script reads it) and
/// `SameSite=Strict` (no other site's page sends it: a link from elsewhere
/// lands on the sign-in page). A real service on HTTPS also marks it
/// `Secure` and names it `__Host-…`; this demo serves plain HTTP on
/// loopback.
pub const SESSION_COOKIE: &str = "demo_session";

/// The sign-in form's cookie: the form's forgery token, which the form
/// sends back beside it (another site's page can send neither: it cannot
/// read ours; a page of this site on another port could plant both, which
/// [`from_another_origin`] refuses). Nothing of it is kept on the server,
/// so opening the sign-in page, however often, never touches [`Sessions`]
/// or a session cookie.
pub const SIGN_IN_COOKIE: &str = "demo_sign_in";

/// At most this many browser sessions are kept: past it, signing in drops
/// the one used least recently. Only signing in starts one.
pub const MAX_SESSIONS: usize = 10_000;

/// A session unused this long is over.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);

/// The signed-in browsers, in memory: lost at a restart, like the demo's
/// memory store.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<SessionMap>,
}

#[derive(Default)]
struct SessionMap {
    by_id: HashMap<String, Session>,
    /// Counts uses, to tell which session was used least recently (two
    /// `Instant`s can be equal).
    uses: u64,
}

/// One signed-in browser's session.
#[derive(Clone)]
pub struct Session {
    /// The cookie's value: 128 random bits.
    pub id: String,
    /// Who signed in.
    pub user: &'static str,
    /// The token every form of this session carries and every POST must
    /// send back (128 random bits): another site can make a browser POST
    /// here, but cannot read a page to learn it.
    pub csrf: String,
    last_seen: Instant,
    last_use: u64,
}

impl Session {
    /// Whether `sent` is this session's forgery token, compared in
    /// constant time.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        same_secret(&self.csrf, sent)
    }

    /// The `Set-Cookie` value that hands this session to the browser.
    pub fn cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            self.id
        )
    }
}

impl Sessions {
    /// The session the request's cookie names, if it is live.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.uses += 1;
        let use_number = map.uses;
        let session = map.by_id.get_mut(id)?;
        if session.last_seen.elapsed() > IDLE_TIMEOUT {
            map.by_id.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        session.last_use = use_number;
        Some(session.clone())
    }

    /// A new session for `user`, with a fresh id and forgery token.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails.
    pub fn start(&self, user: &'static str) -> Session {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.uses += 1;
        let session = Session {
            id: random_hex(),
            user,
            csrf: random_hex(),
            last_seen: Instant::now(),
            last_use: map.uses,
        };
        if map.by_id.len() >= MAX_SESSIONS {
            map.by_id
                .retain(|_, session| session.last_seen.elapsed() <= IDLE_TIMEOUT);
        }
        if map.by_id.len() >= MAX_SESSIONS {
            // O(sessions), only when full and only when someone signs in.
            let oldest = map.by_id.values().min_by_key(|session| session.last_use);
            let oldest = oldest.map(|session| session.id.clone());
            oldest.map(|id| map.by_id.remove(&id));
        }
        map.by_id.insert(session.id.clone(), session.clone());
        session
    }

    /// Ends the session `id` (signing out, or in again).
    pub fn end(&self, id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.by_id.remove(id);
    }
}

/// The sign-in form's forgery token: the one its cookie holds, or a new
/// one to set (`true`).
pub fn sign_in_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, SIGN_IN_COOKIE) {
        Some(token) if token.len() == 32 => (token.to_owned(), false),
        _ => (random_hex(), true),
    }
}

/// The `Set-Cookie` value for the sign-in form's token: sent only to
/// `/sign-in`, and kept no longer than the browser's session.
pub fn sign_in_cookie(token: &str) -> String {
    format!("{SIGN_IN_COOKIE}={token}; Path=/sign-in; HttpOnly; SameSite=Strict")
}

/// Whether the sign-in form sent back the token its cookie holds.
pub fn sign_in_token_matches(headers: &HeaderMap, sent: &str) -> bool {
    let kept = cookie(headers, SIGN_IN_COOKIE).filter(|token| token.len() == 32);
    kept.is_some_and(|token| same_secret(token, sent))
}

/// Whether the browser says the request came from a page of another
/// origin (`Sec-Fetch-Site`, which every current browser sends and no page
/// can set). Cookies do not tell ports or sibling subdomains apart, so a
/// page on another port of this host could plant cookies of its own and
/// send forms that match them: this refuses such a form before any token
/// is compared. Clients that send no such header (not browsers) are left
/// to the tokens.
pub fn from_another_origin(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| site != "same-origin")
}

fn same_secret(kept: &str, sent: &str) -> bool {
    bool::from(kept.as_bytes().ct_eq(sent.as_bytes()))
}

/// The value of cookie `name`, from any `Cookie` header line.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let lines = headers.get_all(COOKIE).into_iter();
    let pairs = lines
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';'));
    pairs
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
}

/// 128 random bits, as 32 hex digits.
///
/// # Panics
///
/// If the operating system's random source fails.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

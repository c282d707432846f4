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
/// `SameSite=Strict` (no other site's page sends it). A real service on
/// HTTPS also marks it `Secure` and names it `__Host-…`; this demo serves
/// plain HTTP on loopback.
pub const SESSION_COOKIE: &str = "demo_session";

/// At most this many browser sessions are kept: past it, signing in drops
/// the one seen least recently.
pub const MAX_SESSIONS: usize = 10_000;

/// A session unused this long is over.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);

/// The browser sessions, in memory: lost at a restart, like the demo's
/// memory store.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// One browser's session. Anonymous until its browser signs in: the
/// sign-in form is a POST, and its cross-site request forgery token needs
/// a session to belong to.
#[derive(Clone)]
pub struct Session {
    /// The cookie's value: 128 random bits.
    pub id: String,
    /// Who signed in, if anyone has.
    pub user: Option<&'static str>,
    /// The token every form of this session carries and every POST must
    /// send back (128 random bits): another site can make a browser POST
    /// here, but cannot read a page to learn it.
    pub csrf: String,
    last_seen: Instant,
}

impl Session {
    /// Whether `sent` is this session's forgery token, compared in
    /// constant time.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(sent.as_bytes()))
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
        let id = session_cookie(headers)?;
        let mut sessions = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.get_mut(id)?;
        if session.last_seen.elapsed() > IDLE_TIMEOUT {
            sessions.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    /// A new session for `user` (`None`: anonymous), with a fresh id and
    /// forgery token.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails.
    pub fn start(&self, user: Option<&'static str>) -> Session {
        let session = Session {
            id: random_hex(),
            user,
            csrf: random_hex(),
            last_seen: Instant::now(),
        };
        let mut sessions = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, session| session.last_seen.elapsed() <= IDLE_TIMEOUT);
        }
        if sessions.len() >= MAX_SESSIONS {
            // O(sessions), only when full and only when a session starts.
            let oldest = sessions.iter().min_by_key(|(_, session)| session.last_seen);
            let oldest = oldest.map(|(id, _)| id.clone());
            oldest.map(|id| sessions.remove(&id));
        }
        sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// Ends the session `id` (signing out, or in again).
    pub fn end(&self, id: &str) {
        let mut sessions = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id);
    }
}

/// The value of the session cookie, from any `Cookie` header line.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    let lines = headers.get_all(COOKIE).into_iter();
    let pairs = lines
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';'));
    pairs
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

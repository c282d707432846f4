//! DEMO ONLY: sign-in with the `X-Demo-User` header, which anyone can send.
//! Replace [`DemoAdmin`] with an extractor that resolves the [`Actor`] and
//! its grants from your own sessions (cookie, SSO, …).

use api_tokens::{Actor, Role};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Who may sign in, and the scope where each is Admin.
const USERS: &[(&str, &str)] = &[
    ("alice", "organization acme"),
    ("bob", "domain acme/shop"),
    ("carol", "organization globex"),
];

pub const BANNER: &str =
    "demo admins (X-Demo-User): alice (org acme), bob (domain acme/shop), carol (org globex)";

/// The admin the request's `X-Demo-User` names.
pub struct DemoAdmin(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for DemoAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let name = parts.headers.get("x-demo-user").map(|name| name.as_bytes());
        let user = USERS.iter().find(|(user, _)| Some(user.as_bytes()) == name);
        let Some(&(user, scope)) = user else {
            // The crate's error shape, and the challenge a 401 must carry
            // (RFC 9110 §11.6.1).
            let challenge = [(WWW_AUTHENTICATE, r#"DemoUser realm="api-tokens example""#)];
            let description = "send X-Demo-User: alice, bob or carol (demo sign-in)";
            let body = json!({ "error": "unauthenticated", "error_description": description });
            return Err((StatusCode::UNAUTHORIZED, challenge, Json(body)).into_response());
        };
        let valid = "USERS holds valid ids and scopes";
        let (id, scope) = (user.parse().expect(valid), scope.parse().expect(valid));
        Ok(DemoAdmin(Actor::new(id).with_grant(scope, Role::Admin)))
    }
}

//! Why a request was refused, and the HTTP answer for each reason: status,
//! RFC 6750 challenge and a JSON body that says no more than the challenge.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::RETRY_AFTER_SECONDS;
use crate::error::VerifyError;

/// Why the middleware, the [`VerifiedToken`](crate::VerifiedToken) extractor
/// or [`VerifiedToken::require`](crate::VerifiedToken::require) refused a
/// request. As a response it is the answer RFC 6750 §3 describes:
///
/// | variant | status | `WWW-Authenticate` |
/// |---|---|---|
/// | [`MissingCredentials`](Self::MissingCredentials) | 401 | `Bearer` |
/// | [`MalformedCredentials`](Self::MalformedCredentials) | 400 | `Bearer error="invalid_request", …` |
/// | [`InvalidToken`](Self::InvalidToken) | 401 | `Bearer error="invalid_token", …` |
/// | [`InsufficientScope`](Self::InsufficientScope) | 403 | `Bearer error="insufficient_scope", …` |
/// | [`AddressNotAllowed`](Self::AddressNotAllowed) | 403 | `Bearer error="address_not_allowed", …` |
/// | [`RateLimited`](Self::RateLimited) | 429 | none (`Retry-After` and `RateLimit` instead) |
/// | [`Unavailable`](Self::Unavailable) | 503 | none (`Retry-After` instead) |
/// | [`NotInstalled`](Self::NotInstalled) | 500 | none |
///
/// The body is JSON with the challenge's `error` code and
/// `error_description`, e.g. `{"error":"invalid_token","error_description":"the
/// token is not valid"}`; where the challenge carries no code (no token
/// presented, which RFC 6750 §3.1 keeps code-free, or no challenge at all)
/// the body still names one: `missing_token`, `rate_limited`,
/// `temporarily_unavailable`, `server_error`. Unknown, wrong, revoked,
/// expired and disabled tokens all give the same
/// [`InvalidToken`](Self::InvalidToken) answer, so a caller cannot probe
/// which tokens exist; the precise reason is logged at debug level, with the
/// token's public id but never its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRejection {
    /// No token was presented: the header is absent, or `Authorization`
    /// names another scheme. RFC 6750 §3.1 asks for a challenge without an
    /// error code here, since the client may not know it must authenticate.
    #[error("the request presents no API token")]
    MissingCredentials,
    /// The header is present but is not one well-formed token: repeated,
    /// not ASCII, empty, or more than one word after `Bearer`.
    #[error("the request's credentials are malformed")]
    MalformedCredentials,
    /// The token is malformed, unknown, wrong, revoked, expired or
    /// disabled.
    #[error("the API token is not valid")]
    InvalidToken,
    /// The token is valid but does not grant the scope or role required.
    #[error("the API token does not grant this access")]
    InsufficientScope,
    /// The token has an allowlist of client networks, and the request
    /// comes from outside it, or from an address the layer could not tell
    /// (no connection info, or an `X-Forwarded-For` entry that is no
    /// address). One answer, byte for byte, for every such refusal: it
    /// never says which address the layer saw or what the list holds.
    #[error("the API token may not be used from this address")]
    AddressNotAllowed,
    /// The token has made more requests than its rate limit allows. The
    /// [`TokenLayer`](super::TokenLayer) adds `Retry-After` and the
    /// `RateLimit` fields to this answer; the rejection alone cannot know
    /// them.
    #[error("the API token is over its rate limit")]
    RateLimited,
    /// The token store could not be reached, so the token could not be
    /// checked. Not the client's fault: retrying may help.
    #[error("the token store is unavailable")]
    Unavailable,
    /// A handler asked for the verified token on a route the
    /// [`TokenLayer`](super::TokenLayer) does not cover: a bug in the
    /// service's router, answered with 500 rather than letting the request
    /// through unauthenticated.
    #[error("the token layer does not cover this route")]
    NotInstalled,
}

/// The fixed parts of one answer.
struct Answer {
    status: StatusCode,
    code: &'static str,
    challenge: Option<&'static str>,
    body: &'static str,
}

/// An answer whose challenge and body carry the same RFC 6750 error code and
/// description, so the two cannot drift apart. Descriptions must stay within
/// RFC 6750's `error_description` characters: printable ASCII without `"`
/// and `\`.
macro_rules! rfc6750_answer {
    ($status:ident, $code:literal, $description:literal) => {
        Answer {
            status: StatusCode::$status,
            code: $code,
            challenge: Some(concat!(
                "Bearer error=\"",
                $code,
                "\", error_description=\"",
                $description,
                "\""
            )),
            body: concat!(
                "{\"error\":\"",
                $code,
                "\",\"error_description\":\"",
                $description,
                "\"}"
            ),
        }
    };
}

impl TokenRejection {
    /// The status code this rejection answers with.
    pub fn status(self) -> StatusCode {
        self.answer().status
    }

    /// The machine-readable code this rejection answers with: the body's
    /// `error` member (`invalid_token`, `missing_token`, …). The
    /// [`http` module](super#error-codes) lists them all.
    pub fn code(self) -> &'static str {
        self.answer().code
    }

    /// The rejection for a token [`TokenService::verify`](crate::TokenService::verify)
    /// refused. A store failure is ours; an address outside the allowlist
    /// is its own 403; everything else is the client's bad token, one
    /// answer for all so that none tells them apart.
    pub(crate) fn from_verify(error: &VerifyError) -> Self {
        // Every variant by name: a new one must be given its answer.
        match error {
            VerifyError::Store(_) => TokenRejection::Unavailable,
            VerifyError::AddressNotAllowed => TokenRejection::AddressNotAllowed,
            VerifyError::Malformed(_)
            | VerifyError::Invalid
            | VerifyError::Revoked
            | VerifyError::Expired
            | VerifyError::Disabled => TokenRejection::InvalidToken,
        }
    }

    fn answer(self) -> Answer {
        match self {
            TokenRejection::MissingCredentials => Answer {
                status: StatusCode::UNAUTHORIZED,
                code: "missing_token",
                challenge: Some("Bearer"),
                body: r#"{"error":"missing_token","error_description":"this resource needs an API token"}"#,
            },
            TokenRejection::MalformedCredentials => rfc6750_answer!(
                BAD_REQUEST,
                "invalid_request",
                "the request must present exactly one well-formed token"
            ),
            TokenRejection::InvalidToken => {
                rfc6750_answer!(UNAUTHORIZED, "invalid_token", "the token is not valid")
            }
            TokenRejection::InsufficientScope => rfc6750_answer!(
                FORBIDDEN,
                "insufficient_scope",
                "the token does not grant this access"
            ),
            TokenRejection::AddressNotAllowed => rfc6750_answer!(
                FORBIDDEN,
                "address_not_allowed",
                "the token may not be used from this address"
            ),
            TokenRejection::RateLimited => Answer {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                challenge: None,
                body: r#"{"error":"rate_limited","error_description":"the token is over its rate limit; retry later"}"#,
            },
            TokenRejection::Unavailable => Answer {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "temporarily_unavailable",
                challenge: None,
                body: r#"{"error":"temporarily_unavailable","error_description":"the token could not be checked; retry later"}"#,
            },
            TokenRejection::NotInstalled => Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "server_error",
                challenge: None,
                body: r#"{"error":"server_error","error_description":"the server cannot check tokens on this route"}"#,
            },
        }
    }
}

impl IntoResponse for TokenRejection {
    fn into_response(self) -> Response {
        let answer = self.answer();
        // Built from static parts: no allocation beyond the response itself,
        // and nothing that can fail.
        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = answer.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // An answer about credentials is about this request only.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = answer.challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            // The same hint a management call's 503 gives (RFC 9110 §10.2.3).
            headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TokenRejection; 8] = [
        TokenRejection::MissingCredentials,
        TokenRejection::MalformedCredentials,
        TokenRejection::InvalidToken,
        TokenRejection::InsufficientScope,
        TokenRejection::AddressNotAllowed,
        TokenRejection::RateLimited,
        TokenRejection::Unavailable,
        TokenRejection::NotInstalled,
    ];

    #[test]
    fn every_body_is_json_with_an_error_code_and_description() {
        for rejection in ALL {
            let body: serde_json::Value = serde_json::from_str(rejection.answer().body).unwrap();
            assert!(body["error"].is_string(), "{rejection:?}");
            assert!(body["error_description"].is_string(), "{rejection:?}");
            assert_eq!(body["error"], rejection.code(), "{rejection:?}");
        }
    }

    #[test]
    fn only_an_address_refusal_and_a_store_failure_answer_apart() {
        use crate::error::{MalformedToken, StoreError};
        let store = StoreError::Unavailable {
            source: Box::new(std::io::Error::other("down")),
        };
        for (error, expected) in [
            (
                VerifyError::Malformed(MalformedToken::WrongPrefix),
                TokenRejection::InvalidToken,
            ),
            (VerifyError::Invalid, TokenRejection::InvalidToken),
            (VerifyError::Revoked, TokenRejection::InvalidToken),
            (VerifyError::Expired, TokenRejection::InvalidToken),
            (VerifyError::Disabled, TokenRejection::InvalidToken),
            (
                VerifyError::AddressNotAllowed,
                TokenRejection::AddressNotAllowed,
            ),
            (VerifyError::Store(store), TokenRejection::Unavailable),
        ] {
            assert_eq!(TokenRejection::from_verify(&error), expected, "{error}");
        }
    }

    #[test]
    fn descriptions_use_only_the_characters_rfc_6750_allows() {
        for rejection in ALL {
            let Some(challenge) = rejection.answer().challenge else {
                continue;
            };
            let Some((_, description)) = challenge.split_once("error_description=\"") else {
                continue;
            };
            let description = description.strip_suffix('"').unwrap();
            assert!(
                description
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{description}"
            );
        }
    }
}

//! Every variant of every management error, answered: status, code and the
//! one body shape, and what the body must never hold.

use std::io;

use axum::http::HeaderMap;
use axum::http::header::WWW_AUTHENTICATE;
use std::time::Duration;

use super::*;
use crate::actor::Role;
use crate::error::{BoxError, LabelError, RandomSourceError};
use crate::ids::{DomainId, OrganizationId};
use crate::scope::{Scope, ScopeKind};
use crate::token::TokenId;

const ID: TokenId = TokenId::from_bits(0x0123_4567_89ab_cdef);
const OTHER_ID: TokenId = TokenId::from_bits(0x0fed_cba9_8765_4321);
/// What a backend's error says; it must reach the log only.
const CAUSE: &str = "connection to 10.0.0.7:5432 refused (password for api_tokens_rw)";

fn scope() -> Scope {
    Scope::domain(
        OrganizationId::new("acme-corp").unwrap(),
        DomainId::new("shop.acme.example").unwrap(),
    )
}

fn cause() -> BoxError {
    Box::new(io::Error::other(CAUSE))
}

fn unavailable() -> StoreError {
    StoreError::Unavailable { source: cause() }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        id: Some(ID),
        scope: Some(scope()),
        source: cause(),
    }
}

fn random_source() -> RandomSourceError {
    RandomSourceError(cause())
}

/// What one error answered.
struct Answered {
    status: StatusCode,
    code: &'static str,
    headers: HeaderMap,
    body: String,
    message: String,
}

async fn answer<E: HttpError + IntoResponse + std::fmt::Display>(error: E) -> Answered {
    let (status, code, message) = (error.status(), error.code(), error.to_string());
    let response = error.into_response();
    let headers = response.headers().clone();
    assert_eq!(
        response.status(),
        status,
        "HttpError::status and the response agree"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answered {
        status,
        code,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        message,
    }
}

/// Asserts the answer is `status` with `code` in the one shape, and returns
/// its description.
fn assert_answer(answered: &Answered, status: u16, code: &str) -> String {
    assert_eq!(answered.status.as_u16(), status, "{}", answered.body);
    assert_eq!(answered.code, code);
    let body: serde_json::Value = serde_json::from_str(&answered.body).unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 2, "exactly `error` and `error_description`");
    assert_eq!(body["error"], code);
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert!(!description.is_empty());
    assert_eq!(answered.headers[CONTENT_TYPE], "application/json");
    assert_eq!(answered.headers[CACHE_CONTROL], "no-store");
    // Not a credentials challenge: the caller authenticated to get here.
    assert!(answered.headers.get(WWW_AUTHENTICATE).is_none());
    assert_eq!(
        answered.headers.get(RETRY_AFTER).is_some(),
        status == 503,
        "Retry-After on 503 only"
    );
    for secret in [CAUSE, "10.0.0.7", "password"] {
        assert!(!answered.body.contains(secret), "{}", answered.body);
    }
    description
}

/// A validation or conflict error: the message is the description, since
/// it helps the client and holds nothing secret.
async fn assert_explained<E>(error: E, status: u16, code: &str)
where
    E: HttpError + IntoResponse + std::fmt::Display,
{
    let answered = answer(error).await;
    let description = assert_answer(&answered, status, code);
    assert_eq!(description, answered.message);
}

/// A refusal that must look like absence: the fixed 404, nothing of the
/// error's id or scope.
async fn assert_not_found<E>(error: E) -> String
where
    E: HttpError + IntoResponse + std::fmt::Display,
{
    let answered = answer(error).await;
    assert_answer(&answered, 404, "not_found");
    for named in [&ID.to_string(), "acme-corp", "shop.acme.example", "admin"] {
        assert!(!answered.body.contains(named), "{}", answered.body);
    }
    answered.body
}

/// A server-side failure: the fixed body, the cause kept out of it.
async fn assert_server_error<E>(error: E)
where
    E: HttpError + IntoResponse + std::fmt::Display,
{
    let answered = answer(error).await;
    let description = assert_answer(&answered, 500, "server_error");
    assert_eq!(description, "the server could not complete the request");
    assert!(!answered.body.contains(&ID.to_string()));
}

async fn assert_unavailable<E>(error: E)
where
    E: HttpError + IntoResponse + std::fmt::Display,
{
    let answered = answer(error).await;
    let description = assert_answer(&answered, 503, "temporarily_unavailable");
    assert_eq!(description, "the token store is unavailable; retry later");
    assert_eq!(answered.headers[RETRY_AFTER], "5");
}

fn forbidden_character() -> LabelError {
    LabelError::ForbiddenCharacter {
        position: 3,
        code_point: 0x202E,
    }
}

// --- IssueError -----------------------------------------------------------

#[tokio::test]
async fn issue_not_allowed_is_not_found() {
    assert_not_found(IssueError::NotAllowed { scope: scope() }).await;
}

#[tokio::test]
async fn issue_role_too_high_is_403() {
    let error = IssueError::RoleTooHigh {
        requested: Role::Owner,
        held: Role::Admin,
    };
    assert_explained(error, 403, "role_too_high").await;
}

#[tokio::test]
async fn issue_invalid_label_is_422_and_names_a_position_not_the_text() {
    let answered = answer(IssueError::InvalidLabel(forbidden_character())).await;
    let description = assert_answer(&answered, 422, "invalid_label");
    assert!(
        description.contains("U+202E at position 3"),
        "{description}"
    );
    assert_explained(
        IssueError::InvalidLabel(LabelError::Empty),
        422,
        "invalid_label",
    )
    .await;
    let too_long = IssueError::InvalidLabel(LabelError::TooLong { max: 100 });
    assert_explained(too_long, 422, "invalid_label").await;
}

#[tokio::test]
async fn issue_expiry_not_in_future_is_422() {
    assert_explained(IssueError::ExpiryNotInFuture, 422, "expiry_not_in_future").await;
}

#[tokio::test]
async fn issue_expiry_out_of_range_is_422() {
    assert_explained(IssueError::ExpiryOutOfRange, 422, "expiry_out_of_range").await;
}

#[tokio::test]
async fn issue_lifetime_too_long_is_422() {
    let error = IssueError::LifetimeTooLong {
        kind: ScopeKind::Domain,
        max: Duration::from_secs(90 * 86_400),
    };
    assert_explained(error, 422, "lifetime_too_long").await;
}

#[tokio::test]
async fn issue_must_expire_is_422() {
    let error = IssueError::MustExpire {
        kind: ScopeKind::Organization,
        max: Duration::from_secs(365 * 86_400),
    };
    assert_explained(error, 422, "expiry_required").await;
}

#[tokio::test]
async fn issue_random_source_is_500() {
    assert_server_error(IssueError::RandomSource(random_source())).await;
}

#[tokio::test]
async fn issue_store_errors_are_503_or_500() {
    assert_unavailable(IssueError::Store(unavailable())).await;
    assert_server_error(IssueError::Store(corrupt())).await;
}

// --- RevokeError ----------------------------------------------------------

#[tokio::test]
async fn revoke_not_found_is_not_found() {
    assert_not_found(RevokeError::NotFound { id: ID }).await;
}

#[tokio::test]
async fn revoke_invalid_reason_is_422() {
    let error = RevokeError::InvalidReason(forbidden_character());
    assert_explained(error, 422, "invalid_reason").await;
}

#[tokio::test]
async fn revoke_store_errors_are_503_or_500() {
    assert_unavailable(RevokeError::Store(unavailable())).await;
    assert_server_error(RevokeError::Store(corrupt())).await;
}

// --- LookupError ----------------------------------------------------------

#[tokio::test]
async fn lookup_not_found_is_not_found() {
    assert_not_found(LookupError::NotFound { id: ID }).await;
}

#[tokio::test]
async fn lookup_store_errors_are_503_or_500() {
    assert_unavailable(LookupError::Store(unavailable())).await;
    assert_server_error(LookupError::Store(corrupt())).await;
}

// --- RevokeScopeError -----------------------------------------------------

#[tokio::test]
async fn revoke_scope_not_allowed_is_not_found() {
    assert_not_found(RevokeScopeError::NotAllowed { scope: scope() }).await;
}

#[tokio::test]
async fn revoke_scope_invalid_reason_is_422() {
    let error = RevokeScopeError::InvalidReason(LabelError::Empty);
    assert_explained(error, 422, "invalid_reason").await;
}

#[tokio::test]
async fn revoke_scope_store_errors_are_503_or_500() {
    assert_unavailable(RevokeScopeError::Store(unavailable())).await;
    assert_server_error(RevokeScopeError::Store(corrupt())).await;
}

// --- RevokeLeakedError ----------------------------------------------------

#[tokio::test]
async fn revoke_leaked_too_many_tokens_is_422() {
    let error = RevokeLeakedError::TooManyTokens { max: 1_000 };
    assert_explained(error, 422, "too_many_tokens").await;
}

#[tokio::test]
async fn revoke_leaked_invalid_source_is_422() {
    let error = RevokeLeakedError::InvalidSource(LabelError::Empty);
    assert_explained(error, 422, "invalid_source").await;
}

#[tokio::test]
async fn revoke_leaked_store_errors_are_503_or_500() {
    assert_unavailable(RevokeLeakedError::Store(unavailable())).await;
    assert_server_error(RevokeLeakedError::Store(corrupt())).await;
}

// --- RotateError ----------------------------------------------------------

#[tokio::test]
async fn rotate_not_found_is_not_found() {
    assert_not_found(RotateError::NotFound { id: ID }).await;
}

#[tokio::test]
async fn rotate_revoked_is_409() {
    assert_explained(RotateError::Revoked { id: ID }, 409, "token_revoked").await;
}

#[tokio::test]
async fn rotate_expired_is_409() {
    assert_explained(RotateError::Expired { id: ID }, 409, "token_expired").await;
}

#[tokio::test]
async fn rotate_already_replaced_is_409_and_names_the_successor() {
    let error = RotateError::AlreadyReplaced {
        id: ID,
        by: OTHER_ID,
    };
    let answered = answer(error).await;
    let description = assert_answer(&answered, 409, "already_rotated");
    // The caller manages the scope, so it may see the successor it should
    // rotate instead.
    assert!(description.contains(&OTHER_ID.to_string()), "{description}");
}

#[tokio::test]
async fn rotate_grace_too_long_is_422() {
    let error = RotateError::GraceTooLong {
        remaining: Duration::from_secs(3 * 3600),
    };
    assert_explained(error, 422, "grace_too_long").await;
}

#[tokio::test]
async fn rotate_grace_out_of_range_is_422() {
    assert_explained(RotateError::GraceOutOfRange, 422, "grace_out_of_range").await;
}

#[tokio::test]
async fn rotate_successor_expiry_out_of_range_is_500() {
    // The policy and the clock chose that expiry, not the request.
    assert_server_error(RotateError::SuccessorExpiryOutOfRange).await;
}

#[tokio::test]
async fn rotate_role_too_high_is_403() {
    let error = RotateError::RoleTooHigh {
        role: Role::Owner,
        held: Role::Admin,
    };
    assert_explained(error, 403, "role_too_high").await;
}

#[tokio::test]
async fn rotate_random_source_is_500() {
    assert_server_error(RotateError::RandomSource(random_source())).await;
}

#[tokio::test]
async fn rotate_store_errors_are_503_or_500() {
    assert_unavailable(RotateError::Store(unavailable())).await;
    assert_server_error(RotateError::Store(corrupt())).await;
}

// --- ListError ------------------------------------------------------------

#[tokio::test]
async fn list_not_allowed_is_not_found() {
    assert_not_found(ListError::NotAllowed { scope: scope() }).await;
}

#[tokio::test]
async fn list_invalid_page_size_is_422() {
    let error = ListError::InvalidPageSize {
        requested: 0,
        max: 100,
    };
    assert_explained(error, 422, "invalid_page_size").await;
}

#[tokio::test]
async fn list_store_errors_are_503_or_500() {
    assert_unavailable(ListError::Store(unavailable())).await;
    assert_server_error(ListError::Store(corrupt())).await;
}

// --- StoreError -----------------------------------------------------------

#[tokio::test]
async fn store_unavailable_is_503_with_retry_after() {
    assert_unavailable(unavailable()).await;
}

#[tokio::test]
async fn store_already_exists_is_500() {
    assert_server_error(StoreError::AlreadyExists { id: ID }).await;
}

#[tokio::test]
async fn store_tls_is_500() {
    assert_server_error(StoreError::Tls { source: cause() }).await;
}

#[tokio::test]
async fn store_corrupt_is_500_without_the_id_or_scope() {
    let answered = answer(corrupt()).await;
    assert_answer(&answered, 500, "server_error");
    for named in [&ID.to_string(), "acme-corp", "shop.acme.example"] {
        assert!(!answered.body.contains(named), "{}", answered.body);
    }
}

#[tokio::test]
async fn store_other_is_500() {
    assert_server_error(StoreError::Other { source: cause() }).await;
}

// --- Across types ---------------------------------------------------------

#[tokio::test]
async fn not_found_and_not_allowed_answer_byte_for_byte_alike() {
    let bodies = [
        assert_not_found(IssueError::NotAllowed { scope: scope() }).await,
        assert_not_found(ListError::NotAllowed { scope: scope() }).await,
        assert_not_found(RevokeScopeError::NotAllowed { scope: scope() }).await,
        assert_not_found(RevokeError::NotFound { id: ID }).await,
        assert_not_found(RotateError::NotFound { id: OTHER_ID }).await,
        assert_not_found(LookupError::NotFound { id: ID }).await,
    ];
    for body in &bodies {
        assert_eq!(body, &bodies[0]);
    }
    // Headers too: nothing but the fixed ones.
    let revoke = RevokeError::NotFound { id: ID }.into_response();
    let issue = IssueError::NotAllowed { scope: scope() }.into_response();
    assert_eq!(revoke.headers(), issue.headers());
}

#[tokio::test]
async fn the_layer_and_management_share_codes_for_shared_situations() {
    assert_eq!(TokenRejection::Unavailable.code(), unavailable().code());
    assert_eq!(
        HttpError::code(&TokenRejection::NotInstalled),
        "server_error"
    );
    let layer = TokenRejection::Unavailable.into_response();
    assert_eq!(layer.headers()[RETRY_AFTER], "5");
}

#[tokio::test]
async fn an_address_refusal_is_one_fixed_403_with_its_own_code() {
    let answered = answer(TokenRejection::AddressNotAllowed).await;
    assert_eq!(answered.status, StatusCode::FORBIDDEN);
    assert_eq!(answered.code, "address_not_allowed");
    assert_eq!(
        answered.body,
        r#"{"error":"address_not_allowed","error_description":"the token may not be used from this address"}"#
    );
    assert_eq!(
        answered.headers[WWW_AUTHENTICATE],
        r#"Bearer error="address_not_allowed", error_description="the token may not be used from this address""#
    );
    assert_eq!(answered.headers[CONTENT_TYPE], "application/json");
    assert_eq!(answered.headers[CACHE_CONTROL], "no-store");
    assert!(answered.headers.get(RETRY_AFTER).is_none());
}

#[tokio::test]
async fn a_rate_limit_refusal_is_429_without_a_challenge() {
    let answered = answer(TokenRejection::RateLimited).await;
    assert_eq!(answered.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answered.code, "rate_limited");
    let body: serde_json::Value = serde_json::from_str(&answered.body).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["error_description"].is_string());
    // Not about credentials: the token was valid.
    assert!(answered.headers.get(WWW_AUTHENTICATE).is_none());
    assert_eq!(answered.headers[CACHE_CONTROL], "no-store");
}

#[test]
fn descriptions_are_escaped_as_json_strings() {
    let body = json_body("code", "a \"quoted\" \\ back\nslash\u{1} é");
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed["error_description"],
        "a \"quoted\" \\ back\nslash\u{1} é"
    );
}

// --- IssueError: narrowing ------------------------------------------------

fn permission(name: &str) -> crate::permissions::PermissionName {
    crate::permissions::PermissionName::new(name).unwrap()
}

#[tokio::test]
async fn issue_invalid_permission_is_422() {
    use crate::error::PermissionError;
    let unknown = IssueError::InvalidPermission(PermissionError::Unknown {
        permission: permission("segments:write"),
    });
    assert_explained(unknown, 422, "invalid_permission").await;
    let badly_named = IssueError::InvalidPermission(PermissionError::InvalidName);
    assert_explained(badly_named, 422, "invalid_permission").await;
}

#[tokio::test]
async fn issue_empty_permission_set_is_422() {
    assert_explained(IssueError::EmptyPermissionSet, 422, "invalid_permission").await;
}

#[tokio::test]
async fn issue_too_many_permissions_is_422() {
    let error = IssueError::TooManyPermissions { max: 64 };
    assert_explained(error, 422, "invalid_permission").await;
}

#[tokio::test]
async fn issue_permission_not_granted_is_403_and_names_the_permission() {
    let error = IssueError::PermissionNotGranted {
        permission: permission("notifications:send"),
        needs: Role::Editor,
        role: Role::Viewer,
    };
    let answered = answer(error).await;
    let description = assert_answer(&answered, 403, "permission_not_granted");
    assert!(description.contains("notifications:send"), "{description}");
}

#[tokio::test]
async fn issue_invalid_network_is_422_and_names_the_entry() {
    let error = IssueError::InvalidNetwork {
        position: 2,
        error: crate::error::NetworkError::HostBitsSet,
    };
    let answered = answer(error).await;
    let description = assert_answer(&answered, 422, "invalid_allowlist");
    assert!(description.contains("entry 2"), "{description}");
}

#[tokio::test]
async fn issue_empty_allowlist_is_422() {
    assert_explained(IssueError::EmptyAllowlist, 422, "invalid_allowlist").await;
}

#[tokio::test]
async fn issue_too_many_networks_is_422() {
    let error = IssueError::TooManyNetworks { max: 100 };
    assert_explained(error, 422, "invalid_allowlist").await;
}

// --- UpdateError ----------------------------------------------------------

#[tokio::test]
async fn update_not_found_is_the_one_404() {
    let body = assert_not_found(UpdateError::NotFound { id: ID }).await;
    let revoke_body = assert_not_found(RevokeError::NotFound { id: OTHER_ID }).await;
    assert_eq!(body, revoke_body);
}

#[tokio::test]
async fn update_revoked_is_409() {
    assert_explained(UpdateError::Revoked { id: ID }, 409, "token_revoked").await;
}

#[tokio::test]
async fn update_replaced_is_409_and_names_the_successor() {
    let error = UpdateError::Replaced {
        id: ID,
        by: OTHER_ID,
    };
    let answered = answer(error).await;
    let description = assert_answer(&answered, 409, "already_rotated");
    assert!(description.contains(&OTHER_ID.to_string()), "{description}");
}

#[tokio::test]
async fn update_invalid_label_is_422() {
    let error = UpdateError::InvalidLabel(forbidden_character());
    assert_explained(error, 422, "invalid_label").await;
}

#[tokio::test]
async fn update_expiry_not_in_future_is_422() {
    assert_explained(UpdateError::ExpiryNotInFuture, 422, "expiry_not_in_future").await;
}

#[tokio::test]
async fn update_expiry_out_of_range_is_422() {
    assert_explained(UpdateError::ExpiryOutOfRange, 422, "expiry_out_of_range").await;
}

#[tokio::test]
async fn update_expiry_extended_is_422() {
    assert_explained(UpdateError::ExpiryExtended, 422, "expiry_extended").await;
}

#[tokio::test]
async fn update_lifetime_too_long_is_422() {
    let error = UpdateError::LifetimeTooLong {
        kind: ScopeKind::Domain,
        max: Duration::from_secs(90 * 24 * 3600),
    };
    assert_explained(error, 422, "lifetime_too_long").await;
}

#[tokio::test]
async fn update_must_expire_is_422() {
    let error = UpdateError::MustExpire {
        kind: ScopeKind::Organization,
        max: Duration::from_secs(90 * 24 * 3600),
    };
    assert_explained(error, 422, "expiry_required").await;
}

#[tokio::test]
async fn update_conflict_is_409() {
    assert_explained(UpdateError::Conflict { id: ID }, 409, "conflict").await;
}

#[tokio::test]
async fn update_store_failures_are_503_and_500() {
    assert_unavailable(UpdateError::Store(unavailable())).await;
    assert_server_error(UpdateError::Store(corrupt())).await;
}

#[tokio::test]
async fn update_expired_is_409() {
    assert_explained(UpdateError::Expired { id: ID }, 409, "token_expired").await;
}

#[tokio::test]
async fn update_role_too_high_is_403() {
    let error = UpdateError::RoleTooHigh {
        role: Role::Owner,
        held: Role::Admin,
    };
    assert_explained(error, 403, "role_too_high").await;
}

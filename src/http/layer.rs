//! The middleware: verify the request's token before the inner service runs.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, Request};
use axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use super::client_address::TrustedProxies;
use super::credential::CredentialSource;
use super::rate_limits::{self, RateLimits};
use super::rejection::TokenRejection;
use crate::error::VerifyError;
use crate::networks::IpNetwork;
use crate::restrictions::RateLimit;
use crate::service::{TokenService, VerifiedToken};

/// A [`Layer`] that lets a request through only with a valid API token.
///
/// For each request it reads the token (by default from
/// `Authorization: Bearer <token>`, RFC 6750), checks it with
/// [`TokenService::verify_from`] and the client's address, and on success
/// puts the [`VerifiedToken`] into the request's extensions, where handlers
/// take it as an extractor. Otherwise the inner service is not called and
/// the request is answered with the [`TokenRejection`]: 401, 400 for a
/// malformed header, 403 for a client outside the token's allowlist, 429
/// over its [rate limit](Self::rate_limits), or 503 when the store cannot be
/// reached.
///
/// The layer checks that a token is valid, not what it may do: handlers
/// check that with [`VerifiedToken::require`].
///
/// [`TokenLayer::optional`] makes the token optional: a request without the
/// header passes anonymously, and handlers take `Option<VerifiedToken>`.
///
/// # The client's address
///
/// A token may carry an allowlist of client networks. The layer takes the
/// client's address from the connection, axum's `ConnectInfo<SocketAddr>`,
/// which exists only when the server is started with
/// `into_make_service_with_connect_info::<SocketAddr>()`:
///
/// ```no_run
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// use axum::{Router, routing::get};
/// use api_tokens::http::TokenLayer;
/// use api_tokens::TokenService;
///
/// async fn serve(tokens: Arc<TokenService>) -> std::io::Result<()> {
///     let app = Router::new()
///         .route("/deploy", get(|| async { "deploying" }))
///         .route_layer(TokenLayer::new(tokens));
///     let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
///     // Without connect info the layer knows no address: every token with
///     // an allowlist is refused (403), and it says so once, at warn level.
///     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
/// }
/// ```
///
/// Behind a reverse proxy or load balancer the connection comes from the
/// proxy; name the proxies with [`trusted_proxies`](Self::trusted_proxies)
/// and the layer reads `X-Forwarded-For` from them, and from them only.
/// By default it never reads the header, which any client can write.
///
/// Without an address a token with an allowlist is refused, and every other
/// token passes as before: tokens without one never depend on it.
///
/// # Tracing
///
/// Once a token is verified, the layer records its public id (never its
/// text) as `token_id` on the current span, for services whose request span
/// declares that field (`tower_http`'s `TraceLayer` with
/// `token_id = tracing::field::Empty` in its span, say), and runs the inner
/// service inside an `INFO` span named `api_token` that carries `token_id`,
/// so every event a handler logs names the token without any setup. With no
/// subscriber interested, neither costs more than a check of a cached flag.
///
/// ```no_run
/// use std::sync::Arc;
/// use axum::{Router, routing::get};
/// use api_tokens::http::TokenLayer;
/// use api_tokens::TokenService;
///
/// fn protect(router: Router, tokens: Arc<TokenService>) -> Router {
///     // `route_layer`: unmatched paths still answer 404, not 401.
///     router.route_layer(TokenLayer::new(tokens))
/// }
/// ```
#[derive(Clone)]
pub struct TokenLayer {
    config: Arc<Config>,
}

/// What every request through one layer shares; one reference count to clone.
struct Config {
    tokens: Arc<TokenService>,
    source: CredentialSource,
    /// Whether a request without the header passes, anonymously.
    optional: bool,
    /// Whose `X-Forwarded-For` entries to believe; none by default.
    proxies: TrustedProxies,
    /// The limiter and scope defaults, if requests are limited at all.
    rate_limits: Option<RateLimits>,
    /// Whether the missing connect info was logged, so a server started
    /// without it says so once rather than on every request.
    warned_no_peer: AtomicBool,
}

/// The mark an [optional](TokenLayer::optional) layer leaves on a request it
/// let through without a token, so the extractors can tell "anonymous" from
/// "no layer here".
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anonymous;

impl TokenLayer {
    /// A layer verifying `Authorization: Bearer <token>` headers with `tokens`.
    pub fn new(tokens: Arc<TokenService>) -> Self {
        TokenLayer {
            config: Arc::new(Config::new(tokens, false)),
        }
    }

    /// A layer for routes that serve anonymous callers too: a request
    /// **without** the credential header passes with no token, and the
    /// handler's `Option<VerifiedToken>` is `None` (a handler taking a plain
    /// [`VerifiedToken`] refuses it with
    /// [`MissingCredentials`](TokenRejection::MissingCredentials), 401).
    ///
    /// A header that is present is checked exactly as [`new`](Self::new)
    /// checks it: a request whose header is malformed or empty, whose token
    /// is invalid, revoked or expired, or whose `Authorization` names
    /// another scheme, is refused. A client that tried to authenticate is
    /// never served as anonymous instead.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use axum::{Router, routing::get};
    /// use api_tokens::http::TokenLayer;
    /// use api_tokens::{TokenService, VerifiedToken};
    ///
    /// async fn catalog(token: Option<VerifiedToken>) -> String {
    ///     match token {
    ///         Some(token) => format!("the catalog, with prices for {}", token.scope()),
    ///         None => "the public catalog".to_owned(),
    ///     }
    /// }
    ///
    /// fn router(tokens: Arc<TokenService>) -> Router {
    ///     Router::new()
    ///         .route("/catalog", get(catalog))
    ///         .route_layer(TokenLayer::optional(tokens))
    /// }
    /// ```
    pub fn optional(tokens: Arc<TokenService>) -> Self {
        TokenLayer {
            config: Arc::new(Config::new(tokens, true)),
        }
    }

    /// The same layer, reading the token from `header` instead, whose whole
    /// value is the token (for example `X-API-Key: acmeo_…`). Answers keep
    /// RFC 6750's `WWW-Authenticate: Bearer` challenges and error codes, so
    /// clients see one vocabulary whichever header the service chose.
    #[must_use]
    pub fn header(self, header: HeaderName) -> Self {
        self.with(|config| config.source = CredentialSource::Header(header))
    }

    /// The same layer, believing `X-Forwarded-For` from the proxies in
    /// `networks` (your load balancers' addresses, say `10.0.0.0/8`).
    ///
    /// When a request's connection comes from one of them, the client is
    /// the right-most address of the header that is not itself inside
    /// `networks`: each proxy appends the address it received the request
    /// from, so that entry is the last one a proxy of yours vouches for,
    /// and anything left of it is what the client wrote. If every entry is
    /// a trusted proxy, the left-most is the client. An entry on that walk
    /// that is not an IP address (`unknown`, a name, garbage) leaves the
    /// client unknown, so tokens with an allowlist are refused. The lines
    /// of a repeated header are one list, in order.
    ///
    /// From any other peer, the header is ignored and the peer is the
    /// client: a client cannot claim an address by writing the header
    /// itself. Without this call, the header is never read. Calling it
    /// again replaces the list.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use api_tokens::http::TokenLayer;
    /// use api_tokens::{IpNetwork, TokenService};
    ///
    /// fn layer(tokens: Arc<TokenService>) -> Result<TokenLayer, api_tokens::NetworkError> {
    ///     let load_balancers: IpNetwork = "10.20.0.0/16".parse()?;
    ///     Ok(TokenLayer::new(tokens).trusted_proxies([load_balancers]))
    /// }
    /// ```
    #[must_use]
    pub fn trusted_proxies(self, networks: impl IntoIterator<Item = IpNetwork>) -> Self {
        let proxies = TrustedProxies::new(networks);
        self.with(|config| config.proxies = proxies)
    }

    /// The same layer, limiting how fast each token may be used.
    ///
    /// A token's limit is its own
    /// [`rate_limit`](crate::VerifiedToken::rate_limit), else its scope's
    /// default from `limits` ([`RateLimits::limit_for`]); a token without
    /// either is not limited, and costs nothing more. After the token
    /// verified, its request counts against its limit; over it, the request
    /// is answered `429 Too Many Requests` with
    /// [`TokenRejection::RateLimited`]'s body and `Retry-After` (whole
    /// seconds, rounded up, at least 1). Every response to a limited token,
    /// allowed or not, carries the `RateLimit-Policy` and `RateLimit`
    /// fields of the IETF draft "RateLimit header fields for HTTP"
    /// (draft-ietf-httpapi-ratelimit-headers-10, in the form the draft has
    /// had since its version 08):
    ///
    /// ```text
    /// RateLimit-Policy: "token";q=100;w=60     100 requests per 60 s
    /// RateLimit: "token";r=42;t=1              42 left; more within 1 s
    /// ```
    ///
    /// `t` is, when allowed, at most `period / requests` rounded up (when
    /// one request's worth comes back), and when refused the same moment
    /// as `Retry-After`.
    ///
    /// **With [`RateLimits::local`] the limit is per service instance**: N
    /// instances allow up to N × the limit. Give [`RateLimits::new`] a
    /// shared [`RateLimiter`](super::RateLimiter) for a fleet-wide one.
    ///
    /// Anonymous requests of an [optional](Self::optional) layer have no
    /// token, so no limit here.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use api_tokens::http::{RateLimits, TokenLayer};
    /// use api_tokens::{RateLimit, TokenService};
    ///
    /// fn layer(tokens: Arc<TokenService>) -> TokenLayer {
    ///     // Tokens issued with `IssueRequest::rate_limit` are limited; add
    ///     // `scope_default`s to limit the others.
    ///     TokenLayer::new(tokens).rate_limits(RateLimits::local())
    /// }
    /// ```
    #[must_use]
    pub fn rate_limits(self, limits: RateLimits) -> Self {
        self.with(|config| config.rate_limits = Some(limits))
    }

    /// The same layer with `change` made to a copy of its configuration.
    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            tokens: Arc::clone(&self.config.tokens),
            source: self.config.source.clone(),
            optional: self.config.optional,
            proxies: self.config.proxies.clone(),
            rate_limits: self.config.rate_limits.clone(),
            warned_no_peer: AtomicBool::new(false),
        };
        change(&mut config);
        TokenLayer {
            config: Arc::new(config),
        }
    }
}

impl Config {
    fn new(tokens: Arc<TokenService>, optional: bool) -> Self {
        Config {
            tokens,
            source: CredentialSource::Bearer,
            optional,
            proxies: TrustedProxies::default(),
            rate_limits: None,
            warned_no_peer: AtomicBool::new(false),
        }
    }

    /// The client's address, or `None` if it cannot be told (which refuses
    /// tokens with an allowlist).
    fn client<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        if peer.is_none() && !self.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the token layer sees no client address: serve the router with \
                 into_make_service_with_connect_info::<SocketAddr>(); until then every \
                 token with an allowlist is refused"
            );
        }
        self.proxies.client(peer, request.headers())
    }

    /// Reads and verifies the request's token, from `client` if known.
    /// Logs why a request is refused, never with the token's text.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<VerifiedToken, TokenRejection> {
        let token = self.source.read(headers).inspect_err(|rejection| {
            tracing::debug!(reason = %rejection, "API token refused");
        })?;
        let verified = match client {
            Some(client) => self.tokens.verify_from(token, client).await,
            // Tokens with an allowlist fail closed.
            None => self.tokens.verify(token).await,
        };
        verified.map_err(|error| {
            self.log_refusal(token, &error, client);
            TokenRejection::from_verify(&error)
        })
    }

    /// The limit `token` counts against and whether this request passes
    /// it, or `None` when it has no limit (and the limiter is not asked).
    async fn rate_limit(
        &self,
        token: &VerifiedToken,
    ) -> Option<(RateLimit, rate_limits::RateDecision)> {
        let limits = self.rate_limits.as_ref()?;
        let limit = limits.limit_for(token)?;
        Some((limit, limits.check(token.id(), limit).await))
    }

    fn log_refusal(&self, token: &str, error: &VerifyError, client: Option<IpAddr>) {
        // The id is public (lists show it), so it may be logged; the token
        // text may not. A malformed token has no id worth naming.
        let id = self
            .tokens
            .format()
            .parse(token)
            .ok()
            .map(|parsed| parsed.id());
        match error {
            VerifyError::Store(store) => tracing::warn!(
                token_id = id.map(tracing::field::display),
                error = store as &dyn std::error::Error,
                "API token not checked: the token store failed"
            ),
            // The address the layer saw, for the operator to tell a
            // misconfigured proxy from a stolen token (the audit trail has
            // it too).
            VerifyError::AddressNotAllowed => tracing::debug!(
                token_id = id.map(tracing::field::display),
                client = client.map(tracing::field::display),
                reason = %error,
                "API token refused"
            ),
            _ => tracing::debug!(
                token_id = id.map(tracing::field::display),
                reason = %error,
                "API token refused"
            ),
        }
    }
}

impl<S> Layer<S> for TokenLayer {
    type Service = TokenMiddleware<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenMiddleware {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for TokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLayer")
            .field("source", &self.config.source)
            .field("optional", &self.config.optional)
            .field("trusted_proxies", &self.config.proxies)
            .field("rate_limits", &self.config.rate_limits)
            .finish_non_exhaustive()
    }
}

/// The service [`TokenLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct TokenMiddleware<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for TokenMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMiddleware")
            .field("source", &self.config.source)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for TokenMiddleware<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service that was polled ready is the one to call; a fresh
        // clone takes its place for the next request (tower's usual pattern).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            if config.optional && !config.source.is_present(request.headers()) {
                request.extensions_mut().insert(Anonymous);
                return inner.call(request).await;
            }
            let client = config.client(&request);
            let verified = match config.authenticate(request.headers(), client).await {
                Ok(verified) => verified,
                Err(rejection) => return Ok(rejection.into_response()),
            };
            // The public id only: lists show it, logs may too.
            let id = verified.id();
            tracing::Span::current().record("token_id", tracing::field::display(id));
            let rate = config.rate_limit(&verified).await;
            if let Some((limit, decision)) = rate
                && !decision.is_allowed()
            {
                tracing::debug!(token_id = %id, %limit, "API token over its rate limit");
                return Ok(rate_limits::too_many_requests(limit, decision));
            }
            let span = tracing::info_span!("api_token", token_id = %id);
            request.extensions_mut().insert(verified);
            let future = span.in_scope(|| inner.call(request));
            let mut response = future.instrument(span).await?;
            if let Some((limit, decision)) = rate {
                rate_limits::add_fields(response.headers_mut(), limit, decision);
            }
            Ok(response)
        })
    }
}

//! Where a request carries its token, and reading it from there without
//! trusting anything about the header's shape.

use axum::http::header::{AUTHORIZATION, HeaderMap, HeaderName};

use super::rejection::TokenRejection;

/// The header a token is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    /// `Authorization: Bearer <token>`, as RFC 6750 §2.1 defines it.
    Bearer,
    /// A header whose whole value is the token, such as `X-API-Key`.
    Header(HeaderName),
}

impl CredentialSource {
    /// The header this source reads.
    fn name(&self) -> &HeaderName {
        match self {
            CredentialSource::Bearer => &AUTHORIZATION,
            CredentialSource::Header(name) => name,
        }
    }

    /// Whether the request carries the header at all, whatever its value:
    /// an optional layer lets only requests without it pass anonymously.
    pub(crate) fn is_present(&self, headers: &HeaderMap) -> bool {
        headers.contains_key(self.name())
    }

    /// The token text the request presents, or why there is none.
    ///
    /// Following RFC 6750 §3.1: a request without the header, or with an
    /// `Authorization` header of another scheme, presented no token
    /// ([`TokenRejection::MissingCredentials`]); a header that is repeated,
    /// not ASCII, or not `Bearer` followed by one `b64token`, is a malformed
    /// request ([`TokenRejection::MalformedCredentials`]).
    pub(crate) fn read<'r>(&self, headers: &'r HeaderMap) -> Result<&'r str, TokenRejection> {
        let mut values = headers.get_all(self.name()).iter();
        let value = values.next().ok_or(TokenRejection::MissingCredentials)?;
        // Two headers are two credentials: RFC 6750 forbids presenting more
        // than one, and picking either would let a proxy's header and the
        // client's disagree about who is calling.
        if values.next().is_some() {
            return Err(TokenRejection::MalformedCredentials);
        }
        // Work on bytes: a value with non-ASCII bytes has no `&str` form, and
        // it is malformed rather than a reason to fail the request otherwise.
        let value = trim_whitespace(value.as_bytes());
        let token = match self {
            CredentialSource::Bearer => bearer_token(value)?,
            CredentialSource::Header(_) => value,
        };
        if !is_b64token(token) {
            return Err(TokenRejection::MalformedCredentials);
        }
        // `is_b64token` admits ASCII only, so this always succeeds; the error
        // arm keeps that reasoning out of the way of a panic.
        std::str::from_utf8(token).map_err(|_| TokenRejection::MalformedCredentials)
    }
}

/// The credentials after `Bearer` in an `Authorization` value.
fn bearer_token(value: &[u8]) -> Result<&[u8], TokenRejection> {
    // RFC 7235: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`,
    // and the scheme is case-insensitive.
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => value.split_at(space),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        // Another scheme (or a bare token with no scheme at all): the client
        // did not try bearer authentication, so RFC 6750 §3.1 asks for a
        // challenge without an error code.
        return Err(TokenRejection::MissingCredentials);
    }
    let token = trim_whitespace(rest);
    if token.is_empty() {
        return Err(TokenRejection::MalformedCredentials);
    }
    Ok(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// Anything else (a space between two tokens, a comma, a control or
/// non-ASCII byte) makes the header malformed.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    !body.is_empty()
        && body.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The value without leading and trailing spaces and tabs (HTTP's optional
/// whitespace, which a proxy may leave in place, around a header's value
/// and around each element of a list).
pub(super) fn trim_whitespace(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn read(source: &CredentialSource, values: &[&[u8]]) -> Result<String, TokenRejection> {
        let name = match source {
            CredentialSource::Bearer => AUTHORIZATION,
            CredentialSource::Header(name) => name.clone(),
        };
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(&name, HeaderValue::from_bytes(value).unwrap());
        }
        source.read(&headers).map(str::to_owned)
    }

    fn bearer(value: &[u8]) -> Result<String, TokenRejection> {
        read(&CredentialSource::Bearer, &[value])
    }

    #[test]
    fn reads_a_bearer_token_whatever_the_scheme_case_and_spacing() {
        for value in [
            &b"Bearer abc_DEF-1.2~3+4/5=="[..],
            b"bearer abc_DEF-1.2~3+4/5==",
            b"BEARER   abc_DEF-1.2~3+4/5==  ",
        ] {
            assert_eq!(bearer(value).as_deref(), Ok("abc_DEF-1.2~3+4/5=="));
        }
    }

    #[test]
    fn no_header_or_another_scheme_presents_no_token() {
        assert_eq!(
            read(&CredentialSource::Bearer, &[]),
            Err(TokenRejection::MissingCredentials)
        );
        for value in [
            &b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"[..],
            b"acmeo_abc",
            b"Token abc",
            b"",
        ] {
            assert_eq!(
                bearer(value),
                Err(TokenRejection::MissingCredentials),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_malformed_bearer_header_is_malformed() {
        for value in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer abc def",
            b"Bearer abc,def",
            b"Bearer =abc",
            b"Bearer ===",
            b"Bearer ab=c",
            b"Bearer abc\tdef",
            b"Bearer \xc3\xa9t\xc3\xa9",
            b"Bearer abc\xff",
        ] {
            assert_eq!(
                bearer(value),
                Err(TokenRejection::MalformedCredentials),
                "{value:?}"
            );
        }
    }

    #[test]
    fn two_headers_are_malformed_even_if_both_are_valid() {
        let both = read(&CredentialSource::Bearer, &[b"Bearer abc", b"Bearer abc"]);
        assert_eq!(both, Err(TokenRejection::MalformedCredentials));
    }

    #[test]
    fn a_custom_header_holds_the_token_alone() {
        let api_key = CredentialSource::Header(HeaderName::from_static("x-api-key"));
        assert_eq!(read(&api_key, &[b" abc_123 "]).as_deref(), Ok("abc_123"));
        assert_eq!(read(&api_key, &[]), Err(TokenRejection::MissingCredentials));
        assert_eq!(
            read(&api_key, &[b""]),
            Err(TokenRejection::MalformedCredentials)
        );
        assert_eq!(
            read(&api_key, &[b"Bearer abc"]),
            Err(TokenRejection::MalformedCredentials)
        );
        assert_eq!(
            read(&api_key, &[b"a", b"b"]),
            Err(TokenRejection::MalformedCredentials)
        );
    }

    #[test]
    fn trims_only_spaces_and_tabs() {
        assert_eq!(trim_whitespace(b" \t a b \t"), b"a b");
        assert_eq!(trim_whitespace(b"   "), b"");
        assert_eq!(trim_whitespace(b""), b"");
    }
}

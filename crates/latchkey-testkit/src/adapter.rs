//! Hostile request inputs that every web adapter must refuse the same way, as plain strings, so
//! that latchkey-axum's and latchkey-actix's tests run the very same cases (and a case added for
//! one is added for both).

/// `Authorization` header values that must all get the same opaque `401` with
/// `WWW-Authenticate: Bearer error="invalid_token"`, built around `good` (a valid compact JWT for
/// the verifier under test) and three tokens that fail one claim or key check each:
/// `expired`, `wrong_audience` and `wrong_key`. Besides those: `good` with its signature's last
/// character changed, `good`'s claims under an `alg: none` header, garbage, an empty token, a
/// scheme without a token, a token followed by another word, and a 20,000-byte token.
#[must_use]
pub fn refused_bearer_headers(
    good: &str,
    expired: &str,
    wrong_audience: &str,
    wrong_key: &str,
) -> Vec<String> {
    let mut tampered = good.to_owned();
    let last = tampered.pop().unwrap_or('A');
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let claims = good.split('.').nth(1).unwrap_or_default();
    vec![
        format!("Bearer {expired}"),
        format!("Bearer {wrong_audience}"),
        format!("Bearer {wrong_key}"),
        format!("Bearer {tampered}"),
        format!("Bearer eyJhbGciOiJub25lIn0.{claims}."),
        "Bearer not-a-jwt".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        format!("Bearer {good} extra"),
        format!("Bearer {}", "a".repeat(20_000)),
    ]
}

/// `Cookie` header values that must all mean "no session" (never an error page), built from
/// `real`, a live session cookie as `name=value`: its signature's last character changed, its ID
/// without the signature, garbage, an empty value, an 8 KiB value, percent-encoded junk, the
/// value glued to the name with a dot, and a header with no cookie in it.
///
/// ```
/// let cases = latchkey_testkit::adapter::garbage_cookies("id=abc.def");
/// assert!(cases.contains(&"id=abc.deA".to_owned()));
/// assert!(!cases.contains(&"id=abc.def".to_owned()));
/// ```
#[must_use]
pub fn garbage_cookies(real: &str) -> Vec<String> {
    let (name, value) = real.split_once('=').unwrap_or((real, ""));
    let mut forged = value.to_owned();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let unsigned = value.split('.').next().unwrap_or_default();
    vec![
        format!("{name}={forged}"),
        format!("{name}={unsigned}"),
        format!("{name}=garbage"),
        format!("{name}="),
        format!("{name}={}", "x".repeat(8 * 1024)),
        format!("{name}=%00%ff;;;==="),
        format!("{name}.{value}"),
        "just garbage".to_owned(),
    ]
}

//! Who is calling, and whether a state-changing request really comes from our own page.
//!
//! - Pages: the session token lives in an `HttpOnly; SameSite=Lax` cookie; every form that
//!   changes state echoes the session's CSRF token in a hidden field `csrf`.
//! - The login form has no session yet, so it uses a double-submit token: a random value in a
//!   cookie of its own and the same value in the form.
//! - The API accepts `Authorization: Bearer <session token>` (no CSRF needed: browsers never
//!   attach it on their own), or the session cookie together with an `X-CSRF-Token` header.

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cishan_app::{Actor, AppError, ErrorKind, SessionInfo};
use sha2::{Digest, Sha256};

use crate::AppState;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "cishan_session";
/// The login form's double-submit CSRF cookie.
pub(crate) const LOGIN_CSRF_COOKIE: &str = "cishan_login_csrf";
/// The header an API call with cookie authentication carries the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in caller and the token that identifies the session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) token: String,
    pub(crate) info: SessionInfo,
}

/// Compares two secrets without revealing through timing where they first differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    // Hashing first makes the comparison fixed-length, so neither length nor prefix leaks.
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The session named by the cookie, if it is live.
pub(crate) async fn from_cookie(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<Session>, AppError> {
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    if token.is_empty() {
        return Ok(None);
    }
    Ok(state
        .app
        .session(&token)
        .await?
        .map(|info| Session { token, info }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn bad_token() -> AppError {
    AppError {
        code: "auth.token_invalid".into(),
        message: "登录凭据无效或已过期，请重新登录（POST /api/v1/sessions）获取新的令牌。".into(),
        ..AppError::unauthenticated()
    }
}

pub(crate) fn csrf_refused() -> AppError {
    AppError {
        kind: ErrorKind::Forbidden,
        code: "csrf.invalid".into(),
        message: "安全校验未通过（CSRF 令牌缺失或不正确），操作未执行。请刷新页面后重新提交。"
            .into(),
        field: None,
        cause: None,
    }
}

/// The session of an API caller that wants to change something: a bearer token, or the session
/// cookie with a matching `X-CSRF-Token` header. Anonymous callers get 401.
pub(crate) async fn api_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Session, AppError> {
    if headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(headers).ok_or_else(bad_token)?;
        let info = state.app.session(token).await?.ok_or_else(bad_token)?;
        return Ok(Session {
            token: token.to_owned(),
            info,
        });
    }
    let jar = CookieJar::from_headers(headers);
    let session = from_cookie(state, &jar)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused());
    }
    Ok(session)
}

/// The actor of an API caller (see [`api_session`]).
pub(crate) async fn api_actor(state: &AppState, headers: &HeaderMap) -> Result<Actor, AppError> {
    Ok(api_session(state, headers).await?.info.actor)
}

fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.options.secure_cookies)
        .build()
}

/// The session cookie for a new session. It lasts as long as the browser session; the server
/// ends the session itself after `cishan_app::auth::SESSION_HOURS`.
pub(crate) fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    cookie(state, SESSION_COOKIE, token)
}

/// The login form's double-submit cookie.
pub(crate) fn login_csrf_cookie(state: &AppState, token: String) -> Cookie<'static> {
    cookie(state, LOGIN_CSRF_COOKIE, token)
}

/// A cookie that removes `name` when added to a jar with `CookieJar::remove`.
pub(crate) fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, "")).path("/").build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_secrets() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn reads_bearer_tokens() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer tok123".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok123"));
        h.insert(header::AUTHORIZATION, "bearer  tok".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}

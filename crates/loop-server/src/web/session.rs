//! Dashboard sign-in. The browser holds
//! `loop_session=<issued ms>.<nonce>.<token id>.<HMAC(master key, …)>` in an HttpOnly,
//! SameSite=Strict cookie: valid on every node, and void once the master key changes. Signed
//! in with the master key, the token id is empty and nothing is stored; signed in with a
//! member or admin token, that token is looked up on every request, so its revocation signs
//! the browser out at once. A key is only ever posted once, to `/login`; it never appears in a
//! page. Forms carry a CSRF token derived from the cookie.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use loop_core::Actor;
use loop_core::actor::ActorKind;
use loop_core::token::TokenRole;

use crate::AppState;
use crate::auth::ApiKey;
use crate::error::ApiError;

pub const COOKIE: &str = "loop_session";
/// How long a sign-in lasts.
pub const LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The token every form must send back as `_csrf`.
    pub csrf: String,
    /// The theme the browser chose (`light` or `dark`); otherwise the system's.
    pub theme: Option<&'static str>,
    /// `--public-url`: forms may come from its origin as well as from the request's host.
    pub public_url: String,
    /// Who signed in: what they do is recorded under this name.
    pub actor: Actor,
    /// Signed in with the master key or an admin token: may administer tokens.
    pub admin: bool,
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), ApiError> {
        if bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_mismatch",
                "This form is stale or came from another site: reload the page and try again",
            ))
        }
    }
}

/// Sessions ended by "Log out" on this node, until they would have expired anyway.
#[derive(Debug, Default)]
pub struct Revoked(Mutex<HashMap<String, i64>>);

impl Revoked {
    fn revoke(&self, nonce: &str, expires_ms: i64, now_ms: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, exp| *exp > now_ms);
        map.insert(nonce.to_owned(), expires_ms);
    }

    fn contains(&self, nonce: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains_key(nonce)
    }
}

/// A new session cookie value, for the master key (`token` `None`) or a named token's id.
pub fn issue(key: &ApiKey, now_ms: i64, token: Option<&str>) -> String {
    let body = format!("{now_ms}.{}.{}", loop_core::id::new_id(), token.unwrap_or(""));
    format!("{body}.{}", hex::encode(mac(key, b"loop dashboard session\0", &body)))
}

/// The `Set-Cookie` header for a session (or, with `None`, one that removes it).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", LIFETIME_MS / 1000),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Ends the session in `headers`, if any.
pub fn revoke(state: &AppState, headers: &HeaderMap, now_ms: i64) {
    if let Some(c) = cookie(headers, COOKIE).and_then(|v| verify(&state.config.api_key, v)) {
        state.logouts.revoke(c.nonce, c.issued + LIFETIME_MS, now_ms);
    }
}

/// What a genuine session cookie says.
struct Signed<'a> {
    issued: i64,
    nonce: &'a str,
    /// The named token signed in with; `None` for the master key.
    token: Option<&'a str>,
}

fn verify<'a>(key: &ApiKey, value: &'a str) -> Option<Signed<'a>> {
    let (body, mac_hex) = value.rsplit_once('.')?;
    let mut parts = body.splitn(3, '.');
    let (issued, nonce, token) = (parts.next()?, parts.next()?, parts.next()?);
    let given = hex::decode(mac_hex).ok()?;
    let genuine = bool::from(given.ct_eq(&mac(key, b"loop dashboard session\0", body)));
    genuine.then_some(Signed { issued: issued.parse().ok()?, nonce, token: (!token.is_empty()).then_some(token) })
}

fn csrf_for(key: &ApiKey, session: &str) -> String {
    hex::encode(&mac(key, b"loop dashboard csrf\0", session)[..16])
}

fn mac(key: &ApiKey, purpose: &[u8], body: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key length");
    m.update(purpose);
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The value of one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A path on this site to return to after signing in; anything else becomes `/issues`.
/// Only visible ASCII is followed: browsers drop tabs and newlines from a `Location`, so
/// `/\t/evil.example` would be read as `//evil.example`, another site, and a newline cannot go
/// in a header at all. `//` and `/\` begin another site's address.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && p.bytes().all(|b| b.is_ascii_graphic())
                && !p.starts_with("//")
                && !p.contains('\\') =>
        {
            p.to_owned()
        }
        _ => "/issues".to_owned(),
    }
}

/// Without a valid session: pages redirect to the login page, the event stream gets a 401.
pub struct SignInFirst(String);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        if self.0.starts_with("/events") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let next: String = url_encode(&self.0);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

pub fn url_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|v| v[1..].to_owned()).unwrap_or_default()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignInFirst> {
        let here = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let now = loop_core::Clock::now(&loop_core::SystemClock).millis();
        let value = cookie(&parts.headers, COOKIE).ok_or_else(|| SignInFirst(here.clone()))?;
        match verify(&state.config.api_key, value) {
            // A minute of grace for another node's clock running ahead of this one.
            Some(c) if c.issued <= now + 60_000 && now < c.issued + LIFETIME_MS && !state.logouts.contains(c.nonce) => {
                let (actor, admin) = match c.token {
                    None => (Actor::human(), true),
                    Some(id) => match state.store.get_token(id).await {
                        Ok(Some(t))
                            if t.role.is_person() && t.dead(loop_core::Timestamp::from_millis(now)).is_none() =>
                        {
                            let admin = t.role == TokenRole::Admin;
                            (Actor { name: t.name, kind: ActorKind::Human }, admin)
                        }
                        _ => return Err(SignInFirst(here)),
                    },
                };
                let theme = match cookie(&parts.headers, "loop_theme") {
                    Some("light") => Some("light"),
                    Some("dark") => Some("dark"),
                    _ => None,
                };
                Ok(Viewer {
                    csrf: csrf_for(&state.config.api_key, value),
                    theme,
                    public_url: state.config.public_url.clone(),
                    actor,
                    admin,
                })
            }
            _ => Err(SignInFirst(here)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_verify_only_with_their_key_and_intact() {
        let key = ApiKey::new("loop_secret");
        let value = issue(&key, 1000, None);
        assert!(!value.contains("loop_secret"));
        assert_eq!(verify(&key, &value).map(|c| (c.issued, c.token)), Some((1000, None)));
        let named = issue(&key, 1000, Some("tok1"));
        assert_eq!(verify(&key, &named).and_then(|c| c.token), Some("tok1"));
        assert!(verify(&key, &named.replacen("tok1", "tok2", 1)).is_none());
        assert!(verify(&ApiKey::new("loop_other"), &value).is_none());
        assert!(verify(&key, &value.replacen("1000", "9000", 1)).is_none());
        assert!(verify(&key, "1000.x.zz").is_none());
        assert_ne!(csrf_for(&key, &value), csrf_for(&key, &issue(&key, 1000, None)));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/issues?status=todo")), "/issues?status=todo");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
            "/\t/evil.example",
            "/\n/evil.example",
            "/issues\r\nSet-Cookie: x=1",
            "/ /evil.example",
            "/\u{a0}/evil.example",
        ] {
            assert_eq!(local_path(Some(bad)), "/issues", "{bad:?}");
        }
        assert_eq!(local_path(None), "/issues");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; loop_session=abc.def; b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("abc.def"));
        assert_eq!(cookie(&h, "c"), None);
    }
}

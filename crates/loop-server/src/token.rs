//! Tokens scoped to one claim. A prompt carries `loopt_<session id>.<HMAC-SHA256(master key,
//! session id)>` instead of the master key: it is checked without storing anything, a retried
//! claim gets the same token, every server node derives the same one, and it stops working
//! when the session's lease ends.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::ApiKey;

const PREFIX: &str = "loopt_";

pub fn for_session(key: &ApiKey, session_id: &str) -> String {
    format!("{PREFIX}{session_id}.{}", hex::encode(mac(key, session_id)))
}

/// The session id a token was issued for, if the token is genuine.
pub fn session_of(key: &ApiKey, token: &str) -> Option<String> {
    let (session_id, mac_hex) = token.strip_prefix(PREFIX)?.rsplit_once('.')?;
    let given = hex::decode(mac_hex).ok()?;
    bool::from(given.ct_eq(&mac(key, session_id))).then(|| session_id.to_owned())
}

fn mac(key: &ApiKey, session_id: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key length");
    m.update(b"loop session token\0");
    m.update(session_id.as_bytes());
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_same_key_and_session() {
        let key = ApiKey::new("loop_secret");
        let t = for_session(&key, "s1");
        assert!(t.starts_with("loopt_s1."));
        assert!(!t.contains("loop_secret"));
        assert_eq!(session_of(&key, &t).as_deref(), Some("s1"));
        assert_eq!(session_of(&ApiKey::new("other"), &t), None);
        assert_eq!(session_of(&key, &t.replace("s1.", "s2.")), None);
        assert_eq!(session_of(&key, "loopt_s1.zz"), None);
    }
}

//! The secrets of named tokens: `loopk_` and 32 random bytes in hex, shown once when made; Loop
//! keeps only their SHA-256, by which a request's token is found.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "loopk_";

/// A new secret and the hash to keep of it.
pub fn issue() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", hex::encode(bytes));
    let hash = hash(&secret);
    (secret, hash)
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_random_and_only_their_hash_is_kept() {
        let (a, hash) = super::issue();
        let (b, _) = super::issue();
        assert!(a.starts_with(super::PREFIX) && a.len() == 70 && a != b);
        assert_eq!(super::hash(&a), hash);
        assert!(!hash.contains(&a[6..]));
    }
}

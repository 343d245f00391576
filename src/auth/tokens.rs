//! Refresh (session) tokens: 64 random URL-safe characters given to the client once. The
//! database keeps only their SHA-256, so reading `directus_sessions` yields nothing usable.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn new_refresh_token() -> String {
    let mut rng = rand::rng();
    (0..64)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// What `directus_sessions.token` stores for a refresh token: 64 hex characters.
pub fn stored_form(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_refresh_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_refresh_token());
        let stored = stored_form(&a);
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains(&a[..16]));
        assert_eq!(stored, stored_form(&a));
    }
}

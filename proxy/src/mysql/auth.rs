//! Password proofs of the MySQL protocol. `mysql_native_password`: SHA1(password) XOR
//! SHA1(salt + SHA1(SHA1(password))), which rectus can check only against secrets it
//! keeps in clear (static tokens; user passwords are argon2 hashes, so users log in with
//! `mysql_clear_password` inside TLS). `caching_sha2_password`'s fast path, for logging in
//! to a MySQL 8 database.

use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};

/// The `mysql_native_password` answer to `salt` for `password` (empty for no password).
pub fn native_scramble(password: &[u8], salt: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA1_FOR_LEGACY_USE_ONLY, password);
    let stage2 = digest(&SHA1_FOR_LEGACY_USE_ONLY, stage1.as_ref());
    let mut salted = salt.to_vec();
    salted.extend_from_slice(stage2.as_ref());
    let mask = digest(&SHA1_FOR_LEGACY_USE_ONLY, &salted);
    xor(stage1.as_ref(), mask.as_ref())
}

/// Whether `answer` is the native scramble of `secret` for `salt`, compared in constant
/// time.
pub fn native_proves(secret: &str, salt: &[u8], answer: &[u8]) -> bool {
    let expected = native_scramble(secret.as_bytes(), salt);
    expected.len() == answer.len()
        && expected
            .iter()
            .zip(answer)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The `caching_sha2_password` answer: SHA256(p) XOR SHA256(SHA256(SHA256(p)) + salt).
pub fn sha2_scramble(password: &[u8], salt: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA256, password);
    let stage2 = digest(&SHA256, stage1.as_ref());
    let mut salted = stage2.as_ref().to_vec();
    salted.extend_from_slice(salt);
    let mask = digest(&SHA256, &salted);
    xor(stage1.as_ref(), mask.as_ref())
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// 20 random printable bytes, as MySQL servers send (no NUL, which ends the string).
pub fn salt() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::rng();
    std::array::from_fn(|_| rng.random_range(b'!'..=b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof holds for its secret and salt only (real clients check it in the wire
    /// tests).
    #[test]
    fn native_scramble_proves_its_secret_only() {
        let salt =
            b"\x3d\x45\x57\x21\x35\x6c\x3f\x48\x2b\x41\x2d\x76\x28\x5a\x21\x4b\x4f\x6e\x5f\x6f";
        let answer = native_scramble(b"password", salt);
        assert_eq!(answer.len(), 20);
        assert!(native_proves("password", salt, &answer));
        assert!(!native_proves("passwore", salt, &answer));
        assert!(!native_proves("password", b"another salt 20bytes", &answer));
        assert!(native_scramble(b"", salt).is_empty());
    }
}

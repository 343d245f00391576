//! Password hashes in the PHC string format Directus writes (argon2id, 64 MiB, 3 passes,
//! 4 lanes, 32-byte hash, 16-byte salt), so hashes move between Directus and rectus.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

fn directus_argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(65536, 3, 4, Some(32)).map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn hash_password(plain: &str) -> Result<String, HashError> {
    let salt: [u8; 16] = rand::rng().random();
    let hash = directus_argon2()?
        .hash_password_with_salt(plain.as_bytes(), &salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `plain` matches the PHC `hash`. Any hash that does not parse simply fails.
pub fn verify_password(hash: &str, plain: &str) -> bool {
    // The parameters come from the hash itself; these only pick the implementation.
    Argon2::default()
        .verify_password(plain.as_bytes(), hash)
        .is_ok()
}

/// Hashes computed at once. Each holds 64 MiB for its whole run, so a burst of logins
/// would otherwise take memory without bound (and finish no sooner than one per core).
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    tokio::sync::Semaphore::new(cores.clamp(1, 4))
});

/// `work` (a hash) on the blocking pool, once one of the [`HASHING`] places is free.
async fn on_hashing_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let _place = HASHING
        .acquire()
        .await
        .map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HashError(e.to_string()))
}

/// [`hash_password`] off the async workers, under the bound on hashes at once.
pub async fn hash(plain: String) -> Result<String, HashError> {
    on_hashing_pool(move || hash_password(&plain)).await?
}

/// [`verify_password`] off the async workers, under the bound on hashes at once.
pub async fn verify(hash: String, plain: String) -> Result<bool, HashError> {
    on_hashing_pool(move || verify_password(&hash, &plain)).await
}

/// A password for a generated account: 24 characters, about 140 bits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The admin of `../shared/fixtures/directus11-postgres.sql`, hashed by Directus 11.
    const DIRECTUS_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$ye+yxC8XRQUCHeoMYF02Ig$IiKaAvcUKtJUP+lcdiOtgaZbYcJzCpp1MQj+UWNwZ6Q";

    #[test]
    fn a_hash_written_by_directus_verifies() {
        assert!(verify_password(DIRECTUS_HASH, "d1r3ctu5"));
        assert!(!verify_password(DIRECTUS_HASH, "d1r3ctu6"));
    }

    #[test]
    fn hashes_use_directus_parameters_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
            "{hash}"
        );
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn malformed_hashes_never_verify() {
        assert!(!verify_password("", ""));
        assert!(!verify_password("plaintext", "plaintext"));
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }
}

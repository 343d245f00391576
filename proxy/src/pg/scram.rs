//! The client side of SCRAM-SHA-256 (RFC 5802/7677, no channel binding), for upstream
//! databases that ask the proxy's database user for it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

#[derive(Debug, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message from the database")]
    Malformed,
    #[error("the database's SCRAM signature does not verify")]
    BadSignature,
}

pub struct Client {
    password: String,
    nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Client {
    pub fn new(password: String) -> Self {
        let mut bytes = [0u8; 18];
        // A nonce only has to be unpredictable; ring's system RNG is the crate's one source.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
        let nonce = STANDARD.encode(bytes);
        let first_bare = format!("n=,r={nonce}");
        Client {
            password,
            nonce,
            first_bare,
            server_signature: None,
        }
    }

    pub fn first_message(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Answers the server-first message.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed)?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in text.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = STANDARD.decode(v).ok(),
                Some(("i=", v)) => iterations = v.parse::<u32>().ok().and_then(NonZeroU32::new),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError::Malformed);
        };
        if !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Malformed);
        }
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.first_bare, text, without_proof);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed)?;
        let v = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .and_then(|v| STANDARD.decode(v).ok())
            .ok_or(ScramError::Malformed)?;
        if Some(v) == self.server_signature {
            Ok(())
        } else {
            Err(ScramError::BadSignature)
        }
    }
}

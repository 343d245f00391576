//! Access tokens: JWTs signed with `SECRET` (HS256 only), carrying Directus's claims. A
//! token is only ever accepted with the configured algorithm and key; its claims identify
//! the user, while what the user may do is read fresh on every request.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// The issuer Directus writes; tokens from it are recognised as access tokens.
pub const ISSUER: &str = "directus";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub id: String,
    pub role: Option<String>,
    pub app_access: bool,
    pub admin_access: bool,
    /// Session-mode tokens name their session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token expired.")]
    Expired,
    #[error("Invalid token.")]
    Invalid,
}

/// Tokens whose signature was checked, by their full text: a client sends the same token
/// with every request, and the HMAC and two JSON decodes cost more than the rest of
/// authentication. The text includes the signature, so a hit is the same verified token;
/// its expiry is checked on every use.
const VERIFIED_TOKENS: u64 = 10_000;

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: moka::sync::Cache<String, Claims>,
}

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(std::time::Duration::from_secs(300))
                .build(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    /// Verifies signature, algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.already_verified(token)
            .unwrap_or_else(|| self.verify_signature(token))
    }

    fn already_verified(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        let claims = self.verified.get(token)?;
        Some(match claims.exp > chrono::Utc::now().timestamp() {
            true => Ok(claims),
            false => Err(TokenError::Expired),
        })
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        self.verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }

    /// Verifies `token` when it claims to be one of our JWTs; `None` when it does not (it
    /// may be a static token).
    pub fn verify_access(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        self.already_verified(token)
            .or_else(|| is_directus_jwt(token).then(|| self.verify_signature(token)))
    }

    /// Verifies a token whose expiry does not matter (a session cookie being refreshed).
    pub fn verify_ignoring_expiry(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

/// Whether `token` claims to be one of our JWTs (three parts, `iss: directus`), read without
/// verifying anything. Such a token is verified strictly; anything else may be a static
/// token. This is how Directus tells the two apart.
pub fn is_directus_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("iss").and_then(|i| i.as_str()).map(|i| i == ISSUER))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            id: "u1".into(),
            role: Some("r1".into()),
            app_access: true,
            admin_access: false,
            session: None,
            iat: now,
            exp: now + exp_offset,
            iss: ISSUER.into(),
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let keys = JwtKeys::new("secret");
        let token = keys.sign(&claims(60)).unwrap();
        assert!(is_directus_jwt(&token));
        assert_eq!(keys.verify(&token).unwrap().id, "u1");
        assert_eq!(
            keys.verify(&token).unwrap().id,
            "u1",
            "a second use is answered from the verified tokens"
        );
        let expired = keys.sign(&claims(-5)).unwrap();
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));
        assert_eq!(keys.verify_access("static-token"), None);
        assert_eq!(keys.verify_ignoring_expiry(&expired).unwrap().id, "u1");
    }

    #[test]
    fn tampered_tokens_are_invalid() {
        let keys = JwtKeys::new("secret");
        let token = keys.sign(&claims(60)).unwrap();
        let other = JwtKeys::new("another secret").sign(&claims(60)).unwrap();
        assert_eq!(keys.verify(&other), Err(TokenError::Invalid));

        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(60);
        forged.admin_access = true;
        let payload = b64(&serde_json::to_value(&forged).unwrap());
        let changed_payload = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(keys.verify(&changed_payload), Err(TokenError::Invalid));

        let none_header = b64(&serde_json::json!({"alg": "none", "typ": "JWT"}));
        let alg_none = format!("{none_header}.{payload}.");
        assert!(is_directus_jwt(&alg_none));
        assert_eq!(keys.verify(&alg_none), Err(TokenError::Invalid));

        let hs512 = b64(&serde_json::json!({"alg": "HS512", "typ": "JWT"}));
        assert_eq!(
            keys.verify(&format!("{hs512}.{}.{}", parts[1], parts[2])),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn static_tokens_are_not_jwts() {
        assert!(!is_directus_jwt("my-static-token"));
        assert!(!is_directus_jwt("a.b.c"));
        let foreign = format!(
            "{}.{}.sig",
            b64(&serde_json::json!({"alg": "HS256"})),
            b64(&serde_json::json!({"iss": "other"}))
        );
        assert!(!is_directus_jwt(&foreign));
    }
}

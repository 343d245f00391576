//! The authentication settings: token lifetimes, the login stall and the cookies of the
//! `cookie` and `session` login modes.

use std::time::Duration;

use super::{ConfigError, flag, parse_duration};

/// Token lifetimes and the cookies of the `cookie` and `session` login modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    pub refresh_cookie: CookieConfig,
    pub session_cookie: CookieConfig,
    /// Every login takes at least this long, so its duration tells nothing.
    pub login_stall: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    pub name: String,
    pub secure: bool,
    pub same_site: SameSite,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

pub(super) fn auth_config(
    take: &mut impl FnMut(&str) -> Option<String>,
) -> Result<AuthConfig, ConfigError> {
    let mut duration = |name: &str, default: &str| -> Result<Duration, ConfigError> {
        let text = take(name).unwrap_or_else(|| default.to_string());
        parse_duration(&text).ok_or_else(|| {
            ConfigError(format!(
                "{name}={text} is not a duration: use for example 900, 30s, 15m, 12h or 7d"
            ))
        })
    };
    let access_token_ttl = duration("ACCESS_TOKEN_TTL", "15m")?;
    let refresh_token_ttl = duration("REFRESH_TOKEN_TTL", "7d")?;
    let session_ttl = duration("SESSION_COOKIE_TTL", "1d")?;
    let login_stall = duration("LOGIN_STALL_TIME", "500")?;
    let mut cookie = |prefix: &str, default_name: &str| -> Result<CookieConfig, ConfigError> {
        let secure_name = format!("{prefix}_SECURE");
        let secure = flag(&secure_name, take(&secure_name))?.unwrap_or(false);
        let same_site_name = format!("{prefix}_SAME_SITE");
        let same_site = match take(&same_site_name)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("lax") => SameSite::Lax,
            Some("strict") => SameSite::Strict,
            Some("none") => SameSite::None,
            Some(other) => {
                return Err(ConfigError(format!(
                    "{same_site_name}={other} is not valid: use lax, strict or none"
                )));
            }
        };
        Ok(CookieConfig {
            name: take(&format!("{prefix}_NAME")).unwrap_or_else(|| default_name.to_string()),
            secure,
            same_site,
            domain: take(&format!("{prefix}_DOMAIN")),
        })
    };
    Ok(AuthConfig {
        access_token_ttl,
        refresh_token_ttl,
        session_ttl,
        refresh_cookie: cookie("REFRESH_TOKEN_COOKIE", "directus_refresh_token")?,
        session_cookie: cookie("SESSION_COOKIE", "directus_session_token")?,
        login_stall,
    })
}

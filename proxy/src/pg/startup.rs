//! The startup of a client session: startup parameters checked, the password checked, an
//! upstream connection taken from the pool and set up, and the client told it may begin.

use std::collections::BTreeMap;

use bytes::{Buf, BytesMut};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use tokio::io::AsyncWrite;

use super::frame::{self, FrameReader, cstr, encode, error_response, ready_for_query};
use super::session::ClientStream;
use super::upstream::Leased;
use super::{Shared, cancel};
use crate::endpoint::UNREACHABLE;
use crate::{Directory, Identity, LoginError};

/// Startup parameters passed on to the database as session settings.
const PASSED_PARAMETERS: &[&str] = &[
    "application_name",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
    "client_encoding",
];

pub(super) fn parameters(packet: &mut BytesMut) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    while let Some(key) = cstr(packet) {
        if key.is_empty() {
            break;
        }
        let value = cstr(packet).unwrap_or_default();
        params.insert(key, value);
    }
    params
}

pub(super) async fn fatal<S: AsyncWrite + Unpin>(
    stream: &mut S,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    frame::write_all(stream, &error_response("FATAL", code, message)).await
}

/// A logged-in session with its upstream connection.
pub(super) struct Session {
    pub identity: Identity,
    pub leased: Leased,
    pub cancel_key: (i32, i32),
    /// Woken by the client's cancel requests ([`cancel::Registry::register`]).
    pub cancelled: std::sync::Arc<tokio::sync::Notify>,
    /// The `SET`s that ran on its upstream connection at startup, as one text.
    pub settings: String,
}

/// Checks the startup parameters and the password, then opens the upstream session.
pub(super) async fn handshake<D: Directory>(
    client: &mut FrameReader<Box<dyn ClientStream>>,
    shared: &Shared<D>,
    params: &BTreeMap<String, String>,
    tls: bool,
) -> std::io::Result<Option<Session>> {
    let stream = &mut client.stream;
    let Some(user) = params.get("user").filter(|u| !u.is_empty()) else {
        fatal(
            stream,
            "28000",
            "no PostgreSQL user name specified in startup packet",
        )
        .await?;
        return Ok(None);
    };
    let database = params.get("database").unwrap_or(user);
    if *database != shared.config.upstream.database {
        let message = format!("database \"{database}\" does not exist");
        fatal(stream, "3D000", &message).await?;
        return Ok(None);
    }
    if params.contains_key("replication") {
        fatal(
            stream,
            "42501",
            "rectus: replication connections are not allowed",
        )
        .await?;
        return Ok(None);
    }
    if params.get("options").is_some_and(|o| !o.trim().is_empty()) {
        fatal(stream, "42501", "rectus: startup options are not allowed").await?;
        return Ok(None);
    }
    if params
        .keys()
        .any(|k| k.eq_ignore_ascii_case("search_path") || k.starts_with('_'))
    {
        fatal(
            stream,
            "42501",
            "rectus: this startup parameter is not allowed",
        )
        .await?;
        return Ok(None);
    }
    if !tls && !shared.config.endpoint.allow_insecure_password {
        fatal(
            stream,
            "28000",
            "rectus: password authentication needs an encrypted connection (sslmode=require)",
        )
        .await?;
        return Ok(None);
    }
    let mut out = BytesMut::new();
    encode(&Authentication::CleartextPassword, &mut out);
    frame::write_all(stream, &out).await?;
    let Some(mut reply) = client.frame().await? else {
        return Ok(None);
    };
    let stream = &mut client.stream;
    if reply[0] != b'p' {
        fatal(stream, "08P01", "expected a password message").await?;
        return Ok(None);
    }
    reply.advance(5);
    let password = cstr(&mut reply).unwrap_or_default();
    let identity = match shared.directory.login(user, &password).await {
        Ok(identity) => identity,
        Err(LoginError::Invalid) => {
            let message = format!("password authentication failed for user \"{user}\"");
            fatal(stream, "28P01", &message).await?;
            return Ok(None);
        }
        Err(LoginError::Unavailable(e)) => {
            tracing::warn!(error = %e, "wire login: the database cannot be reached");
            fatal(stream, "08006", UNREACHABLE).await?;
            return Ok(None);
        }
        Err(LoginError::Internal(e)) => {
            tracing::warn!(error = %e, "wire login failed");
            fatal(stream, "XX000", "rectus: login failed").await?;
            return Ok(None);
        }
    };
    let mut settings = Vec::new();
    for (key, value) in params {
        let key = key.to_lowercase();
        if !PASSED_PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        if key == "client_encoding" && !identity.admin && !is_utf8(value) {
            fatal(
                stream,
                "22023",
                "rectus: only the UTF8 client encoding is supported",
            )
            .await?;
            return Ok(None);
        }
        if key == "client_encoding" && is_utf8(value) {
            continue;
        }
        if value.contains(['\'', '\\', '\0']) {
            fatal(
                stream,
                "22023",
                &format!("invalid value for parameter \"{key}\""),
            )
            .await?;
            return Ok(None);
        }
        settings.push(format!("SET {key} = '{value}'"));
    }
    let mut leased = match shared.pool.get().await {
        Ok(leased) => leased,
        Err(super::upstream::UpstreamError::Full) => {
            fatal(stream, "53300", "sorry, too many clients already").await?;
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(error = ?e, "wire session: no upstream connection");
            fatal(stream, "08006", UNREACHABLE).await?;
            return Ok(None);
        }
    };
    // The guard prints string literals for standard_conforming_strings = on (a backslash is
    // just a character): where the database or its role sets it off, a guarded session
    // gets it on, or a printed '\' would end no string.
    let conforming = |(k, v): &(String, String)| k != "standard_conforming_strings" || v == "on";
    if !identity.admin && !leased.upstream.parameters.iter().all(conforming) {
        settings.push("SET standard_conforming_strings = on".to_string());
    }
    if !settings.is_empty()
        && let Err(e) = leased.upstream.run(&settings.join("; ")).await
    {
        let message = match e {
            super::upstream::UpstreamError::Refused(m) => m,
            other => other.to_string(),
        };
        fatal(stream, "22023", &message).await?;
        return Ok(None);
    }
    let (key, cancelled) = shared.cancel.register(cancel::Target::of(
        &shared.config.upstream,
        &leased.upstream,
    ));
    let mut out = BytesMut::new();
    encode(&Authentication::Ok, &mut out);
    for (name, value) in &leased.upstream.parameters {
        // The upstream's own role stays hidden: clients see who they logged in as.
        let value = match name.as_str() {
            "session_authorization" => user.clone(),
            "is_superuser" => "off".to_string(),
            "standard_conforming_strings" if !identity.admin => "on".to_string(),
            "application_name" => params.get("application_name").cloned().unwrap_or_default(),
            _ => value.clone(),
        };
        encode(&ParameterStatus::new(name.clone(), value), &mut out);
    }
    encode(&BackendKeyData::new(key.0, SecretKey::I32(key.1)), &mut out);
    out.extend_from_slice(&ready_for_query(b'I'));
    frame::write_all(stream, &out).await?;
    // The settings that can change what a read answers (not the application name).
    let settings = settings
        .iter()
        .filter(|s| !s.starts_with("SET application_name "))
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Some(Session {
        identity,
        leased,
        cancel_key: key,
        cancelled,
        settings,
    }))
}

fn is_utf8(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().replace(['-', '_'], "").as_str(),
        "utf8" | "unicode"
    )
}

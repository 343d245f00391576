//! One client connection: the greeting, TLS when the client asks, the login, an upstream
//! connection from the pool set up for the user, then either passthrough (admins) or the
//! guarded command loop.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::packet::{self, MAX_PART, PacketReader};
use super::protocol::{self, SERVER_STATUS_AUTOCOMMIT, caps, command};
use super::upstream::{Leased, UpstreamError};
use super::{Shared, auth};
use crate::endpoint::UNREACHABLE;
use crate::{Directory, Identity, LoginError};

pub(super) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

pub(super) type Client = PacketReader<Box<dyn ClientStream>>;

/// What the client said in its handshake and how the session goes on.
pub(super) struct Hello {
    pub capabilities: u32,
    pub user: String,
    pub peer: SocketAddr,
}

pub(super) async fn run<D: Directory>(
    stream: TcpStream,
    peer: SocketAddr,
    id: u32,
    shared: Arc<Shared<D>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut client: Client = PacketReader::new(Box::new(stream));
    let info = match shared.pool.info().await {
        Ok(info) => info.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "MySQL wire session: no upstream connection");
            let out = protocol::err(1105, "HY000", UNREACHABLE);
            return packet::write(&mut client.stream, 0, &out).await.map(|_| ());
        }
    };
    let salt = auth::salt();
    let offered = caps::OFFERED & info.capabilities | caps::SSL;
    let greeting = protocol::greeting(&info.version, id, &salt, offered);
    packet::write(&mut client.stream, 0, &greeting).await?;
    let Some(mut first) = client.packet().await? else {
        return Ok(());
    };
    let mut tls = false;
    if protocol::is_ssl_request(&first.payload) {
        // Bytes after the request and before the TLS handshake would be read as if they
        // had come encrypted.
        if client.buffered() != 0 {
            return Err(packet::invalid("data after the SSL request"));
        }
        let stream = shared.tls.accept(client.into_inner()).await?;
        client = PacketReader::new(Box::new(stream));
        tls = true;
        let Some(next) = client.packet().await? else {
            return Ok(());
        };
        first = next;
    }
    let mut seq = first.seq.wrapping_add(1);
    let Some(response) = protocol::handshake_response(first.payload) else {
        let out = protocol::err(1043, "08S01", "Bad handshake");
        return packet::write(&mut client.stream, seq, &out)
            .await
            .map(|_| ());
    };
    let hello = Hello {
        capabilities: response.capabilities & offered,
        user: response.user.clone(),
        peer,
    };
    if let Some(database) = &response.database
        && !database.eq_ignore_ascii_case(&shared.config.upstream.database)
    {
        let message = format!(
            "Access denied for user '{}'@'{}' to database '{database}'",
            hello.user,
            peer.ip()
        );
        let out = protocol::err(1044, "42000", &message);
        return packet::write(&mut client.stream, seq, &out)
            .await
            .map(|_| ());
    }
    let Some(identity) = login(&mut client, &shared, &response, &salt, tls, &mut seq).await? else {
        return Ok(());
    };
    let mut leased = match shared.pool.get(hello.capabilities).await {
        Ok(leased) => leased,
        Err(UpstreamError::Full) => {
            let out = protocol::err(1040, "08004", "Too many connections");
            return packet::write(&mut client.stream, seq, &out)
                .await
                .map(|_| ());
        }
        Err(e) => {
            tracing::warn!(error = %e, "MySQL wire session: no upstream connection");
            let out = protocol::err(1105, "HY000", UNREACHABLE);
            return packet::write(&mut client.stream, seq, &out)
                .await
                .map(|_| ());
        }
    };
    let setup = if identity.admin {
        leased.upstream.client_charset(response.charset).await
    } else {
        leased.upstream.guard_session(&info).await
    };
    if let Err(e) = setup {
        tracing::warn!(error = ?e, "MySQL wire session: cannot set the session up");
        let out = protocol::err(1105, "HY000", "rectus: cannot set the session up");
        return packet::write(&mut client.stream, seq, &out)
            .await
            .map(|_| ());
    }
    packet::write(
        &mut client.stream,
        seq,
        &protocol::ok(0, SERVER_STATUS_AUTOCOMMIT),
    )
    .await?;
    if identity.admin {
        let mut access = crate::guarded::SessionAccess::default();
        let mut first = None;
        if super::admin_reads::applies(&shared, &info) {
            let admin = super::admin_reads::Admin {
                identity: &identity,
                info: &info,
                charset: response.charset,
            };
            let upstream = &mut leased.upstream;
            match super::admin_reads::serve(&mut client, upstream, &shared, &mut access, &admin)
                .await?
            {
                Some(part) => first = Some(part),
                None => return Ok(()),
            }
        }
        passthrough(client, leased, first, &shared, (&identity, access)).await
    } else {
        let clean =
            super::commands::serve(&mut client, &mut leased, &shared, &identity, &hello, &info)
                .await?;
        if clean {
            shared.pool.put(leased).await;
        }
        Ok(())
    }
}

/// Checks who is logging in: a proof of a static token in the handshake itself
/// (`mysql_native_password`), or else, inside TLS (or where plain passwords are allowed),
/// the password in clear after switching the client to `mysql_clear_password`.
async fn login<D: Directory>(
    client: &mut Client,
    shared: &Shared<D>,
    response: &protocol::HandshakeResponse,
    salt: &[u8; 20],
    tls: bool,
    seq: &mut u8,
) -> std::io::Result<Option<Identity>> {
    let native = response
        .plugin
        .as_deref()
        .is_none_or(|p| p == "mysql_native_password");
    let clear_allowed = tls || shared.config.endpoint.allow_insecure_password;
    let switchable = response.capabilities & caps::PLUGIN_AUTH != 0;
    let mut answer = response.auth.clone();
    if !native && !clear_allowed && switchable {
        // A client of another plugin (MySQL 8's caching_sha2_password) is asked for a
        // native proof, which a static token can give without TLS.
        let data = [&salt[..], &[0]].concat();
        let switch = protocol::auth_switch("mysql_native_password", &data);
        packet::write(&mut client.stream, *seq, &switch).await?;
        let Some(reply) = client.packet().await? else {
            return Ok(None);
        };
        *seq = reply.seq.wrapping_add(1);
        answer = reply.payload.to_vec();
    }
    let mut outcome = Err(LoginError::Invalid);
    if answer.len() == 20 && (native || !clear_allowed) {
        let salt = *salt;
        outcome = shared
            .directory
            .login_token_proof(&move |token| auth::native_proves(token, &salt, &answer))
            .await;
    }
    if matches!(outcome, Err(LoginError::Invalid)) && clear_allowed && switchable {
        let switch = protocol::auth_switch("mysql_clear_password", &[]);
        packet::write(&mut client.stream, *seq, &switch).await?;
        let Some(reply) = client.packet().await? else {
            return Ok(None);
        };
        *seq = reply.seq.wrapping_add(1);
        let mut password = reply.payload.to_vec();
        if password.last() == Some(&0) {
            password.pop();
        }
        outcome = match String::from_utf8(password) {
            Ok(password) => shared.directory.login(&response.user, &password).await,
            Err(_) => Err(LoginError::Invalid),
        };
    }
    match outcome {
        Ok(identity) => Ok(Some(identity)),
        Err(LoginError::Invalid) => {
            let message = format!(
                "Access denied for user '{}' (using password: {}){}",
                response.user,
                if response.auth.is_empty() {
                    "NO"
                } else {
                    "YES"
                },
                if clear_allowed {
                    ""
                } else {
                    "; rectus: passwords need TLS (--ssl), or log in with a static token"
                }
            );
            let out = protocol::err(1045, "28000", &message);
            packet::write(&mut client.stream, *seq, &out).await?;
            Ok(None)
        }
        Err(LoginError::Unavailable(e)) => {
            tracing::warn!(error = %e, "MySQL wire login: the database cannot be reached");
            let out = protocol::err(1105, "HY000", UNREACHABLE);
            packet::write(&mut client.stream, *seq, &out).await?;
            Ok(None)
        }
        Err(LoginError::Internal(e)) => {
            tracing::warn!(error = %e, "MySQL wire login failed");
            let out = protocol::err(1105, "HY000", "rectus: login failed");
            packet::write(&mut client.stream, *seq, &out).await?;
            Ok(None)
        }
    }
}

/// Admins: client and database talk directly, bytes as they are, except that the client
/// may not change the upstream user (`COM_CHANGE_USER`), and the session ends when its
/// user is no longer an active admin. The connection is closed after, not pooled: an admin
/// may leave any session state behind. `first`: the first packet of a command read (and
/// checked) before ([`super::admin_reads`]), sent first.
async fn passthrough<D: Directory>(
    client: Client,
    leased: Leased,
    first: Option<BytesMut>,
    shared: &Shared<D>,
    (identity, mut access): (&Identity, crate::guarded::SessionAccess),
) -> std::io::Result<()> {
    let Leased { upstream, .. } = leased;
    let mut up_reader = upstream.reader;
    let mut up_writer = upstream.writer;
    let (stream, buffered) = client.into_parts();
    let (client_read, mut client_write) = tokio::io::split(stream);
    let mut client_reader = PacketReader::resume(client_read, buffered);
    let requests = async {
        let mut out = BytesMut::new();
        let mut continued = false;
        let mut first = first;
        loop {
            let part = match first.take() {
                Some(part) => part,
                None => match client_reader.part().await? {
                    Some(part) => part,
                    None => return Ok::<_, std::io::Error>(()),
                },
            };
            let starts_command = !continued && part[3] == 0;
            continued = part.len() - 4 == MAX_PART;
            if starts_command && part.get(4) == Some(&command::CHANGE_USER) {
                return Err(packet::invalid("COM_CHANGE_USER through rectus"));
            }
            if starts_command && !access.still_admin(&*shared.directory, identity).await {
                return Err(packet::invalid("the user is no longer an active admin"));
            }
            out.extend_from_slice(&part);
            if client_reader.buffered() == 0 {
                up_writer.write_all(&out).await?;
                out.clear();
            }
        }
    };
    let responses = async {
        let mut out = BytesMut::with_capacity(64 * 1024);
        loop {
            let Some(part) = up_reader.part().await? else {
                return Ok::<_, std::io::Error>(());
            };
            out.extend_from_slice(&part);
            if up_reader.buffered() == 0 {
                client_write.write_all(&out).await?;
                client_write.flush().await?;
                out.clear();
            }
        }
    };
    tokio::select! {
        r = requests => r,
        r = responses => r,
    }
}

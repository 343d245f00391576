//! An admin session's reads on the shared connections ([`super::shared`]), as on the
//! PostgreSQL endpoint: admins are passed through as they are, but as long as everything a
//! session has sent is a plain read as the guard reads it (one query, functions from the
//! side-effect-free list, no session or user variable), it holds nothing of its own a read
//! could see: no setting changed, no transaction, no temporary table, no lock, no other
//! database. Until then its commands are served one at a time: a read goes to a shared
//! connection as `EXECUTE … USING` of its own text (printed for the guarded sessions' mode,
//! which the server's own mode must read alike), pipelined with other sessions' reads; the
//! first command of any other kind starts the passthrough.
//!
//! An answer with an error or a warning is not passed on: the read runs again on the
//! session's own connection, which answers (and keeps the warnings for `SHOW WARNINGS`) as
//! a direct connection would.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::Shared;
use super::commands::relay_answer;
use super::packet::{self, MAX_PART};
use super::protocol::{Expect, command};
use super::session::Client;
use super::shared::{LineKey, Read, renumber};
use super::upstream::{ServerInfo, Upstream, charset_name};
use crate::guarded::{Guarding, SessionAccess};
use crate::{Directory, Identity};

/// What an admin session is, for its reads.
pub(super) struct Admin<'a> {
    pub identity: &'a Identity,
    pub info: &'a ServerInfo,
    /// The client's handshake character set.
    pub charset: u8,
}

/// Whether an admin session's reads can be shared at all: shared reads are on, the server
/// runs texts' literals as parameters, and reads text as the guard does.
pub(super) fn applies<D>(shared: &Shared<D>, info: &ServerInfo) -> bool {
    shared.reads.is_some() && info.binds_text_reads && info.reads_as_guard
}

/// Serves the session's commands while it has only read. `Ok(Some(part))`: the first
/// packet of a command that is not a plain read, for the passthrough to send on; `Ok(None)`:
/// the client left.
pub(super) async fn serve<D: Directory>(
    client: &mut Client,
    upstream: &mut Upstream,
    shared: &Shared<D>,
    access: &mut SessionAccess,
    admin: &Admin<'_>,
) -> std::io::Result<Option<BytesMut>> {
    let key = LineKey::of(upstream, charset_name(admin.charset));
    let guarding = Guarding {
        cache: &shared.guarded,
        templates: &shared.templates,
        schema_name: &shared.config.upstream.database,
        dialect: rectus_policies::Dialect::MySql,
    };
    loop {
        let Some(part) = client.part().await? else {
            return Ok(None);
        };
        if !access.still_admin(&*shared.directory, admin.identity).await {
            return Err(packet::invalid("the user is no longer an active admin"));
        }
        let whole = part.len() - 4 < MAX_PART;
        // A ping (connection pools' check) changes nothing of the session.
        if whole && part.get(4..) == Some(&[command::PING][..]) {
            own_answer(client, upstream, &part, Expect::One).await?;
            continue;
        }
        if !whole || part.get(4) != Some(&command::QUERY) {
            return Ok(Some(part));
        }
        let Ok(sql) = std::str::from_utf8(&part[5..]) else {
            return Ok(Some(part));
        };
        let directory = &*shared.directory;
        let Some(bound) = guarding
            .admin_read(directory, access, admin.identity, sql)
            .await
        else {
            return Ok(Some(part));
        };
        let answer = match (&shared.reads, upstream.autocommit_idle()) {
            (Some(reads), true) => reads.run(key, admin.info, Read::Text(bound)).await,
            _ => None,
        };
        match answer {
            Some(mut answer) if !answer.warned => {
                renumber(&mut answer.packets, part[3].wrapping_add(1));
                client.stream.write_all(&answer.packets).await?;
                client.stream.flush().await?;
            }
            _ => own_answer(client, upstream, &part, Expect::Results).await?,
        }
    }
}

/// Runs a command on the session's own connection and passes its answer on as it comes,
/// warnings and all.
async fn own_answer(
    client: &mut Client,
    upstream: &mut Upstream,
    command: &[u8],
    expect: Expect,
) -> std::io::Result<()> {
    upstream.writer.write_all(command).await?;
    let seq = command[3].wrapping_add(1);
    relay_answer(&mut client.stream, upstream, expect, seq, false)
        .await
        .map(|_| ())
}

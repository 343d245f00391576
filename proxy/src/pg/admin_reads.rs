//! An admin session's reads on the shared connections ([`super::shared`]). Admin sessions
//! are passed through as they are, but as long as everything a session has sent is a
//! plain read as the guard reads it (one query of user tables, functions from the
//! side-effect-free list), it holds no state of its own a read could see: no setting
//! changed, no transaction, no temporary table, no sequence or lock used. Its reads then
//! give the same rows on a shared connection as on its own, pipelined with other sessions'
//! reads, which saves the database a wake-up per read. The first statement of any other
//! kind ends that for the session: from then on everything goes to its own connection.
//!
//! A read runs on the shared connection as the admin wrote it (a text's literals bound as
//! parameters where they read the same); no rewrite, so `*` is every column the database
//! has. An answer with an error is not passed on: the read runs again on the session's own
//! connection, which answers exactly as a direct connection would.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::simplequery::Query;

use super::Shared;
use super::frame::{self, cstr};
use super::shared::{Answer, Via, one_execution, run_execution, try_text_read};
use super::statements::{SessionAccess, admin_text_read, guarded};
use crate::{Directory, Identity};

/// A session that has only read so far: its protocol-level statements (text and parameter
/// types, by name), and the settings of the shared connections its reads go to.
pub(super) struct AdminReads {
    statements: HashMap<String, (Arc<str>, Vec<u32>)>,
    settings: String,
}

pub(super) enum Outcome {
    /// The answer for the client, from a shared connection.
    Answered(BytesMut),
    /// To the session's own connection; the session still has only read.
    Forward,
    /// To the session's own connection, and the session may hold state from now on.
    Stateful,
}

impl AdminReads {
    /// For a session started with `settings`. Its shared connections read strings as its
    /// own connection does, whatever the database's default was when they opened.
    pub(super) fn new(settings: &str) -> AdminReads {
        let conforming = "SET standard_conforming_strings = on";
        AdminReads {
            statements: HashMap::new(),
            settings: match settings {
                "" => conforming.to_string(),
                _ => format!("{settings}; {conforming}"),
            },
        }
    }

    /// Where the client's `run` of frames goes. `idle`: nothing of the session's is waiting
    /// for an answer and no extended-protocol run is open; with what the client's cancel
    /// requests wake. What rectus cannot read (text that is not UTF-8, say) is the database's to answer, on the session's own connection.
    pub(super) async fn route<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        run: &[u8],
        session: (&mut SessionAccess, &Identity),
        wait: (bool, &tokio::sync::Notify),
    ) -> Outcome {
        self.routed(shared, run, session, wait)
            .await
            .unwrap_or(Outcome::Stateful)
    }

    async fn routed<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        run: &[u8],
        (access, identity): (&mut SessionAccess, &Identity),
        (idle, cancelled): (bool, &tokio::sync::Notify),
    ) -> std::io::Result<Outcome> {
        let via = Via {
            settings: self.settings.as_str(),
            cancelled,
        };
        if idle && let Some(one) = one_execution(run) {
            let Some((text, types)) = self.statements.get(one.statement) else {
                return Ok(Outcome::Forward);
            };
            let answer = run_execution(shared, &one, text.clone(), types.clone(), via).await;
            return Ok(answered(answer));
        }
        let frames: Vec<(u8, &[u8])> = frame::Frames::new(run).collect();
        if idle && let [(b'Q', bytes)] = frames.as_slice() {
            let query: Query = frame::decode(&mut BytesMut::from(*bytes))?;
            self.statements.remove("");
            return Ok(
                match admin_text_read(shared, access, identity, &query.query).await {
                    Some(bound) => answered(try_text_read(shared, &bound, via).await),
                    None => Outcome::Stateful,
                },
            );
        }
        for (kind, bytes) in frames {
            match kind {
                b'P' => {
                    let parse: Parse = frame::decode(&mut BytesMut::from(bytes))?;
                    let name = parse.name.unwrap_or_default();
                    self.statements.remove(&name);
                    if !is_read(shared, access, identity, &parse.query).await {
                        return Ok(Outcome::Stateful);
                    }
                    self.statements
                        .insert(name, (parse.query.as_str().into(), parse.type_oids));
                }
                b'Q' => {
                    let query: Query = frame::decode(&mut BytesMut::from(bytes))?;
                    // A query ends the unnamed statement.
                    self.statements.remove("");
                    if admin_text_read(shared, access, identity, &query.query)
                        .await
                        .is_none()
                    {
                        return Ok(Outcome::Stateful);
                    }
                }
                b'C' => {
                    if bytes.get(5) == Some(&b'S') {
                        let mut name = BytesMut::from(&bytes[6..]);
                        self.statements.remove(&cstr(&mut name).unwrap_or_default());
                    }
                }
                b'B' | b'D' | b'E' | b'S' | b'H' | b'X' => {}
                // The function call message, COPY data: whatever it does is the session's.
                _ => return Ok(Outcome::Stateful),
            }
        }
        Ok(Outcome::Forward)
    }
}

/// A shared answer with an error in it is not passed on: run on the session's own
/// connection, the read answers with the error a direct connection gives (a statement the
/// session's Parse failed to prepare is unknown there, for one).
fn answered(answer: Option<Answer>) -> Outcome {
    match answer {
        Some(Answer::Database(answer)) if !has_error(&answer) => Outcome::Answered(answer),
        Some(Answer::Cancelled(answer)) => Outcome::Answered(answer),
        _ => Outcome::Forward,
    }
}

fn has_error(answer: &[u8]) -> bool {
    let mut error = false;
    frame::each_frame(answer, |kind, _| error |= kind == b'E');
    error
}

/// Whether the guard reads `sql` as one plain read under the admin's permissions.
async fn is_read<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
) -> bool {
    use rectus_policies::guard::StatementKind;
    matches!(
        guarded(shared, access, identity, sql, true).await.as_deref(),
        Ok([g]) if g.kind == StatementKind::Read && g.deferred.is_none()
    )
}

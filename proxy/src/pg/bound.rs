//! Reads that guarded clients send as text (the simple protocol) run upstream as named
//! prepared statements: the guard's rewrite of a read is longer than the client's text, and
//! PostgreSQL would parse and plan it for every query. The read's literals that the
//! database reads the same as parameters become `$n` ([`Bound`]); the statement is prepared
//! once per upstream session and each query is a Bind/Describe/Execute/Sync of it. The
//! answer is the simple protocol's once the extended protocol's own acknowledgements
//! (ParseComplete, BindComplete, CloseComplete) are taken out.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use rectus_policies::guard::template::Bound;

use super::frame::typed;

/// Statement names no client gets: a guarded client's Parse with this prefix is refused.
pub(super) const PREFIX: &str = "\u{1}rectus_";

/// How many statements one upstream session keeps; the least used is closed for a new one.
const KEPT: usize = 256;

/// SQLSTATE `invalid_sql_statement_name`: a statement this session thought prepared is gone
/// (the client ran `DEALLOCATE ALL` or closed it by name).
const GONE: &str = "26000";

struct Entry {
    name: String,
    /// The database acknowledged the Parse.
    ready: bool,
    used: u64,
}

/// The statements prepared on the leased upstream session, by rewritten text.
#[derive(Default)]
pub(super) struct UpstreamStatements {
    by_text: HashMap<String, Entry>,
    named: u64,
    clock: u64,
}

/// A response batch that answers a translated read.
pub(super) struct Translated {
    pub batch: u64,
    pub name: String,
    /// Its Parse is not acknowledged yet.
    pub parsing: bool,
}

impl UpstreamStatements {
    /// The frames that run `bound` (ending with Sync) and the statement they run, or `None`
    /// when the text should go as a simple query (its statement is still being prepared,
    /// or the session is full of statements being prepared).
    pub(super) fn frames(&mut self, bound: &Bound, out: &mut BytesMut) -> Option<Translated> {
        let fits = i16::try_from(bound.values.len()).is_ok()
            && bound.values.iter().all(|v| i32::try_from(v.len()).is_ok());
        if !fits || bound.types.len() != bound.values.len() {
            return None;
        }
        self.clock += 1;
        let clock = self.clock;
        if let Some(entry) = self.by_text.get_mut(&bound.sql) {
            if !entry.ready {
                return None;
            }
            entry.used = clock;
            let name = entry.name.clone();
            run(&name, bound, out);
            return Some(Translated {
                batch: 0,
                name,
                parsing: false,
            });
        }
        if self.by_text.len() >= KEPT {
            let oldest = self
                .by_text
                .iter()
                .filter(|(_, e)| e.ready)
                .min_by_key(|(_, e)| e.used)
                .map(|(text, _)| text.clone())?;
            if let Some(entry) = self.by_text.remove(&oldest) {
                let mut body = BytesMut::new();
                body.put_u8(b'S');
                put_cstr(&mut body, &entry.name);
                out.extend_from_slice(&typed(b'C', &body));
            }
        }
        self.named += 1;
        let name = format!("{PREFIX}{}", self.named);
        let mut body = BytesMut::with_capacity(bound.sql.len() + 32);
        put_cstr(&mut body, &name);
        put_cstr(&mut body, &bound.sql);
        body.put_i16(bound.types.len() as i16);
        for oid in &bound.types {
            body.put_u32(*oid);
        }
        out.extend_from_slice(&typed(b'P', &body));
        run(&name, bound, out);
        self.by_text.insert(
            bound.sql.clone(),
            Entry {
                name: name.clone(),
                ready: false,
                used: clock,
            },
        );
        Some(Translated {
            batch: 0,
            name,
            parsing: true,
        })
    }

    /// The database acknowledged the Parse of `name`.
    pub(super) fn ready(&mut self, name: &str) {
        if let Some(entry) = self.by_text.values_mut().find(|e| e.name == name) {
            entry.ready = true;
        }
    }

    /// `name` does not exist upstream (its Parse failed, or it was dropped): the next read
    /// of its text prepares it again under a new name.
    pub(super) fn forget(&mut self, name: &str) {
        self.by_text.retain(|_, e| e.name != name);
    }

    /// After `DEALLOCATE`: none of them may exist any more.
    pub(super) fn forget_all(&mut self) {
        self.by_text.clear();
    }
}

/// Whether an ErrorResponse answering a translated read means its statement is gone.
pub(super) fn statement_gone(error_frame: &[u8]) -> bool {
    let mut fields = error_frame.get(5..).unwrap_or_default();
    while let Some((&kind, rest)) = fields.split_first() {
        if kind == 0 {
            break;
        }
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        if kind == b'C' {
            return &rest[..end] == GONE.as_bytes();
        }
        fields = rest.get(end + 1..).unwrap_or_default();
    }
    false
}

/// Bind (unnamed portal, text parameters and results), Describe of the portal (the simple
/// protocol's RowDescription), Execute of all rows, Sync. Counts and lengths were checked to
/// fit their fields.
fn run(name: &str, bound: &Bound, out: &mut BytesMut) {
    let mut body = BytesMut::with_capacity(name.len() + 16 + bound.values.len() * 16);
    put_cstr(&mut body, "");
    put_cstr(&mut body, name);
    body.put_i16(0);
    body.put_i16(bound.values.len() as i16);
    for value in &bound.values {
        body.put_i32(value.len() as i32);
        body.put_slice(value.as_bytes());
    }
    body.put_i16(0);
    out.extend_from_slice(&typed(b'B', &body));
    out.extend_from_slice(&typed(b'D', b"P\0"));
    out.extend_from_slice(&typed(b'E', b"\0\0\0\0\0"));
    out.extend_from_slice(&typed(b'S', b""));
}

fn put_cstr(body: &mut BytesMut, s: &str) {
    body.put_slice(s.as_bytes());
    body.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(sql: &str) -> Bound {
        Bound {
            sql: sql.into(),
            types: vec![23],
            values: vec!["5".into()],
        }
    }

    fn kinds(out: &[u8]) -> Vec<u8> {
        let mut kinds = Vec::new();
        super::super::frame::each_frame(out, |kind, _| kinds.push(kind));
        kinds
    }

    #[test]
    fn prepared_once_run_after_its_parse_is_acknowledged() {
        let mut statements = UpstreamStatements::default();
        let read = bound("SELECT 1 WHERE 1 = $1");
        let mut out = BytesMut::new();
        let first = statements.frames(&read, &mut out).expect("prepared");
        assert!(first.parsing);
        assert_eq!(kinds(&out), b"PBDES");
        // Until the database acknowledges the Parse, the text goes as it is.
        let mut out = BytesMut::new();
        assert!(statements.frames(&read, &mut out).is_none());
        assert!(out.is_empty());
        statements.ready(&first.name);
        let second = statements.frames(&read, &mut out).expect("run");
        assert_eq!(second.name, first.name);
        assert!(!second.parsing);
        assert_eq!(kinds(&out), b"BDES");
        // Gone (DEALLOCATE, a failed Parse): prepared again under a new name.
        statements.forget(&first.name);
        let mut out = BytesMut::new();
        let third = statements.frames(&read, &mut out).expect("prepared again");
        assert_ne!(third.name, first.name);
        assert_eq!(kinds(&out), b"PBDES");
    }

    #[test]
    fn a_full_session_closes_its_least_used_statement() {
        let mut statements = UpstreamStatements::default();
        let mut names = Vec::new();
        for i in 0..KEPT {
            let mut out = BytesMut::new();
            let run = statements
                .frames(&bound(&format!("SELECT {i} WHERE 1 = $1")), &mut out)
                .expect("prepared");
            statements.ready(&run.name);
            names.push(run.name);
        }
        // The first is used again, so the second is the least used.
        let mut out = BytesMut::new();
        statements.frames(&bound("SELECT 0 WHERE 1 = $1"), &mut out);
        let mut out = BytesMut::new();
        statements
            .frames(&bound("SELECT new WHERE 1 = $1"), &mut out)
            .expect("prepared");
        assert_eq!(kinds(&out), b"CPBDES");
        let mut closed = Vec::new();
        super::super::frame::each_frame(&out, |kind, frame| {
            if kind == b'C' {
                closed = frame[6..frame.len() - 1].to_vec();
            }
        });
        assert_eq!(closed, names[1].as_bytes());
    }

    #[test]
    fn only_a_missing_statement_counts_as_gone() {
        let error = |code: &str| {
            let mut body = Vec::new();
            for (kind, value) in [(b'S', "ERROR"), (b'C', code), (b'M', "message")] {
                body.push(kind);
                body.extend_from_slice(value.as_bytes());
                body.push(0);
            }
            body.push(0);
            typed(b'E', &body).to_vec()
        };
        assert!(statement_gone(&error("26000")));
        assert!(!statement_gone(&error("22P02")));
        assert!(!statement_gone(&error("25P02")));
    }
}

//! Reads that guarded clients send as text (`COM_QUERY`) run upstream, on MariaDB, as
//! SQL-level prepared statements: the guard's rewrite holds the row filter in a derived
//! table, which MariaDB sets up and merges again for every text query (about a quarter of
//! its work on a point select) but only once for a prepared statement. The read's literals
//! that read the same as parameters become `?` ([`Bound`]); the statement is prepared once
//! per upstream connection with `PREPARE`, and each query is `EXECUTE … USING` with the
//! literals, whose answer is a text result set like the query's own. MySQL's `EXECUTE`
//! takes only user variables, so there texts go as they are.
//!
//! Guarded clients cannot `PREPARE`, `EXECUTE` or `DEALLOCATE` by SQL at all (the guard
//! refuses them), so these names are rectus's alone; `COM_RESET_CONNECTION`, which every
//! connection gets before it is pooled again, drops them.

use std::collections::HashMap;

use rectus_policies::guard::template::Bound;

/// How many statements one upstream connection keeps; the least used makes room for a new
/// one (MariaDB's `max_prepared_stmt_count`, 16382 by default, is for the whole server).
const KEPT: usize = 256;

struct Entry {
    name: String,
    used: u64,
}

/// The statements prepared on one upstream connection, by rewritten text.
#[derive(Default)]
pub(crate) struct TextStatements {
    by_text: HashMap<String, Entry>,
    /// Names of statements no longer run (prepared before a `SET`), taken again first.
    free: Vec<String>,
    named: u64,
    clock: u64,
}

/// What runs a bound read: `prepare` first when its statement is not there yet.
pub(super) struct Run {
    pub prepare: Option<String>,
    pub execute: String,
}

impl TextStatements {
    /// The statements that run `bound`. A new statement takes the name of the least used
    /// when the connection is full (`PREPARE` of a name replaces its statement).
    pub(super) fn run(&mut self, bound: &Bound) -> Run {
        self.clock += 1;
        let clock = self.clock;
        if let Some(entry) = self.by_text.get_mut(&bound.sql) {
            entry.used = clock;
            return Run {
                prepare: None,
                execute: execute(&entry.name, &bound.values),
            };
        }
        let reused = if self.by_text.len() >= KEPT {
            let oldest = self
                .by_text
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(text, _)| text.clone());
            oldest.and_then(|text| self.by_text.remove(&text))
        } else {
            None
        };
        let name = match reused.map(|e| e.name).or_else(|| self.free.pop()) {
            Some(name) => name,
            None => {
                self.named += 1;
                format!("rectus_{}", self.named)
            }
        };
        let run = Run {
            prepare: Some(prepare(&name, &bound.sql)),
            execute: execute(&name, &bound.values),
        };
        self.by_text.insert(
            bound.sql.clone(),
            Entry {
                name: name.clone(),
                used: clock,
            },
        );
        run
    }

    /// The statement of `bound` could not be prepared: its text goes as it is, and its name
    /// (which a failed `PREPARE` leaves holding nothing) is free again.
    pub(super) fn forget(&mut self, bound: &Bound) {
        if let Some(entry) = self.by_text.remove(&bound.sql) {
            self.free.push(entry.name);
        }
    }

    /// After the connection was reset (none of them exists any more), or after a `SET`:
    /// MariaDB keeps a statement as it read it under the `sql_mode` and collation of its
    /// `PREPARE`, where a text query is read under the session's current ones, so each read
    /// is prepared again (under a name already used: `PREPARE` replaces the statement).
    pub(crate) fn clear(&mut self) {
        self.free
            .extend(self.by_text.drain().map(|(_, entry)| entry.name));
    }
}

/// `PREPARE name FROM '…'` for a statement printed for guarded sessions, whose
/// `NO_BACKSLASH_ESCAPES` leaves doubling the quote the only escape.
fn prepare(name: &str, sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + name.len() + 24);
    out.push_str("PREPARE ");
    out.push_str(name);
    out.push_str(" FROM '");
    out.push_str(&sql.replace('\'', "''"));
    out.push('\'');
    out
}

fn execute(name: &str, values: &[String]) -> String {
    let mut out =
        String::with_capacity(name.len() + 16 + values.iter().map(String::len).sum::<usize>());
    out.push_str("EXECUTE ");
    out.push_str(name);
    out.push_str(" USING ");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(value);
    }
    out
}

/// Whether the server takes expressions in `EXECUTE … USING` (MariaDB 10.2.3 and later).
pub(super) fn executes_literals(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    // MariaDB 10 and later announce themselves as `5.5.5-10.11.6-MariaDB…`.
    let own = version.strip_prefix("5.5.5-").unwrap_or(version);
    let numbers: Vec<u32> = own
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    numbers.as_slice() >= [10, 2, 3].as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(sql: &str, values: &[&str]) -> Bound {
        Bound {
            sql: sql.into(),
            types: vec![0; values.len()],
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn a_shape_is_prepared_once_and_the_least_used_makes_room() {
        let mut kept = TextStatements::default();
        let first = kept.run(&bound(
            "SELECT a FROM t WHERE b = 'it''s' AND c = ?",
            &["5"],
        ));
        assert_eq!(
            first.prepare.as_deref(),
            Some("PREPARE rectus_1 FROM 'SELECT a FROM t WHERE b = ''it''''s'' AND c = ?'")
        );
        assert_eq!(first.execute, "EXECUTE rectus_1 USING 5");
        let again = kept.run(&bound(
            "SELECT a FROM t WHERE b = 'it''s' AND c = ?",
            &["'x'"],
        ));
        assert!(again.prepare.is_none());
        assert_eq!(again.execute, "EXECUTE rectus_1 USING 'x'");
        for n in 2..=KEPT {
            let run = kept.run(&bound(&format!("SELECT {n} FROM t WHERE c = ?"), &["1"]));
            assert!(run.prepare.is_some());
        }
        // rectus_1 was used last before the others: rectus_2 is the least used.
        kept.run(&bound(
            "SELECT a FROM t WHERE b = 'it''s' AND c = ?",
            &["1"],
        ));
        let full = kept.run(&bound("SELECT x FROM t WHERE c = ? AND d = ?", &["1", "2"]));
        assert!(
            full.prepare
                .as_deref()
                .is_some_and(|p| p.starts_with("PREPARE rectus_2 FROM"))
        );
        assert_eq!(full.execute, "EXECUTE rectus_2 USING 1, 2");
        assert_eq!(kept.by_text.len(), KEPT);
        kept.clear();
        let after = kept.run(&bound(
            "SELECT a FROM t WHERE b = 'it''s' AND c = ?",
            &["5"],
        ));
        let prepare = after.prepare.expect("prepared again after a reset");
        assert!(
            prepare.starts_with("PREPARE rectus_") && kept.named == KEPT as u64,
            "under a name already used: {prepare}"
        );
    }

    #[test]
    fn only_mariadb_takes_literals_in_execute() {
        assert!(executes_literals("5.5.5-10.11.6-MariaDB-0+deb12u1"));
        assert!(executes_literals("11.4.2-MariaDB"));
        assert!(executes_literals("10.2.3-MariaDB"));
        assert!(!executes_literals("10.2.2-MariaDB"));
        assert!(!executes_literals("5.5.5-10.1.48-MariaDB"));
        assert!(!executes_literals("8.0.36"));
        assert!(!executes_literals("8.4.0-MySQL"));
    }
}

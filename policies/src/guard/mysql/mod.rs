//! What the guard does differently for MySQL and MariaDB: executable comments refused
//! before parsing, MySQL's functions, types and system variables, its session statements,
//! `SHOW`/`DESCRIBE`/`USE` answered from the schema and permissions, and the last pass
//! over a rewritten statement before it is printed.
//!
//! Guarded statements are printed for a session whose `sql_mode` has
//! `NO_BACKSLASH_ESCAPES` and no `ANSI_QUOTES` (the wire endpoint sets it): string
//! literals are printed with their quotes doubled and every other character as it is, so
//! the server reads exactly the value the guard parsed.

pub(super) mod catalog;
pub(super) mod functions;
pub(super) mod lexical;
pub(super) mod print;
pub(super) mod session;

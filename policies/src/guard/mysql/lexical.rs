//! MySQL's executable comments (`/*! ... */`, MariaDB's `/*M! ... */`) are SQL the server
//! runs and most tools treat as a comment. Tools like `mysqldump` wrap whole statements in
//! them (`/*!40101 SET NAMES utf8mb4 */`), so the ones every supported server runs are read
//! as the server reads them, their body in place of the comment, before the text is parsed
//! and guarded like any other; the rest are refused, whatever the parser would make of them.

use std::borrow::Cow;

use super::super::{GuardError, GuardResult};

/// The highest version an executable comment may name: MySQL 5.7 and 8 and every MariaDB
/// (whose versions compare as 10xxyy) run the body of `/*!NNNNN ... */` when NNNNN is at
/// most their version, so up to this one the body runs everywhere rectus is used.
const RUN_EVERYWHERE: u32 = 50700;

/// `sql` read the way MySQL reads it (quotes with backslash escapes, `#` and `-- ` line
/// comments, block comments), with each executable comment that every supported server
/// runs replaced by its body; other executable comments, and ones whose body holds a
/// comment or does not end, are refused. In strings, `\a` and `\f` become the letter
/// alone, which is what they are to MySQL (the parser would read C's bell and form feed).
pub fn unwrap(sql: &str) -> GuardResult<Cow<'_, str>> {
    let bytes = sql.as_bytes();
    let mut out: Option<String> = None;
    // Where the text not yet copied to `out` starts.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                let end = skip_quoted(bytes, i + 1, quote);
                let mut at = i + 1;
                while at + 1 < end {
                    if bytes[at] != b'\\' {
                        at += 1;
                        continue;
                    }
                    if matches!(bytes[at + 1], b'a' | b'f') {
                        let text = out.get_or_insert_with(|| String::with_capacity(sql.len()));
                        text.push_str(&sql[copied..at]);
                        copied = at + 1;
                    }
                    at += 2;
                }
                i = end;
            }
            b'`' => i = skip_quoted(bytes, i + 1, b'`'),
            b'#' => i = skip_line(bytes, i),
            b'-' if line_comment(bytes, i) => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let body = &bytes[i + 2..];
                if body.starts_with(b"M!") || body.starts_with(b"m!") {
                    return Err(refused());
                }
                if body.starts_with(b"!") {
                    let (start, end) = executable(bytes, i + 3)?;
                    let text = out.get_or_insert_with(|| String::with_capacity(sql.len()));
                    text.push_str(&sql[copied..i]);
                    // Spaces keep the body's first and last tokens apart from their neighbours,
                    // as the comment markers did.
                    text.push(' ');
                    text.push_str(&sql[start..end]);
                    text.push(' ');
                    i = end + 2;
                    copied = i;
                    continue;
                }
                i = match find(body, b"*/") {
                    Some(end) => i + 2 + end + 2,
                    None => bytes.len(),
                };
            }
            _ => i += 1,
        }
    }
    Ok(match out {
        None => Cow::Borrowed(sql),
        Some(mut text) => {
            text.push_str(&sql[copied..]);
            Cow::Owned(text)
        }
    })
}

/// Whether `--` at `i` starts a comment: MySQL wants a space or control character after it.
fn line_comment(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1) == Some(&b'-')
        && bytes
            .get(i + 2)
            .is_none_or(|c| c.is_ascii_whitespace() || *c < 32)
}

/// The body of the executable comment whose text starts at `i` (after `/*!`): its start
/// and the index of its closing `*/`. The body is read as SQL, so a `*/` inside quotes does
/// not close it; a comment inside it is refused rather than guessed at.
fn executable(bytes: &[u8], mut i: usize) -> GuardResult<(usize, usize)> {
    let digits = bytes[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        let version = std::str::from_utf8(&bytes[i..i + digits])
            .ok()
            .and_then(|v| v.parse::<u32>().ok());
        // MySQL reads five digits as the version and MariaDB six, so only five mean the same
        // to both.
        if digits != 5 || version.is_none_or(|v| v > RUN_EVERYWHERE) {
            return Err(refused());
        }
        i += digits;
    }
    let start = i;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => i = skip_quoted(bytes, i + 1, quote),
            b'*' if bytes.get(i + 1) == Some(&b'/') => return Ok((start, i)),
            b'#' => return Err(refused()),
            b'/' if bytes.get(i + 1) == Some(&b'*') => return Err(refused()),
            b'-' if line_comment(bytes, i) => return Err(refused()),
            _ => i += 1,
        }
    }
    Err(refused())
}

fn refused() -> GuardError {
    GuardError::not_allowed(
        "an executable comment (/*! ... */) other than /*!NNNNN ... */ up to version 5.7 without comments inside",
    )
}

/// The index after the closing quote (a doubled quote or, except in backquotes, a
/// backslash escapes the next character).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_line(bytes: &[u8], i: usize) -> usize {
    match bytes[i..].iter().position(|&c| c == b'\n') {
        Some(end) => i + end + 1,
        None => bytes.len(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::unwrap;

    #[test]
    fn executable_comments_run_everywhere_are_read_as_their_body() {
        for (sql, read) in [
            ("/*!40100 SET @@SQL_MODE='' */", "SET @@SQL_MODE=''"),
            (
                "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            ),
            ("select 1 /*!+2*/", "select 1 +2"),
            ("select/*!50700'*/'*/x", "select '*/' x"),
            (
                "select '/*!90000 x */' from t",
                "select '/*!90000 x */' from t",
            ),
            ("select 1 # /*!90000 x */", "select 1 # /*!90000 x */"),
            ("select 1 /* plain */", "select 1 /* plain */"),
        ] {
            let unwrapped = unwrap(sql).unwrap();
            let words: Vec<&str> = unwrapped.split_whitespace().collect();
            assert_eq!(words.join(" "), read, "{sql}");
        }
    }

    #[test]
    fn other_executable_comments_are_refused_wherever_mysql_would_run_them() {
        for sql in [
            "select /*!50701 secret */ id from t",
            "select /*!80000 secret */ id from t",
            "select /*!400000 x */ id from t",
            "select /*!4010 x */ id from t",
            "select /*M!100000 secret */ id from t",
            "select '\\'' /*!90000 x */",
            "select /*!40100 1 /* inner */ */",
            "select /*!40100 1 # x */",
            "select /*!40100 1 -- x */",
            "select /*!40100 1",
            "select /*!40100 'x */",
        ] {
            assert!(unwrap(sql).is_err(), "{sql}");
        }
        // `--x` is not a comment in MySQL: the comment after it is.
        assert!(unwrap("select 1 --x /*!90000 y */").is_err());
    }

    #[test]
    fn escapes_mysql_reads_as_the_letter_alone_lose_their_backslash() {
        for (sql, read) in [
            (
                r#"select 'dr\aft', "\f\n\\a""#,
                r#"select 'draft', "f\n\\a""#,
            ),
            (
                r"select `\a` from t where x = 'a\'\a'",
                r"select `\a` from t where x = 'a\'a'",
            ),
        ] {
            assert_eq!(unwrap(sql).unwrap(), read, "{sql}");
        }
        assert!(matches!(unwrap(r"select 'a\b\n'"), Ok(Cow::Borrowed(_))));
    }
}

//! MySQL's executable comments (`/*! ... */`, MariaDB's `/*M! ... */`) are SQL the server
//! runs and most tools treat as a comment; a statement holding one is refused before it is
//! parsed, whatever the parser would make of it.

use super::super::{GuardError, GuardResult};

/// Scans `sql` the way MySQL reads it (quotes with backslash escapes, `#` and `-- ` line
/// comments, block comments) and refuses executable comments.
pub fn check(sql: &str) -> GuardResult<()> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => i = skip_quoted(bytes, i + 1, quote),
            b'#' => i = skip_line(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes
                    .get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || *c < 32) =>
            {
                i = skip_line(bytes, i)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let body = &bytes[i + 2..];
                if body.starts_with(b"!") || body.starts_with(b"M!") || body.starts_with(b"m!") {
                    return Err(GuardError::not_allowed(
                        "an executable comment (/*! ... */)",
                    ));
                }
                i = match find(body, b"*/") {
                    Some(end) => i + 2 + end + 2,
                    None => bytes.len(),
                };
            }
            _ => i += 1,
        }
    }
    Ok(())
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
    use super::check;

    #[test]
    fn executable_comments_are_refused_wherever_mysql_would_run_them() {
        for sql in [
            "select /*!50000 secret */ id from t",
            "select /*M!100000 secret */ id from t",
            "select 1 /*!*/",
            "select '\\'' /*! x */",
        ] {
            assert!(check(sql).is_err(), "{sql}");
        }
        for sql in [
            "select '/*!50000 x */' from t",
            "select \"/*! x */\", `/*! y */`",
            "select 1 # /*! x */",
            "select 1 -- /*! x */",
            "select 1 /* plain */",
            "select 'a\\\\' /* plain */",
        ] {
            assert!(check(sql).is_ok(), "{sql}");
        }
        // `--x` is not a comment in MySQL: the comment after it is.
        assert!(check("select 1 --x /*! y */").is_err());
    }
}

//! PostgreSQL's JSON timestamps in Directus's form, after the database built the JSON.
//!
//! Directus answers a `timestamp` as `2026-12-06T16:33:24.549Z`: milliseconds always, UTC,
//! `Z`. PostgreSQL's JSON prints a `timestamptz` its own way (`…24.549123+00:00`,
//! trailing zeros dropped), and `to_char` with Directus's pattern costs about 0.4 µs per
//! value inside a statement — a fifth of a 100-row list's database time. So a read's own
//! timestamp columns are left to PostgreSQL's printing and put in Directus's form here, at
//! the keys the plan names on the answer's top-level objects. The result is what
//! `to_char((ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')` gives, infinities
//! (which it makes NULL) included.

/// `json` (one object, or an array of objects, whose values hold no objects) with the
/// string values of `keys` rewritten from PostgreSQL's JSON timestamp form to Directus's.
/// Strings that are not PostgreSQL timestamps stay as they are.
///
/// The objects being flat is what makes finding the keys by their bytes sound: a string's
/// quotes inside JSON text are escaped, so `"key"` preceded by `{`, `,` or a space and
/// followed by `:` is a key, and with no nested objects, a key of a top-level object.
pub fn directus_timestamps(json: String, keys: &[String]) -> String {
    let mut values: Vec<(usize, usize)> = Vec::new();
    for key in keys {
        key_values(&json, key, &mut values);
    }
    if values.is_empty() {
        return json;
    }
    values.sort_unstable();
    let mut out = String::with_capacity(json.len() + 4 * values.len());
    let mut copied = 0;
    for (start, end) in values {
        // Slices between ASCII quotes fall on char boundaries.
        let (Some(before), Some(inner)) = (json.get(copied..start), json.get(start + 1..end - 1))
        else {
            continue;
        };
        out.push_str(before);
        copied = start;
        let kept = out.len();
        if push_directus_token(&mut out, inner) {
            copied = end;
        } else {
            out.truncate(kept);
        }
    }
    out.push_str(json.get(copied..).unwrap_or_default());
    out
}

fn space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// Adds the spans (quotes included) of the string values of `key` in `json` to `values`.
fn key_values(json: &str, key: &str, values: &mut Vec<(usize, usize)>) {
    let text = json.as_bytes();
    let quoted = format!("\"{key}\"");
    let skip_space = |mut i: usize| {
        while text.get(i).is_some_and(|b| space(*b)) {
            i += 1;
        }
        i
    };
    for at in memchr::memmem::find_iter(text, quoted.as_bytes()) {
        let Some(&before) = at.checked_sub(1).and_then(|i| text.get(i)) else {
            continue;
        };
        if !(before == b'{' || before == b',' || space(before)) {
            continue;
        }
        let colon = skip_space(at + quoted.len());
        if text.get(colon) != Some(&b':') {
            continue;
        }
        let start = skip_space(colon + 1);
        if text.get(start) != Some(&b'"') {
            continue;
        }
        let Some(close) = text
            .get(start + 1..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        else {
            continue;
        };
        // A timestamp has nothing to escape; a string with an escape is something else.
        if text[start + 1 + close] == b'"' {
            values.push((start, start + close + 2));
        }
    }
}

/// Appends the JSON token Directus gives for a timestamp PostgreSQL printed as `text` in JSON
/// (`2026-12-06T16:33:24.549123+00:00`, `…24.5`, `…24+05:30`, `0044-…+00:00 BC`,
/// `infinity`); false, with `out` partly written, for text of another form.
fn push_directus_token(out: &mut String, text: &str) -> bool {
    utc_fast(out, text) || write_token(out, text).is_some()
}

/// The usual case, a four-digit year in a UTC session (`2026-12-06T16:33:24.549123+00:00`),
/// without parsing its numbers.
fn utc_fast(out: &mut String, text: &str) -> bool {
    let b = text.as_bytes();
    let Some(body) = b.strip_suffix(b"+00:00") else {
        return false;
    };
    if body.len() < 19 || body.len() == 20 || body.len() > 26 {
        return false;
    }
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let shape_ok = separators.iter().all(|(i, c)| body[*i] == *c)
        && digits.iter().all(|i| body[*i].is_ascii_digit())
        && (body.len() == 19 || (body[19] == b'.' && body[20..].iter().all(u8::is_ascii_digit)));
    if !shape_ok {
        return false;
    }
    out.push('"');
    out.push_str(&text[..19]);
    out.push('.');
    let fraction = text.get(20..body.len()).unwrap_or_default();
    out.push_str(fraction.get(..3).unwrap_or(fraction));
    for _ in fraction.len()..3 {
        out.push('0');
    }
    out.push_str("Z\"");
    true
}

fn write_token(out: &mut String, text: &str) -> Option<()> {
    if text == "infinity" || text == "-infinity" {
        out.push_str("null");
        return Some(());
    }
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let b = text.as_bytes();
    let year_len = b.iter().position(|c| *c == b'-')?;
    // Year (PostgreSQL's reach up to 294276), then "-MM-DDTHH:MM:SS" (15 bytes).
    if !(4..=6).contains(&year_len) || b.len() < year_len + 15 {
        return None;
    }
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        })
    };
    let punctuation = [(0, b'-'), (3, b'-'), (6, b'T'), (9, b':'), (12, b':')];
    if !punctuation
        .iter()
        .all(|(i, c)| b.get(year_len + i) == Some(c))
    {
        return None;
    }
    let year = digits(0, year_len)?;
    let month = digits(year_len + 1, 2)?;
    let day = digits(year_len + 4, 2)?;
    let hour = digits(year_len + 7, 2)?;
    let minute = digits(year_len + 10, 2)?;
    let second = digits(year_len + 13, 2)?;
    let mut i = year_len + 15;
    let mut micros = 0u32;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        micros = digits(i + 1, n)? * 10u32.pow(6 - n as u32);
        i += 1 + n;
    }
    let offset_seconds = match b.get(i) {
        None => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = digits(i + 1, 2)?;
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let minutes = digits(i + 4, 2)?;
            let seconds = match b.len() - i {
                6 => 0,
                9 if b[i + 6] == b':' => digits(i + 7, 2)?,
                _ => return None,
            };
            let total = i64::from(hours * 3600 + minutes * 60 + seconds);
            if *sign == b'+' { total } else { -total }
        }
        Some(_) => return None,
    };
    let millis = micros / 1000;
    if offset_seconds == 0 {
        out.push('"');
        out.push_str(text.get(..year_len + 15)?);
        out.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
        out.push_str("Z\"");
        return Some(());
    }
    // A session in another time zone: the same instant in UTC.
    let signed_year = if bc {
        1 - i32::try_from(year).ok()?
    } else {
        i32::try_from(year).ok()?
    };
    let local = chrono::NaiveDate::from_ymd_opt(signed_year, month, day)?
        .and_hms_micro_opt(hour, minute, second, micros)?;
    let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(offset_seconds))?;
    use chrono::{Datelike, Timelike};
    let (_, year) = utc.year_ce();
    use std::fmt::Write;
    write!(
        out,
        "\"{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond() / 1_000_000
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn postgres_forms_become_directus_form() {
        for (pg, directus) in [
            (
                "2026-12-06T16:33:24.549123+00:00",
                "\"2026-12-06T16:33:24.549Z\"",
            ),
            (
                "2026-12-06T16:33:24.5+00:00",
                "\"2026-12-06T16:33:24.500Z\"",
            ),
            ("2026-12-06T16:33:24+00:00", "\"2026-12-06T16:33:24.000Z\""),
            (
                "2026-12-06T16:33:24.9999+00:00",
                "\"2026-12-06T16:33:24.999Z\"",
            ),
            ("2026-12-06T16:33:24.549123", "\"2026-12-06T16:33:24.549Z\""),
            (
                "2026-12-06T22:03:24.549123+05:30",
                "\"2026-12-06T16:33:24.549Z\"",
            ),
            ("2026-12-31T20:00:00-05:00", "\"2027-01-01T01:00:00.000Z\""),
            (
                "0044-03-15T12:00:00+00:00 BC",
                "\"0044-03-15T12:00:00.000Z\"",
            ),
            (
                "12345-01-01T00:00:00+00:00",
                "\"12345-01-01T00:00:00.000Z\"",
            ),
            ("infinity", "null"),
            ("-infinity", "null"),
        ] {
            let mut out = String::new();
            assert!(push_directus_token(&mut out, pg), "{pg}");
            assert_eq!(out, directus, "{pg}");
        }
        for other in [
            "",
            "hello",
            "2026-12-06",
            "2026-12-06 16:33:24+00",
            "2026-12-06T16:33:24+00:00x",
            "99999999999-01-01T00:00:00+05:00",
        ] {
            assert!(!push_directus_token(&mut String::new(), other), "{other}");
        }
    }

    #[test]
    fn only_values_of_the_named_keys_change() {
        // Strings that look like the key or hold it escaped, as values, array elements and
        // other keys, stay as they are.
        let json = r#"[{"a":"2026-12-06T16:33:24.5+00:00","b":"2026-12-06T16:33:24.5+00:00","c":"\"a\":\"2026-12-06T16:33:24+00:00\""}, 
 {"a":null,"b":"a","c":["a", "2026-12-06T16:33:24+00:00"],"\"a":"2026-12-06T16:33:24+00:00"}, 
 {"b":"x \" \\","a":"not a time","d":"a"}]"#;
        let out = directus_timestamps(json.to_string(), &keys(&["a"]));
        assert_eq!(
            out,
            r#"[{"a":"2026-12-06T16:33:24.500Z","b":"2026-12-06T16:33:24.5+00:00","c":"\"a\":\"2026-12-06T16:33:24+00:00\""}, 
 {"a":null,"b":"a","c":["a", "2026-12-06T16:33:24+00:00"],"\"a":"2026-12-06T16:33:24+00:00"}, 
 {"b":"x \" \\","a":"not a time","d":"a"}]"#
        );
        // json_build_object's and jsonb's spacing; two keys.
        let one = r#"{"x" : "2026-12-06T16:33:24+00:00", "a" : "2026-12-06T16:33:24+00:00", "b": "infinity"}"#;
        assert_eq!(
            directus_timestamps(one.to_string(), &keys(&["a", "b"])),
            r#"{"x" : "2026-12-06T16:33:24+00:00", "a" : "2026-12-06T16:33:24.000Z", "b": null}"#
        );
        let cut = r#"[{"a":"2026-12-06T16:33:24+00:00"#;
        assert_eq!(directus_timestamps(cut.to_string(), &keys(&["a"])), cut);
        assert_eq!(directus_timestamps("[]".to_string(), &keys(&["a"])), "[]");
    }
}

//! Dynamic variables in filter values: `$CURRENT_USER`, `$CURRENT_USER.<field>`,
//! `$CURRENT_ROLE`, `$CURRENT_ROLE.<field>`, `$CURRENT_ROLES`, `$CURRENT_POLICIES`, `$NOW` and
//! `$NOW(<adjustment>)`. The values come from the caller (the service reads the user's row);
//! this module only substitutes them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Months, Utc};
use serde_json::Value as Json;

/// Whether `$NOW` was resolved: SQL built with the clock's value cannot be reused later.
#[derive(Debug, Default)]
pub struct ClockRead(AtomicBool);

impl Clone for ClockRead {
    fn clone(&self) -> Self {
        ClockRead(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
}

impl ClockRead {
    fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether `$NOW` was resolved since the last call.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// The values dynamic variables stand for, for one accountability.
#[derive(Debug, Clone)]
pub struct Variables {
    pub user: Option<String>,
    /// Fields of the user's `directus_users` row, for `$CURRENT_USER.<field>`.
    pub user_fields: BTreeMap<String, Json>,
    pub role: Option<String>,
    /// Fields of the role's `directus_roles` row, for `$CURRENT_ROLE.<field>`.
    pub role_fields: BTreeMap<String, Json>,
    pub roles: Vec<String>,
    pub policies: Vec<String>,
    pub now: DateTime<Utc>,
    pub clock_read: ClockRead,
}

impl Default for Variables {
    fn default() -> Self {
        Variables {
            user: None,
            user_fields: BTreeMap::new(),
            role: None,
            role_fields: BTreeMap::new(),
            roles: Vec::new(),
            policies: Vec::new(),
            now: Utc::now(),
            clock_read: ClockRead::default(),
        }
    }
}

/// What a filter value that names a variable resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Not a variable: use the value as written.
    NotVariable,
    Value(Json),
    /// A variable without a value for this caller.
    Missing,
}

impl Variables {
    /// Resolves `text` if it is a dynamic variable. `Err` for a `$`-word that looks like a
    /// variable but is not one rectus knows.
    pub fn resolve(&self, text: &str) -> Result<Resolved, String> {
        if !text.starts_with('$') {
            return Ok(Resolved::NotVariable);
        }
        let opt = |v: &Option<String>| match v {
            Some(s) => Resolved::Value(Json::String(s.clone())),
            None => Resolved::Missing,
        };
        let field = |fields: &BTreeMap<String, Json>, name: &str, owner: &Option<String>| match (
            owner,
            fields.get(name),
        ) {
            (None, _) => Resolved::Missing,
            (_, Some(Json::Null)) | (_, None) => Resolved::Missing,
            (_, Some(v)) => Resolved::Value(v.clone()),
        };
        let list = |items: &[String]| {
            Resolved::Value(Json::Array(
                items.iter().cloned().map(Json::String).collect(),
            ))
        };
        Ok(match text {
            "$CURRENT_USER" => opt(&self.user),
            "$CURRENT_ROLE" => opt(&self.role),
            "$CURRENT_ROLES" => list(&self.roles),
            "$CURRENT_POLICIES" => list(&self.policies),
            "$NOW" => {
                self.clock_read.mark();
                Resolved::Value(Json::String(format_now(self.now)))
            }
            _ => {
                if let Some(name) = text.strip_prefix("$CURRENT_USER.") {
                    field(&self.user_fields, name, &self.user)
                } else if let Some(name) = text.strip_prefix("$CURRENT_ROLE.") {
                    field(&self.role_fields, name, &self.role)
                } else if let Some(adjustment) = text
                    .strip_prefix("$NOW(")
                    .and_then(|rest| rest.strip_suffix(')'))
                {
                    self.clock_read.mark();
                    let at = adjust(self.now, adjustment)
                        .ok_or_else(|| format!("\"{text}\" is not a valid $NOW adjustment"))?;
                    Resolved::Value(Json::String(format_now(at)))
                } else if text.starts_with("$CURRENT_") || text.starts_with("$NOW") {
                    return Err(format!("\"{text}\" is not a dynamic variable"));
                } else {
                    // Plain text that happens to start with `$`.
                    Resolved::NotVariable
                }
            }
        })
    }

    /// The user fields a filter refers to through `$CURRENT_USER.<field>`, so the caller
    /// can read just those.
    pub fn referenced_fields(filter: &Json, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        collect(filter, prefix, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

fn collect(value: &Json, prefix: &str, out: &mut Vec<String>) {
    match value {
        Json::String(s) => {
            if let Some(field) = s.strip_prefix(prefix) {
                out.push(field.to_string());
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect(i, prefix, out)),
        Json::Object(map) => map.values().for_each(|v| collect(v, prefix, out)),
        _ => {}
    }
}

fn format_now(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Applies `-1 day`, `+2 hours`, `3 weeks`, ... as Directus's `$NOW(...)` does.
fn adjust(now: DateTime<Utc>, adjustment: &str) -> Option<DateTime<Utc>> {
    let adjustment = adjustment.trim();
    let (sign, rest) = match adjustment.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, adjustment.strip_prefix('+').unwrap_or(adjustment)),
    };
    let rest = rest.trim();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let amount: i64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('s');
    let signed = sign.checked_mul(amount)?;
    match unit {
        "year" | "y" => shift_months(now, signed.checked_mul(12)?),
        "month" => shift_months(now, signed),
        "week" | "w" => now.checked_add_signed(Duration::try_weeks(signed)?),
        "day" | "d" => now.checked_add_signed(Duration::try_days(signed)?),
        "hour" | "h" => now.checked_add_signed(Duration::try_hours(signed)?),
        "minute" | "min" | "m" => now.checked_add_signed(Duration::try_minutes(signed)?),
        "second" | "sec" => now.checked_add_signed(Duration::try_seconds(signed)?),
        "millisecond" | "ms" => now.checked_add_signed(Duration::try_milliseconds(signed)?),
        _ => None,
    }
}

fn shift_months(now: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let magnitude = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        now.checked_add_months(magnitude)
    } else {
        now.checked_sub_months(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn vars() -> Variables {
        Variables {
            user: Some("u1".into()),
            user_fields: [("company".to_string(), Json::from(7))].into(),
            role: Some("r1".into()),
            roles: vec!["r0".into(), "r1".into()],
            policies: vec!["p1".into()],
            now: Utc.with_ymd_and_hms(2024, 3, 31, 12, 0, 0).unwrap(),
            ..Variables::default()
        }
    }

    #[test]
    fn variables_resolve() {
        let v = vars();
        assert_eq!(v.resolve("$CURRENT_USER"), Ok(Resolved::Value("u1".into())));
        assert_eq!(
            v.resolve("$CURRENT_USER.company"),
            Ok(Resolved::Value(7.into()))
        );
        assert_eq!(v.resolve("$CURRENT_USER.missing"), Ok(Resolved::Missing));
        assert!(!v.clock_read.take(), "no clock read yet");
        assert_eq!(
            v.resolve("$CURRENT_ROLES"),
            Ok(Resolved::Value(serde_json::json!(["r0", "r1"])))
        );
        assert_eq!(
            v.resolve("$NOW"),
            Ok(Resolved::Value("2024-03-31T12:00:00.000Z".into()))
        );
        assert!(
            v.clock_read.take() && !v.clock_read.take(),
            "read once, then reset"
        );
        assert_eq!(
            v.resolve("$NOW(-1 day)"),
            Ok(Resolved::Value("2024-03-30T12:00:00.000Z".into()))
        );
        assert_eq!(
            v.resolve("$NOW(+1 month)"),
            Ok(Resolved::Value("2024-04-30T12:00:00.000Z".into()))
        );
        assert_eq!(
            v.resolve("$NOW(-2 hours)"),
            Ok(Resolved::Value("2024-03-31T10:00:00.000Z".into()))
        );
        assert!(v.resolve("$NOW(tomorrow)").is_err());
        assert!(v.resolve("$CURRENT_USERS").is_err());
        assert_eq!(v.resolve("$5 off"), Ok(Resolved::NotVariable));
        assert_eq!(v.resolve("plain"), Ok(Resolved::NotVariable));
    }

    #[test]
    fn the_public_has_no_user() {
        let v = Variables::default();
        assert_eq!(v.resolve("$CURRENT_USER"), Ok(Resolved::Missing));
        assert_eq!(v.resolve("$CURRENT_USER.company"), Ok(Resolved::Missing));
        assert_eq!(
            v.resolve("$CURRENT_ROLES"),
            Ok(Resolved::Value(serde_json::json!([])))
        );
    }

    #[test]
    fn referenced_user_fields_are_listed() {
        let filter = serde_json::json!({"_and": [{"company": {"_eq": "$CURRENT_USER.company"}},
            {"team": {"_in": ["$CURRENT_USER.team", "x"]}}]});
        assert_eq!(
            Variables::referenced_fields(&filter, "$CURRENT_USER."),
            vec!["company".to_string(), "team".to_string()]
        );
    }
}

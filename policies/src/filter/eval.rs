//! In-memory evaluation of a filter on one item (a JSON object): for validation rules on
//! payloads, and as the reference the SQL compiler is checked against. Follows SQL's
//! treatment of NULL: a comparison with a missing or null value does not hold.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;

use super::parse::strip_regex_delimiters;
use super::{DateFunction, FieldCondition, Filter, Operand, Operator, Quantifier, TextMatch};
use crate::schema::FieldType;
use crate::value::{Scalar, coerce, parse_datetime, parse_time};

/// Whether `item` satisfies `filter`. Relational parts look at nested objects (many-to-one)
/// and arrays (one-to-many) in the item; a relation given only as a key does not match.
pub fn matches(filter: &Filter, item: &Json) -> bool {
    match filter {
        Filter::All(parts) => parts.iter().all(|p| matches(p, item)),
        Filter::Any(parts) => parts.iter().any(|p| matches(p, item)),
        Filter::Field(condition) => condition_holds(condition, item.get(&condition.field)),
        Filter::ManyToOne { field, filter, .. } => match item.get(field) {
            Some(related @ Json::Object(_)) => matches(filter, related),
            _ => false,
        },
        Filter::OneToMany {
            field,
            quantifier,
            filter,
            ..
        } => {
            let items = item.get(field).and_then(Json::as_array);
            let any = items.is_some_and(|items| items.iter().any(|i| matches(filter, i)));
            match quantifier {
                Quantifier::Some => any,
                Quantifier::None => !any,
            }
        }
        Filter::Count {
            field,
            operator,
            operand,
            ..
        } => {
            let count = item
                .get(field)
                .and_then(Json::as_array)
                .map_or(0, |a| a.len() as i64);
            compare(*operator, &Scalar::Int(count), operand).unwrap_or(false)
        }
    }
}

fn condition_holds(condition: &FieldCondition, raw: Option<&Json>) -> bool {
    let raw = raw.unwrap_or(&Json::Null);
    match (condition.operator, &condition.operand) {
        (Operator::Null, Operand::Flag(flag)) => !*flag || raw.is_null(),
        (Operator::NNull, Operand::Flag(flag)) => !*flag || !raw.is_null(),
        (Operator::Empty, Operand::Flag(flag)) => !*flag || is_empty(raw, condition.field_type),
        (Operator::NEmpty, Operand::Flag(flag)) => !*flag || !is_empty(raw, condition.field_type),
        (_, Operand::Unknown) => false,
        (Operator::Eq, Operand::Value(Scalar::Null)) => raw.is_null(),
        (Operator::Neq, Operand::Value(Scalar::Null)) => !raw.is_null(),
        _ if raw.is_null() => false,
        (op, operand) => {
            let Some(value) = item_value(raw, condition) else {
                return false;
            };
            if let Some((negated, insensitive, kind)) = op.text_match() {
                let Operand::Value(Scalar::Text(needle)) = operand else {
                    return false;
                };
                let haystack = as_text(raw);
                let (haystack, needle) = if insensitive {
                    (haystack.to_lowercase(), needle.to_lowercase())
                } else {
                    (haystack, needle.clone())
                };
                let found = match kind {
                    TextMatch::Anywhere => haystack.contains(&needle),
                    TextMatch::Prefix => haystack.starts_with(&needle),
                    TextMatch::Suffix => haystack.ends_with(&needle),
                };
                return found != negated;
            }
            if op == Operator::Regex {
                let Operand::Value(Scalar::Text(pattern)) = operand else {
                    return false;
                };
                return regex::Regex::new(&strip_regex_delimiters(pattern))
                    .is_ok_and(|r| r.is_match(&as_text(raw)));
            }
            compare(op, &value, operand).unwrap_or(false)
        }
    }
}

fn compare(op: Operator, value: &Scalar, operand: &Operand) -> Option<bool> {
    use std::cmp::Ordering::*;
    Some(match (op, operand) {
        (Operator::Eq, Operand::Value(v)) => value.compare(v)? == Equal,
        (Operator::Neq, Operand::Value(v)) => value.compare(v)? != Equal,
        (Operator::Lt, Operand::Value(v)) => value.compare(v)? == Less,
        (Operator::Lte, Operand::Value(v)) => value.compare(v)? != Greater,
        (Operator::Gt, Operand::Value(v)) => value.compare(v)? == Greater,
        (Operator::Gte, Operand::Value(v)) => value.compare(v)? != Less,
        (Operator::In, Operand::List(list)) => list.iter().any(|v| value.compare(v) == Some(Equal)),
        (Operator::Nin, Operand::List(list)) => {
            !list.iter().any(|v| value.compare(v) == Some(Equal))
        }
        (Operator::Between, Operand::List(list)) if list.len() == 2 => {
            value.compare(&list[0])? != Less && value.compare(&list[1])? != Greater
        }
        (Operator::NBetween, Operand::List(list)) if list.len() == 2 => {
            !(value.compare(&list[0])? != Less && value.compare(&list[1])? != Greater)
        }
        _ => return None,
    })
}

fn is_empty(raw: &Json, field_type: FieldType) -> bool {
    match raw {
        Json::Null => true,
        Json::String(s) => s.is_empty() && is_textual(field_type),
        _ => false,
    }
}

fn is_textual(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::String | FieldType::Text | FieldType::Csv | FieldType::Hash | FieldType::Unknown
    )
}

fn as_text(raw: &Json) -> String {
    match raw {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The item's value as the filter compares it: typed like the field, or the function of it.
fn item_value(raw: &Json, condition: &FieldCondition) -> Option<Scalar> {
    let Some(function) = condition.function else {
        return coerce(raw, condition.field_type).ok();
    };
    let text = raw.as_str()?;
    let (date, time): (Option<NaiveDate>, Option<NaiveTime>) = match condition.field_type {
        FieldType::Date => (crate::value::parse_date(text), None),
        FieldType::Time => (None, parse_time(text)),
        _ => {
            let t: NaiveDateTime = parse_datetime(text)?;
            (Some(t.date()), Some(t.time()))
        }
    };
    let n = match function {
        DateFunction::Year => i64::from(date?.year()),
        DateFunction::Month => i64::from(date?.month()),
        DateFunction::Week => i64::from(date?.iso_week().week()),
        DateFunction::Day => i64::from(date?.day()),
        DateFunction::Weekday => i64::from(date?.weekday().num_days_from_sunday()),
        DateFunction::Hour => i64::from(time?.hour()),
        DateFunction::Minute => i64::from(time?.minute()),
        DateFunction::Second => i64::from(time?.second()),
    };
    Some(Scalar::Int(n))
}

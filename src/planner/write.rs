//! Payload values to database values by field type, and the INSERT / UPDATE / DELETE
//! statements of a write. Permission checks happen in the items service before these run.

use chrono::{DateTime, Utc};
use rectus_policies::value::{parse_date, parse_datetime, parse_time};
use rectus_policies::{Collection, Field, FieldType};
use sea_query::{Expr, ExprTrait, Query as Sql};
use serde_json::{Map, Value as Json};

use crate::db::{DbValue, Dialect, DialectExt, Stmt};
use crate::error::{ApiError, ErrorCode, constraint_error};

fn invalid(field: &str, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. \"{field}\" must be {what}."),
    )
}

/// The value to store for `field` from a payload value. Hash fields arrive already hashed.
pub fn db_value(field: &Field, value: &Json) -> Result<DbValue, ApiError> {
    if value.is_null() {
        return Ok(DbValue::Null);
    }
    let name = field.field.as_str();
    let text = || match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    Ok(match field.kind {
        FieldType::Integer | FieldType::BigInteger => match value {
            Json::Number(n) if n.is_i64() => DbValue::Int(n.as_i64().unwrap_or_default()),
            Json::String(s) => DbValue::Int(
                s.trim()
                    .parse()
                    .map_err(|_| invalid(name, "a whole number"))?,
            ),
            _ => return Err(invalid(name, "a whole number")),
        },
        FieldType::Float => match value {
            Json::Number(n) => DbValue::Float(n.as_f64().unwrap_or_default()),
            Json::String(s) => {
                DbValue::Float(s.trim().parse().map_err(|_| invalid(name, "a number"))?)
            }
            _ => return Err(invalid(name, "a number")),
        },
        FieldType::Decimal => {
            let t = text()
                .filter(|_| !value.is_boolean())
                .ok_or_else(|| invalid(name, "a decimal number"))?;
            let plain = t.trim().trim_start_matches(['-', '+']);
            let (int, frac) = plain.split_once('.').unwrap_or((plain, ""));
            if (int.is_empty() && frac.is_empty())
                || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            {
                return Err(invalid(name, "a decimal number"));
            }
            DbValue::Decimal(t.trim().to_string())
        }
        FieldType::Boolean => match value {
            Json::Bool(b) => DbValue::Bool(*b),
            Json::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                DbValue::Bool(n.as_i64() == Some(1))
            }
            Json::String(s) if s == "true" || s == "false" => DbValue::Bool(s == "true"),
            _ => return Err(invalid(name, "true or false")),
        },
        FieldType::Uuid => match value {
            Json::String(s) => {
                DbValue::Uuid(uuid::Uuid::parse_str(s.trim()).map_err(|_| invalid(name, "a uuid"))?)
            }
            _ => return Err(invalid(name, "a uuid")),
        },
        FieldType::Date => DbValue::Date(
            value
                .as_str()
                .and_then(parse_date)
                .ok_or_else(|| invalid(name, "a date (YYYY-MM-DD)"))?,
        ),
        FieldType::DateTime => DbValue::DateTime(
            value
                .as_str()
                .and_then(parse_datetime)
                .ok_or_else(|| invalid(name, "a date and time"))?,
        ),
        FieldType::Timestamp => DbValue::Timestamp(
            value
                .as_str()
                .and_then(parse_datetime)
                .map(|t| t.and_utc())
                .ok_or_else(|| invalid(name, "a date and time"))?,
        ),
        FieldType::Time => DbValue::Time(
            value
                .as_str()
                .and_then(parse_time)
                .ok_or_else(|| invalid(name, "a time (HH:MM:SS)"))?,
        ),
        FieldType::Json => DbValue::Json(value.clone()),
        FieldType::Csv => match value {
            Json::Array(items) => DbValue::Text(
                items
                    .iter()
                    .map(|i| match i {
                        Json::String(s) => Ok(s.clone()),
                        Json::Number(n) => Ok(n.to_string()),
                        _ => Err(invalid(name, "a list of text values")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
            ),
            Json::String(s) => DbValue::Text(s.clone()),
            _ => return Err(invalid(name, "a list of text values")),
        },
        FieldType::Binary => DbValue::Bytes(
            value
                .as_str()
                .map(|s| s.as_bytes().to_vec())
                .ok_or_else(|| invalid(name, "text"))?,
        ),
        FieldType::String | FieldType::Text | FieldType::Hash | FieldType::Unknown => {
            DbValue::Text(text().ok_or_else(|| invalid(name, "text"))?)
        }
        FieldType::Alias => {
            return Err(ApiError::new(
                ErrorCode::InvalidPayload,
                format!(
                    "Invalid payload. Writing the relational field \"{name}\" is not supported yet."
                ),
            ));
        }
    })
}

/// Refuses values the column cannot hold, before the database would: text over the
/// field's length (`VALUE_TOO_LONG`), whole numbers outside the column's integer type and
/// decimals with more integer digits than the column allows (`VALUE_OUT_OF_RANGE`).
/// SQLite stores what it is given, so only lengths are checked there, as Directus's own
/// schema promises them.
pub fn check_limits(
    dialect: Dialect,
    collection: &Collection,
    values: &[(String, DbValue)],
) -> Result<(), ApiError> {
    let name = collection.collection.as_str();
    for (field_name, value) in values {
        let Some(field) = collection.field(field_name) else {
            continue;
        };
        let out_of_range = |v: &str| {
            constraint_error(
                ErrorCode::ValueOutOfRange,
                "is out of range.",
                Some(name),
                Some(field_name),
                Some(v),
            )
        };
        match value {
            DbValue::Text(text) if matches!(field.kind, FieldType::String | FieldType::Csv) => {
                if let Some(max) = field.max_length
                    && text.chars().count() > max as usize
                {
                    return Err(constraint_error(
                        ErrorCode::ValueTooLong,
                        "is too long.",
                        Some(name),
                        Some(field_name),
                        None,
                    ));
                }
            }
            DbValue::Int(i) if dialect != Dialect::Sqlite => {
                if let Some((min, max)) = integer_range(field.db_type.as_deref())
                    && !(min..=max).contains(&i128::from(*i))
                {
                    return Err(out_of_range(&i.to_string()));
                }
            }
            DbValue::Decimal(d) if dialect != Dialect::Sqlite => {
                if let Some(precision) = field.precision {
                    let digits = d
                        .trim_start_matches(['-', '+'])
                        .split('.')
                        .next()
                        .unwrap_or("")
                        .trim_start_matches('0')
                        .len();
                    let allowed = precision.saturating_sub(field.scale.unwrap_or(0)) as usize;
                    if digits > allowed {
                        return Err(out_of_range(d));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The values an integer column type holds (`int(11) unsigned`, `smallint`, ...).
fn integer_range(db_type: Option<&str>) -> Option<(i128, i128)> {
    let t = db_type?.to_ascii_lowercase();
    let unsigned = t.contains("unsigned");
    let base = t.split(['(', ' ']).next().unwrap_or("");
    let bits = match base {
        "tinyint" => 8,
        "smallint" | "int2" | "smallserial" => 16,
        "mediumint" => 24,
        "int" | "integer" | "int4" | "serial" | "serial4" => 32,
        "bigint" | "int8" | "bigserial" | "serial8" => 64,
        _ => return None,
    };
    Some(if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

/// The sea-query form of a value, so statements are built (and values bound) by sea-query.
pub fn sea_value(v: DbValue) -> sea_query::Value {
    use sea_query::Value as V;
    match v {
        DbValue::Null => V::String(None),
        DbValue::Bool(b) => V::Bool(Some(b)),
        DbValue::Int(i) => V::BigInt(Some(i)),
        DbValue::Float(f) => V::Double(Some(f)),
        DbValue::Decimal(s) | DbValue::Text(s) => V::String(Some(s)),
        DbValue::Json(j) => V::Json(Some(Box::new(j))),
        DbValue::Uuid(u) => V::Uuid(Some(u)),
        DbValue::Bytes(b) => V::Bytes(Some(b)),
        DbValue::Timestamp(t) => V::ChronoDateTimeUtc(Some(t)),
        DbValue::DateTime(t) => V::ChronoDateTime(Some(t)),
        DbValue::Date(d) => V::ChronoDate(Some(d)),
        DbValue::Time(t) => V::ChronoTime(Some(t)),
    }
}

/// Converts a whole payload (already checked against permissions) to column values.
pub fn row_values(
    collection: &Collection,
    payload: &Map<String, Json>,
) -> Result<Vec<(String, DbValue)>, ApiError> {
    payload
        .iter()
        .map(|(name, value)| {
            let field = collection.field(name).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidPayload,
                    format!(
                        "Invalid payload. Field \"{name}\" doesn't exist in collection \"{}\".",
                        collection.collection
                    ),
                )
            })?;
            Ok((name.clone(), db_value(field, value)?))
        })
        .collect()
}

pub fn insert(
    dialect: Dialect,
    collection: &Collection,
    values: Vec<(String, DbValue)>,
    returning_key: bool,
) -> Result<Stmt, ApiError> {
    Ok(dialect.build(&insert_statement(collection, values, returning_key)?)?)
}

/// The INSERT of one row, to be built or embedded in a larger statement.
pub fn insert_statement(
    collection: &Collection,
    values: Vec<(String, DbValue)>,
    returning_key: bool,
) -> Result<sea_query::InsertStatement, ApiError> {
    let (columns, values): (Vec<String>, Vec<DbValue>) = values.into_iter().unzip();
    let exprs = values
        .into_iter()
        .map(|v| Expr::val(sea_value(v)))
        .collect();
    let mut insert = insert_exprs(collection, columns, exprs)?;
    if returning_key {
        insert.returning_col(collection.primary_key.clone());
    }
    Ok(insert)
}

/// `INSERT INTO collection (columns) VALUES (exprs)`, or `DEFAULT VALUES` with no columns.
pub fn insert_exprs(
    collection: &Collection,
    columns: Vec<String>,
    exprs: Vec<Expr>,
) -> Result<sea_query::InsertStatement, ApiError> {
    let mut insert = Sql::insert();
    insert.into_table(collection.collection.clone());
    if columns.is_empty() {
        insert.or_default_values();
    } else {
        insert.columns(columns);
        insert.values(exprs).map_err(|e| ApiError::internal(&e))?;
    }
    Ok(insert)
}

pub fn update(
    dialect: Dialect,
    collection: &Collection,
    values: Vec<(String, DbValue)>,
    keys: &[DbValue],
) -> Result<Stmt, ApiError> {
    let mut update = Sql::update();
    update.table(collection.collection.clone());
    for (column, value) in values {
        update.value(column, Expr::val(sea_value(value)));
    }
    update.and_where(
        Expr::col(collection.primary_key.clone())
            .is_in(keys.iter().cloned().map(|k| Expr::val(sea_value(k)))),
    );
    Ok(dialect.build(&update)?)
}

pub fn delete(
    dialect: Dialect,
    collection: &Collection,
    keys: &[DbValue],
) -> Result<Stmt, ApiError> {
    let delete = Sql::delete()
        .from_table(collection.collection.clone())
        .and_where(
            Expr::col(collection.primary_key.clone())
                .is_in(keys.iter().cloned().map(|k| Expr::val(sea_value(k)))),
        )
        .to_owned();
    Ok(dialect.build(&delete)?)
}

/// Whether the database can return the generated key of an INSERT.
pub fn supports_returning(dialect: Dialect) -> bool {
    !matches!(dialect, Dialect::MySql)
}

/// `now` for `date-created` / `date-updated` fields, typed for the field.
pub fn now_for(field: &Field) -> DbValue {
    let now: DateTime<Utc> = Utc::now();
    match field.kind {
        FieldType::DateTime => DbValue::DateTime(now.naive_utc()),
        FieldType::Date => DbValue::Date(now.date_naive()),
        FieldType::Time => DbValue::Time(now.time()),
        _ => DbValue::Timestamp(now),
    }
}

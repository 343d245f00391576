//! The project settings row (`directus_settings`) and the public part of it that
//! `/server/info` shows to everyone.

use sea_query::Query;
use serde_json::{Map, Value};

use super::ServiceError;
use crate::db::{Database, DialectExt, Row};

/// What Directus shows of the settings to a caller who is not logged in.
const PUBLIC_TEXT: &[&str] = &[
    "project_name",
    "project_descriptor",
    "project_logo",
    "project_color",
    "default_language",
    "public_foreground",
    "public_background",
    "public_favicon",
    "public_note",
    "custom_css",
    "default_appearance",
    "default_theme_light",
    "default_theme_dark",
];
const PUBLIC_BOOL: &[&str] = &["public_registration", "public_registration_verify_email"];
const PUBLIC_JSON: &[&str] = &["theme_light_overrides", "theme_dark_overrides"];

/// The public project information, with Directus's field names. Defaults stand in when the
/// settings row is missing.
pub async fn public_project(db: &Database) -> Result<Value, ServiceError> {
    let select = Query::select()
        .columns(
            PUBLIC_TEXT
                .iter()
                .chain(PUBLIC_BOOL)
                .chain(PUBLIC_JSON)
                .copied(),
        )
        .from("directus_settings")
        .limit(1)
        .to_owned();
    let row = db.query_opt(&db.dialect().build(&select)?).await?;
    match row {
        Some(row) => project_from_row(&row),
        None => Ok(serde_json::json!({
            "project_name": "Directus",
            "project_color": "#6644FF",
            "default_language": "en-US",
            "public_registration": false,
            "public_registration_verify_email": true,
            "default_appearance": "auto",
        })),
    }
}

fn project_from_row(row: &Row) -> Result<Value, ServiceError> {
    let mut project = Map::new();
    for column in PUBLIC_TEXT {
        let value: Option<String> = row.get(column)?;
        project.insert((*column).into(), value.map_or(Value::Null, Value::String));
    }
    for column in PUBLIC_BOOL {
        let value: Option<bool> = row.get(column)?;
        project.insert((*column).into(), value.map_or(Value::Null, Value::Bool));
    }
    for column in PUBLIC_JSON {
        let value: Option<Value> = row.get::<Option<Value>>(column).unwrap_or(None);
        project.insert((*column).into(), value.unwrap_or(Value::Null));
    }
    Ok(Value::Object(project))
}

//! The schema model every layer shares: which collections exist, their fields with Directus
//! types, and the relations between them. Built by introspection in `src/db`, read by the
//! permission engine, the planner, and the SQL guard.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The Directus field types ("local types"), named exactly as Directus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    String,
    Text,
    Integer,
    BigInteger,
    Float,
    Decimal,
    Boolean,
    Date,
    Time,
    DateTime,
    Timestamp,
    Json,
    Uuid,
    Binary,
    Csv,
    Hash,
    Alias,
    Unknown,
}

impl FieldType {
    pub const ALL: [FieldType; 18] = [
        FieldType::String,
        FieldType::Text,
        FieldType::Integer,
        FieldType::BigInteger,
        FieldType::Float,
        FieldType::Decimal,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Time,
        FieldType::DateTime,
        FieldType::Timestamp,
        FieldType::Json,
        FieldType::Uuid,
        FieldType::Binary,
        FieldType::Csv,
        FieldType::Hash,
        FieldType::Alias,
        FieldType::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::BigInteger => "bigInteger",
            FieldType::Float => "float",
            FieldType::Decimal => "decimal",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Time => "time",
            FieldType::DateTime => "dateTime",
            FieldType::Timestamp => "timestamp",
            FieldType::Json => "json",
            FieldType::Uuid => "uuid",
            FieldType::Binary => "binary",
            FieldType::Csv => "csv",
            FieldType::Hash => "hash",
            FieldType::Alias => "alias",
            FieldType::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<FieldType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Types whose values are whole numbers.
    pub fn is_integer(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::BigInteger)
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::BigInteger | FieldType::Float | FieldType::Decimal
        )
    }

    /// Types `search` looks into, as in Directus.
    pub fn is_textual(self) -> bool {
        matches!(self, FieldType::String | FieldType::Text | FieldType::Csv)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A column default, normalised so that the same logical default reads the same on every
/// database (`'active'::character varying`, `'active'` and `active` are all `Literal("active")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum DefaultValue {
    Literal(serde_json::Value),
    /// `CURRENT_TIMESTAMP`, `now()` and their spellings.
    CurrentTimestamp,
    /// Any other expression, kept as the database prints it.
    Expression(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub field: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// The type as the database names it (`character varying`, `longtext`, ...); `None` for
    /// alias fields, which have no column.
    pub db_type: Option<String>,
    pub nullable: bool,
    pub default_value: Option<DefaultValue>,
    pub max_length: Option<u32>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    pub primary_key: bool,
    pub auto_increment: bool,
    pub unique: bool,
    /// Directus's `special` flags (`cast-json`, `uuid`, `hash`, `o2m`, ...).
    pub special: Vec<String>,
    pub note: Option<String>,
    pub searchable: bool,
    pub validation: Option<serde_json::Value>,
    /// `directus_fields.required`: a value must be given.
    #[serde(default)]
    pub required: bool,
    /// The column's place in its table (0 first); alias fields come after every column.
    /// Not part of the data model's description, so never serialized.
    #[serde(skip)]
    pub position: u32,
}

impl Field {
    pub fn is_alias(&self) -> bool {
        self.kind == FieldType::Alias
    }

    pub fn has_special(&self, flag: &str) -> bool {
        self.special.iter().any(|s| s == flag)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    pub collection: String,
    pub primary_key: String,
    /// A view: readable, never written through rectus.
    pub view: bool,
    /// A `directus_*` system table.
    pub system: bool,
    pub singleton: bool,
    pub hidden: bool,
    pub sort_field: Option<String>,
    pub note: Option<String>,
    /// `all`, `activity` or `None`, as in `directus_collections.accountability`.
    pub accountability: Option<String>,
    pub fields: BTreeMap<String, Field>,
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }

    pub fn primary_key_field(&self) -> Option<&Field> {
        self.fields.get(&self.primary_key)
    }
}

/// What the database does to the many side when the one side changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReferentialAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl ReferentialAction {
    /// Reads the spellings the three databases use (`SET NULL`, `set null`, `n`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().replace('_', " ").as_str() {
            "NO ACTION" | "A" => Some(Self::NoAction),
            "RESTRICT" | "R" => Some(Self::Restrict),
            "CASCADE" | "C" => Some(Self::Cascade),
            "SET NULL" | "N" => Some(Self::SetNull),
            "SET DEFAULT" | "D" => Some(Self::SetDefault),
            _ => None,
        }
    }

    pub fn as_sql(self) -> &'static str {
        match self {
            Self::NoAction => "NO ACTION",
            Self::Restrict => "RESTRICT",
            Self::Cascade => "CASCADE",
            Self::SetNull => "SET NULL",
            Self::SetDefault => "SET DEFAULT",
        }
    }
}

/// The database side of a relation: a real foreign key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub constraint_name: Option<String>,
    pub on_delete: ReferentialAction,
    pub on_update: ReferentialAction,
}

/// A relation as Directus models it: always stored on the "many" side (the field holding the
/// foreign key). The one-to-many view of the same relation is `one_collection`/`one_field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    pub many_collection: String,
    pub many_field: String,
    /// `None` for many-to-any relations, whose target is in `one_collection_field`.
    pub one_collection: Option<String>,
    /// The alias field on the one side that lists the related items (one-to-many).
    pub one_field: Option<String>,
    pub one_collection_field: Option<String>,
    pub one_allowed_collections: Vec<String>,
    pub junction_field: Option<String>,
    pub sort_field: Option<String>,
    pub one_deselect_action: String,
    /// `None` when the relation exists only in `directus_relations` (no constraint).
    pub foreign_key: Option<ForeignKey>,
    /// Whether a `directus_relations` row describes this relation.
    pub has_meta: bool,
}

impl Relation {
    /// A relation from `many_collection.many_field` with nothing else known yet.
    pub fn new(many_collection: impl Into<String>, many_field: impl Into<String>) -> Self {
        Relation {
            many_collection: many_collection.into(),
            many_field: many_field.into(),
            one_collection: None,
            one_field: None,
            one_collection_field: None,
            one_allowed_collections: Vec::new(),
            junction_field: None,
            sort_field: None,
            one_deselect_action: "nullify".to_string(),
            foreign_key: None,
            has_meta: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaOverview {
    pub collections: BTreeMap<String, Collection>,
    pub relations: Vec<Relation>,
}

impl SchemaOverview {
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// The user's own collections: everything but `directus_*` system tables.
    pub fn user_collections(&self) -> impl Iterator<Item = &Collection> {
        self.collections.values().filter(|c| !c.system)
    }

    /// The many-to-one relation whose foreign key is `collection.field`, if any.
    pub fn many_to_one(&self, collection: &str, field: &str) -> Option<&Relation> {
        self.relations
            .iter()
            .find(|r| r.many_collection == collection && r.many_field == field)
    }

    /// The relations pointing at `collection`: its one-to-many side.
    pub fn one_to_many(&self, collection: &str) -> impl Iterator<Item = &Relation> {
        self.relations
            .iter()
            .filter(move |r| r.one_collection.as_deref() == Some(collection))
    }

    /// The relation that the alias field `collection.field` (a one-to-many) stands for.
    pub fn one_to_many_by_alias(&self, collection: &str, field: &str) -> Option<&Relation> {
        self.one_to_many(collection)
            .find(|r| r.one_field.as_deref() == Some(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_type_names_round_trip_and_match_serde() {
        for t in FieldType::ALL {
            assert_eq!(FieldType::parse(t.as_str()), Some(t));
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::Value::String(t.as_str().to_string()));
        }
        assert_eq!(FieldType::parse("bigint"), None);
    }

    #[test]
    fn referential_actions_parse_every_spelling() {
        assert_eq!(
            ReferentialAction::parse("SET NULL"),
            Some(ReferentialAction::SetNull)
        );
        assert_eq!(
            ReferentialAction::parse("set_null"),
            Some(ReferentialAction::SetNull)
        );
        assert_eq!(
            ReferentialAction::parse("c"),
            Some(ReferentialAction::Cascade)
        );
        assert_eq!(
            ReferentialAction::parse("NO ACTION"),
            Some(ReferentialAction::NoAction)
        );
        assert_eq!(ReferentialAction::parse("explode"), None);
    }

    fn relation(many: &str, field: &str, one: &str, one_field: Option<&str>) -> Relation {
        Relation {
            one_collection: Some(one.into()),
            one_field: one_field.map(Into::into),
            has_meta: true,
            ..Relation::new(many, field)
        }
    }

    #[test]
    fn relations_are_found_from_both_sides() {
        let schema = SchemaOverview {
            collections: BTreeMap::new(),
            relations: vec![
                relation("orders", "customer", "customers", Some("orders")),
                relation("invoices", "customer", "customers", None),
            ],
        };
        assert_eq!(
            schema
                .many_to_one("orders", "customer")
                .map(|r| r.one_collection.as_deref()),
            Some(Some("customers"))
        );
        assert!(schema.many_to_one("orders", "total").is_none());
        assert_eq!(schema.one_to_many("customers").count(), 2);
        assert_eq!(
            schema
                .one_to_many_by_alias("customers", "orders")
                .map(|r| r.many_collection.as_str()),
            Some("orders")
        );
        assert!(
            schema
                .one_to_many_by_alias("customers", "invoices")
                .is_none()
        );
    }
}

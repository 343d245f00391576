//! Reads an existing database into a [`SchemaOverview`]: the catalog readers per dialect
//! produce one raw form, which is typed and merged with the `directus_collections`,
//! `directus_fields` and `directus_relations` rows the way Directus merges them.

mod metadata;
mod mysql;
mod pg;
mod sqlite;
mod system_relations;
pub mod types;

use std::collections::{BTreeMap, HashMap};

use rectus_policies::{
    Collection, Field, FieldType, ForeignKey, ReferentialAction, Relation, SchemaOverview,
};

use super::migrations::system_table;
use super::{Conn, Database, DbError, Dialect};
use metadata::Metadata;

/// A table or view as the catalog lists it.
#[derive(Debug, Clone, Default)]
pub struct RawTable {
    pub name: String,
    pub view: bool,
}

/// A column as the catalog describes it.
#[derive(Debug, Clone, Default)]
pub struct RawColumn {
    pub table: String,
    pub name: String,
    /// The type name without length or modifiers (`character varying`, `tinyint`, `_varchar`).
    pub base_type: String,
    /// The type as declared (`varchar(255)`, `tinyint(1)`, `numeric(10,2)`).
    pub full_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub max_length: Option<u32>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    pub auto_increment: bool,
    /// MariaDB: a `json_valid()` check marks a LONGTEXT column as JSON.
    pub json_check: bool,
}

/// A primary key or unique index/constraint.
#[derive(Debug, Clone, Default)]
pub struct RawIndex {
    pub table: String,
    pub columns: Vec<String>,
    pub primary: bool,
}

/// A single-column foreign key (Directus relations have one column).
#[derive(Debug, Clone)]
pub struct RawForeignKey {
    pub constraint: Option<String>,
    pub table: String,
    pub column: String,
    pub foreign_table: String,
    pub on_update: ReferentialAction,
    pub on_delete: ReferentialAction,
}

#[derive(Debug, Clone, Default)]
pub struct RawSchema {
    pub tables: Vec<RawTable>,
    pub columns: Vec<RawColumn>,
    pub indexes: Vec<RawIndex>,
    pub foreign_keys: Vec<RawForeignKey>,
}

impl RawSchema {
    fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name)
    }
}

/// Reads the schema of `db` as it is now.
pub async fn introspect(db: &Database) -> Result<SchemaOverview, DbError> {
    let mut conn = db.acquire().await?;
    introspect_conn(&mut conn).await
}

pub async fn introspect_conn(conn: &mut Conn) -> Result<SchemaOverview, DbError> {
    let raw = match conn.dialect() {
        Dialect::Postgres => pg::read(conn).await?,
        Dialect::MySql => mysql::read(conn).await?,
        Dialect::Sqlite => sqlite::read(conn).await?,
    };
    let meta = metadata::read(conn, &raw).await?;
    Ok(build(conn.dialect(), raw, meta))
}

fn build(dialect: Dialect, raw: RawSchema, meta: Metadata) -> SchemaOverview {
    let mut columns_by_table: HashMap<&str, Vec<&RawColumn>> = HashMap::new();
    for c in &raw.columns {
        columns_by_table
            .entry(c.table.as_str())
            .or_default()
            .push(c);
    }
    let mut collections = BTreeMap::new();
    for table in &raw.tables {
        let columns = columns_by_table
            .remove(table.name.as_str())
            .unwrap_or_default();
        match build_collection(dialect, &raw, table, &columns, &meta) {
            Some(collection) => {
                collections.insert(table.name.clone(), collection);
            }
            None => tracing::warn!(
                collection = %table.name,
                "the table has no single-column primary key and is left out, as Directus does"
            ),
        }
    }
    let relations = build_relations(&raw, &meta, &collections);
    SchemaOverview {
        collections,
        relations,
    }
}

fn build_collection(
    dialect: Dialect,
    raw: &RawSchema,
    table: &RawTable,
    columns: &[&RawColumn],
    meta: &Metadata,
) -> Option<Collection> {
    let primary_key = if table.view {
        // Views have no keys; like Directus users expect, `id` (or else the first column)
        // identifies an item.
        columns
            .iter()
            .find(|c| c.name == "id")
            .or(columns.first())
            .map(|c| c.name.clone())?
    } else {
        let pk = raw
            .indexes
            .iter()
            .find(|i| i.table == table.name && i.primary)?;
        match pk.columns.as_slice() {
            [single] => single.clone(),
            _ => return None,
        }
    };
    let unique: Vec<&str> = raw
        .indexes
        .iter()
        .filter(|i| i.table == table.name && i.columns.len() == 1)
        .map(|i| i.columns[0].as_str())
        .collect();
    let system = table.name.starts_with("directus_");
    let system_spec = system_table(&table.name);
    let mut fields = BTreeMap::new();
    for (position, column) in columns.iter().enumerate() {
        let field_meta = meta.field(&table.name, &column.name);
        let mut special = field_meta.map(|m| m.special.clone()).unwrap_or_default();
        let spec = system_spec.and_then(|t| t.column(&column.name));
        if spec.is_some_and(|c| c.conceal) && !special.iter().any(|s| s == "conceal") {
            special.push("conceal".to_string());
        }
        let local = match spec {
            Some(spec) => spec.field_type(),
            None => types::local_type(dialect, column),
        };
        let kind = types::with_special(local, &special);
        let is_pk = column.name == primary_key;
        let view = table.view;
        let is_char = matches!(
            column.base_type.to_ascii_lowercase().as_str(),
            "varchar"
                | "character varying"
                | "char"
                | "character"
                | "bpchar"
                | "nvarchar"
                | "nchar"
        );
        let default_value = match (&column.default, column.auto_increment || view) {
            (Some(d), false) => types::parse_default(dialect, d, kind),
            _ => None,
        };
        fields.insert(
            column.name.clone(),
            Field {
                field: column.name.clone(),
                kind,
                db_type: Some(column.full_type.clone()),
                nullable: view || column.nullable,
                default_value,
                max_length: column
                    .max_length
                    .filter(|_| is_char && kind != FieldType::Uuid),
                precision: column.precision.filter(|_| kind == FieldType::Decimal),
                scale: column.scale.filter(|_| kind == FieldType::Decimal),
                primary_key: is_pk,
                auto_increment: column.auto_increment && !view,
                unique: !view && (is_pk || unique.contains(&column.name.as_str())),
                special,
                note: field_meta.and_then(|m| m.note.clone()),
                searchable: field_meta.is_none_or(|m| m.searchable),
                validation: field_meta.and_then(|m| m.validation.clone()),
                required: field_meta.is_some_and(|m| m.required),
                position: u32::try_from(position).unwrap_or(u32::MAX),
            },
        );
    }
    // Fields Directus keeps without a column: relational aliases and presentation.
    for alias in meta.aliases(&table.name) {
        if fields.contains_key(&alias.field) {
            continue;
        }
        fields.insert(
            alias.field.clone(),
            Field {
                field: alias.field.clone(),
                kind: FieldType::Alias,
                db_type: None,
                nullable: true,
                default_value: None,
                max_length: None,
                precision: None,
                scale: None,
                primary_key: false,
                auto_increment: false,
                unique: false,
                special: alias.special.clone(),
                note: alias.note.clone(),
                searchable: alias.searchable,
                validation: alias.validation.clone(),
                required: alias.required,
                position: u32::MAX,
            },
        );
    }
    let collection_meta = meta.collection(&table.name);
    Some(Collection {
        collection: table.name.clone(),
        primary_key,
        view: table.view,
        system,
        singleton: collection_meta.is_some_and(|m| m.singleton),
        hidden: collection_meta.is_some_and(|m| m.hidden),
        sort_field: collection_meta.and_then(|m| m.sort_field.clone()),
        note: collection_meta.and_then(|m| m.note.clone()),
        accountability: match collection_meta {
            Some(m) => m.accountability.clone(),
            None => Some("all".to_string()),
        },
        fields,
    })
}

/// Foreign keys and `directus_relations` rows, joined on (many collection, many field).
fn build_relations(
    raw: &RawSchema,
    meta: &Metadata,
    collections: &BTreeMap<String, Collection>,
) -> Vec<Relation> {
    let mut relations: Vec<Relation> = Vec::new();
    for fk in &raw.foreign_keys {
        relations.push(Relation {
            one_collection: Some(fk.foreign_table.clone()),
            foreign_key: Some(ForeignKey {
                constraint_name: fk.constraint.clone(),
                on_delete: fk.on_delete,
                on_update: fk.on_update,
            }),
            ..Relation::new(&fk.table, &fk.column)
        });
    }
    for m in &meta.relations {
        let existing = relations
            .iter_mut()
            .find(|r| r.many_collection == m.many_collection && r.many_field == m.many_field);
        let relation = match existing {
            Some(r) => r,
            None => {
                relations.push(Relation::new(&m.many_collection, &m.many_field));
                relations.last_mut().expect("just pushed")
            }
        };
        if m.one_collection.is_some() {
            relation.one_collection = m.one_collection.clone();
        }
        relation.one_field = m.one_field.clone();
        relation.one_collection_field = m.one_collection_field.clone();
        relation.one_allowed_collections = m.one_allowed_collections.clone();
        relation.junction_field = m.junction_field.clone();
        relation.sort_field = m.sort_field.clone();
        relation.one_deselect_action = m.one_deselect_action.clone();
        relation.has_meta = true;
    }
    relations.retain(|r| collections.contains_key(&r.many_collection));
    relations.sort_by(|a, b| {
        (&a.many_collection, &a.many_field).cmp(&(&b.many_collection, &b.many_field))
    });
    relations
}

/// `RawSchema` readers share this: PostgreSQL's `confdeltype` letters and the SQL words.
fn referential_action(text: &str) -> ReferentialAction {
    ReferentialAction::parse(text).unwrap_or(ReferentialAction::NoAction)
}

/// Runs a catalog query whose rows have `name` and `is_view`.
async fn read_tables(conn: &mut Conn, sql: &str) -> Result<Vec<RawTable>, DbError> {
    conn.query(&super::Stmt::new(sql))
        .await?
        .iter()
        .map(|r| {
            Ok(RawTable {
                name: r.get("name")?,
                view: r.get("is_view")?,
            })
        })
        .collect()
}

impl RawForeignKey {
    /// Reads a catalog row with `constraint_name`, `table_name`, `column_name`,
    /// `foreign_table`, `on_update` and `on_delete`; `action` reads the dialect's rule names.
    fn from_row(
        r: &super::Row,
        action: fn(&str) -> ReferentialAction,
    ) -> Result<RawForeignKey, DbError> {
        Ok(RawForeignKey {
            constraint: r.get("constraint_name")?,
            table: r.get("table_name")?,
            column: r.get("column_name")?,
            foreign_table: r.get("foreign_table")?,
            on_update: action(&r.get::<String>("on_update")?),
            on_delete: action(&r.get::<String>("on_delete")?),
        })
    }
}

//! SQLite catalog reader: `sqlite_master` and the table-valued pragmas, with each table's name
//! bound as a parameter. SQLite keeps the declared type text, which is parsed here into a
//! base type, length, precision and scale.

use std::collections::BTreeMap;

use super::{RawColumn, RawForeignKey, RawIndex, RawSchema, read_tables, referential_action};
use crate::db::{Conn, DbError, Stmt};

const TABLES: &str = "
SELECT name, type = 'view' AS is_view FROM sqlite_master
WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

const COLUMNS: &str = "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid";

const INDEXES: &str = "
SELECT il.name AS index_name, il.origin AS origin, ii.name AS column_name
FROM pragma_index_list(?1) il JOIN pragma_index_info(il.name) ii
WHERE il.\"unique\" = 1 AND il.partial = 0 ORDER BY il.name, ii.seqno";

const FOREIGN_KEYS: &str =
    "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?)";

pub async fn read(conn: &mut Conn) -> Result<RawSchema, DbError> {
    let tables = read_tables(conn, TABLES).await?;
    let mut schema = RawSchema {
        tables: tables.clone(),
        ..RawSchema::default()
    };
    for table in &tables {
        let rows = conn
            .query(&Stmt::new(COLUMNS).bind(table.name.as_str()))
            .await?;
        let mut primary = Vec::new();
        let mut columns = Vec::new();
        for r in &rows {
            // hidden: 0 ordinary, 1 virtual-table hidden, 2/3 generated
            if r.get::<i64>("hidden")? == 1 {
                continue;
            }
            let declared: String = r.get::<Option<String>>("type")?.unwrap_or_default();
            let (base_type, length, scale) = parse_declared_type(&declared);
            let name: String = r.get("name")?;
            let pk: i64 = r.get("pk")?;
            if pk > 0 {
                primary.push((pk, name.clone()));
            }
            let is_decimal = matches!(base_type.as_str(), "decimal" | "numeric");
            columns.push(RawColumn {
                table: table.name.clone(),
                name,
                full_type: declared.clone(),
                nullable: !r.get::<bool>("notnull")? && pk == 0,
                default: r.get("dflt_value")?,
                max_length: length.filter(|_| !is_decimal),
                precision: length.filter(|_| is_decimal),
                scale: scale.filter(|_| is_decimal),
                auto_increment: false,
                json_check: false,
                base_type,
            });
        }
        primary.sort();
        // An INTEGER PRIMARY KEY is the rowid: SQLite numbers new rows itself.
        if let [(_, pk)] = primary.as_slice()
            && let Some(c) = columns.iter_mut().find(|c| &c.name == pk)
        {
            c.auto_increment = !table.view && c.full_type.eq_ignore_ascii_case("integer");
        }
        if !table.view && !primary.is_empty() {
            schema.indexes.push(RawIndex {
                table: table.name.clone(),
                columns: primary.into_iter().map(|(_, n)| n).collect(),
                primary: true,
            });
        }
        schema.columns.extend(columns);

        let mut unique: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in conn
            .query(&Stmt::new(INDEXES).bind(table.name.as_str()))
            .await?
        {
            if r.get::<String>("origin")? == "pk" {
                continue;
            }
            unique
                .entry(r.get("index_name")?)
                .or_default()
                .push(r.get("column_name")?);
        }
        schema
            .indexes
            .extend(unique.into_values().map(|columns| RawIndex {
                table: table.name.clone(),
                columns,
                primary: false,
            }));

        let mut by_id: BTreeMap<i64, Vec<RawForeignKey>> = BTreeMap::new();
        for r in conn
            .query(&Stmt::new(FOREIGN_KEYS).bind(table.name.as_str()))
            .await?
        {
            by_id.entry(r.get("id")?).or_default().push(RawForeignKey {
                constraint: None,
                table: table.name.clone(),
                column: r.get("from")?,
                foreign_table: r.get("table")?,
                on_update: referential_action(&r.get::<String>("on_update")?),
                on_delete: referential_action(&r.get::<String>("on_delete")?),
            });
        }
        schema
            .foreign_keys
            .extend(by_id.into_values().filter(|fks| fks.len() == 1).flatten());
    }
    Ok(schema)
}

/// `VARCHAR(255)` -> (`varchar`, 255, None); `decimal(10, 2)` -> (`decimal`, 10, 2).
fn parse_declared_type(declared: &str) -> (String, Option<u32>, Option<u32>) {
    let declared = declared.trim();
    match declared.split_once('(') {
        None => (declared.to_ascii_lowercase(), None, None),
        Some((base, rest)) => {
            let args: Vec<Option<u32>> = rest
                .trim_end_matches(')')
                .split(',')
                .map(|a| a.trim().parse().ok())
                .collect();
            (
                base.trim().to_ascii_lowercase(),
                args.first().copied().flatten(),
                args.get(1).copied().flatten(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_declared_type;

    #[test]
    fn declared_types_parse() {
        assert_eq!(
            parse_declared_type("VARCHAR(255)"),
            ("varchar".into(), Some(255), None)
        );
        assert_eq!(
            parse_declared_type("decimal(10, 2)"),
            ("decimal".into(), Some(10), Some(2))
        );
        assert_eq!(parse_declared_type("text"), ("text".into(), None, None));
        assert_eq!(parse_declared_type(""), ("".into(), None, None));
        assert_eq!(
            parse_declared_type("double precision"),
            ("double precision".into(), None, None)
        );
    }
}

//! Activity and revisions: every write through the items service leaves a
//! `directus_activity` row and (for creates and updates) a `directus_revisions` row with the
//! item's data and the change, in the write's own transaction. A collection's
//! `accountability` setting decides: `all` (the default), `activity`, or nothing.

use rectus_policies::{Collection, FieldType, SchemaOverview};
use sea_query::{Expr, ExprTrait, Query as Sql, SelectStatement, WithClause};
use serde_json::{Map, Value as Json};

use super::authz::Caller;
use crate::db::json::CONCEALED;
use crate::db::{Conn, DbValue, DialectExt};
use crate::error::ApiError;
use crate::planner::write;

/// Tables whose writes are not themselves recorded.
const UNRECORDED: &[&str] = &[
    "directus_activity",
    "directus_revisions",
    "directus_sessions",
];

/// The create of one item as [`Recorder::create_statement`] writes it: the columns of the
/// item, activity and revision rows (the statement's shape) and, in that order, the values
/// that go into them, the revision's data last.
pub struct CreateParts {
    item: Vec<String>,
    /// Empty when the collection records no activity.
    activity: Vec<String>,
    /// Empty when the collection records no revisions.
    revision: Vec<String>,
    /// The key is in the item's values (else the database makes it).
    given: bool,
    pub values: Vec<DbValue>,
}

impl CreateParts {
    /// The shape as text no two different shapes share.
    pub fn shape_key(&self) -> String {
        let mut key = String::with_capacity(128);
        for columns in [&self.item, &self.activity, &self.revision] {
            crate::planner::cache::key::texts(&mut key, columns);
        }
        key.push(if self.given { 'G' } else { 'g' });
        key
    }
}

pub struct Recorder<'a> {
    pub schema: &'a SchemaOverview,
    pub caller: &'a Caller,
}

/// The `directus_activity` row of `action` by `caller` on `item` of `collection`.
pub fn activity_row(
    caller: &Caller,
    action: &str,
    collection: &str,
    item: &str,
) -> Map<String, Json> {
    let accountability = &caller.accountability;
    let mut row = Map::new();
    row.insert("action".into(), action.into());
    row.insert(
        "user".into(),
        accountability.user.clone().map_or(Json::Null, Json::String),
    );
    row.insert(
        "ip".into(),
        accountability
            .ip
            .map_or(Json::Null, |ip| ip.to_string().into()),
    );
    row.insert("collection".into(), collection.into());
    row.insert("item".into(), item.into());
    row
}

fn key_text(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Item data as kept in a revision: hashes and concealed values never stored in clear.
pub fn masked(collection: &Collection, values: Map<String, Json>) -> Json {
    Json::Object(
        values
            .into_iter()
            .map(|(k, v)| {
                let hidden = collection
                    .field(&k)
                    .is_some_and(|f| f.kind == FieldType::Hash || f.has_special("conceal"));
                if hidden && !Json::is_null(&v) {
                    (k, Json::String(CONCEALED.into()))
                } else {
                    (k, v)
                }
            })
            .collect(),
    )
}

pub fn values_json(values: &[(String, DbValue)]) -> Map<String, Json> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect()
}

impl Recorder<'_> {
    fn level(&self, collection: &Collection) -> (bool, bool) {
        if UNRECORDED.contains(&collection.collection.as_str()) {
            return (false, false);
        }
        match collection.accountability.as_deref() {
            Some("all") => (true, true),
            Some("activity") => (true, false),
            _ => (false, false),
        }
    }

    /// Records `action` on item `key`; `data` and `delta` make the revision.
    pub async fn record(
        &self,
        conn: &mut Conn,
        action: &str,
        collection: &Collection,
        key: &Json,
        revision: Option<(Json, Json)>,
    ) -> Result<(), ApiError> {
        let (activity, revisions) = self.level(collection);
        if !activity {
            return Ok(());
        }
        let Some(table) = self.schema.collection("directus_activity") else {
            return Ok(());
        };
        let row = activity_row(self.caller, action, &collection.collection, &key_text(key));
        let activity_values = write::row_values(table, &row)?;
        let revisions_table = self.schema.collection("directus_revisions");
        let (Some((data, delta)), true, Some(revisions_table)) =
            (revision, revisions, revisions_table)
        else {
            insert_returning_key(conn, table, activity_values).await?;
            return Ok(());
        };
        let mut revision = Map::new();
        revision.insert("collection".into(), collection.collection.clone().into());
        revision.insert("item".into(), key_text(key).into());
        revision.insert("data".into(), data);
        revision.insert("delta".into(), delta);
        if conn.dialect() == rectus_policies::Dialect::Postgres {
            // One round trip: the activity row in a CTE, the revision pointing at it.
            let revision_values = write::row_values(revisions_table, &revision)?;
            let stmt = activity_with_revision(table, activity_values, revision_values)?;
            conn.execute(&stmt).await?;
            return Ok(());
        }
        let id = insert_returning_key(conn, table, activity_values).await?;
        revision.insert("activity".into(), id);
        let values = write::row_values(revisions_table, &revision)?;
        let stmt = write::insert(conn.dialect(), revisions_table, values, false)?;
        conn.execute(&stmt).await?;
        Ok(())
    }

    /// What the create of one item (see [`Self::create_statement`]) writes, split into its
    /// shape and the values that change from one create to the next.
    pub fn create_parts(
        &self,
        collection: &Collection,
        values: Vec<(String, DbValue)>,
    ) -> Result<CreateParts, ApiError> {
        let pk = &collection.primary_key;
        let given = values
            .iter()
            .find(|(k, v)| k == pk && !v.is_null())
            .map(|(_, v)| v.to_json());
        let written = masked(collection, values_json(&values));
        let (item, mut inputs): (Vec<String>, Vec<DbValue>) = values.into_iter().unzip();
        let mut parts = CreateParts {
            item,
            activity: Vec::new(),
            revision: Vec::new(),
            given: given.is_some(),
            values: Vec::new(),
        };
        let (activity, revisions) = self.level(collection);
        let Some(table) = self
            .schema
            .collection("directus_activity")
            .filter(|_| activity)
        else {
            parts.values = inputs;
            return Ok(parts);
        };
        let mut row = activity_row(self.caller, "create", &collection.collection, "");
        row.remove("item");
        for (column, value) in write::row_values(table, &row)? {
            parts.activity.push(column);
            inputs.push(value);
        }
        if let (true, Some(revisions_table)) =
            (revisions, self.schema.collection("directus_revisions"))
        {
            let mut revision = Map::new();
            revision.insert("collection".into(), collection.collection.clone().into());
            revision.insert("delta".into(), written.clone());
            for (column, value) in write::row_values(revisions_table, &revision)? {
                parts.revision.push(column);
                inputs.push(value);
            }
            inputs.push(match given {
                Some(key) => {
                    let mut data = written;
                    if let Json::Object(map) = &mut data {
                        map.insert(pk.clone(), key);
                    }
                    DbValue::Json(data)
                }
                // The key exists only in the statement, where it is appended to this head
                // of the object's text (not merged through jsonb, which refuses the
                // `\u0000` json keeps).
                None => {
                    let text = written.to_string();
                    DbValue::Text(match text.strip_suffix('}') {
                        Some("{") | None => "{".to_string(),
                        Some(head) => format!("{head},"),
                    })
                }
            });
        }
        parts.values = inputs;
        Ok(parts)
    }

    /// The create of one item with its activity and revision as ONE PostgreSQL statement
    /// that answers the new key (column named as the key) and, given `read_back` (from
    /// [`crate::planner::read::plan_created_read`]), the item as the caller reads it
    /// (`__json`, NULL when they may not). The item's INSERT and the records' INSERTs, which
    /// read the key it generated, are data-modifying CTEs; a statement is atomic by itself,
    /// so such a create needs no transaction and one round trip instead of five.
    ///
    /// `inputs` are the expressions of `parts.values`, in their order: the values
    /// themselves, or stand-ins where the statement is built once for its shape and reused
    /// ([`crate::planner::cache::PlanCache::create_statement`]).
    pub fn create_statement(
        &self,
        collection: &Collection,
        parts: &CreateParts,
        inputs: Vec<Expr>,
        read_back: Option<SelectStatement>,
    ) -> Result<crate::db::Stmt, ApiError> {
        const ACTIVITY: &str = "__activity";
        let mut inputs = inputs.into_iter();
        // The next values, paired with the columns they go into.
        let mut take = |columns: &[String]| -> Result<Vec<(String, Expr)>, ApiError> {
            let pairs: Vec<(String, Expr)> = columns.iter().cloned().zip(inputs.by_ref()).collect();
            match pairs.len() == columns.len() {
                true => Ok(pairs),
                false => Err(ApiError::internal(
                    &"a create's shape took more values than it has",
                )),
            }
        };
        // The read-back reads the new row through a CTE that shadows the table's name.
        let item: String = match read_back {
            Some(_) => collection.collection.clone(),
            None => "__item".into(),
        };
        let pk = collection.primary_key.clone();
        let (columns, values) = take(&parts.item)?.into_iter().unzip();
        let mut insert = write::insert_exprs(collection, columns, values)?;
        match read_back {
            Some(_) => insert.returning_all(),
            None => insert.returning_col(pk.clone()),
        };
        let mut with = WithClause::new();
        with.cte(cte(insert, &item));
        if let (false, Some(table)) = (
            parts.activity.is_empty(),
            self.schema.collection("directus_activity"),
        ) {
            let mut pairs = take(&parts.activity)?;
            pairs.push((
                "item".into(),
                Expr::col((item.clone(), pk.clone())).cast_as("text"),
            ));
            let mut insert = insert_select(table, pairs, &[&item])?;
            insert.returning(Sql::returning().columns([table.primary_key.clone(), "item".into()]));
            with.cte(cte(insert, ACTIVITY));
            if let (false, Some(revisions_table)) = (
                parts.revision.is_empty(),
                self.schema.collection("directus_revisions"),
            ) {
                let mut pairs = take(&parts.revision)?;
                let Some((_, data)) = take(&["data".to_string()])?.pop() else {
                    return Err(ApiError::internal(&"a create's revision has no data"));
                };
                let data = match parts.given {
                    true => data,
                    false => Expr::cust_with_exprs(
                        "CAST(CAST($1 AS text) || to_json(CAST($2 AS text))::text || ':' || to_json($3)::text || '}' AS json)",
                        [
                            data,
                            Expr::val(pk.clone()),
                            Expr::col((item.clone(), pk.clone())),
                        ],
                    ),
                };
                pairs.push((
                    "activity".into(),
                    Expr::col((ACTIVITY, table.primary_key.clone())),
                ));
                pairs.push(("item".into(), Expr::col((ACTIVITY, "item"))));
                pairs.push(("data".into(), data));
                let insert = insert_select(revisions_table, pairs, &[ACTIVITY, &item])?;
                with.cte(cte(insert, "__revision"));
            }
        }
        let mut answer = Sql::select();
        answer.column(("__new", pk.clone())).from_as(item, "__new");
        if let Some(read) = read_back {
            answer.expr_as(Expr::SubQuery(None, Box::new(read.into())), "__json");
        }
        build_with(with, answer)
    }

    /// The whole item as it is now in the transaction, for a revision's `data`.
    pub async fn current(
        &self,
        conn: &mut Conn,
        collection: &Collection,
        key: &DbValue,
    ) -> Result<Map<String, Json>, ApiError> {
        let columns: Vec<String> = collection
            .fields
            .values()
            .filter(|f| !f.is_alias())
            .map(|f| f.field.clone())
            .collect();
        let select = Sql::select()
            .columns(columns.iter().cloned())
            .from(collection.collection.clone())
            .and_where(
                Expr::col(collection.primary_key.clone())
                    .eq(Expr::val(write::sea_value(key.clone()))),
            )
            .to_owned();
        let row = conn.query_opt(&conn.dialect().build(&select)?).await?;
        Ok(row
            .map(|r| {
                columns
                    .iter()
                    .map(|c| {
                        (
                            c.clone(),
                            r.value(c).map(DbValue::to_json).unwrap_or(Json::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// `WITH … query` for PostgreSQL, assembled in place: sea-query's `WithClause::query`
/// copies the finished statement.
fn build_with(
    with: WithClause,
    query: impl Into<sea_query::SubQueryStatement>,
) -> Result<crate::db::Stmt, ApiError> {
    let mut statement = sea_query::WithQuery::new();
    statement.with_clause(with).query(query);
    Ok(rectus_policies::Dialect::Postgres.build(&statement)?)
}

fn cte(insert: sea_query::InsertStatement, name: &str) -> sea_query::CommonTableExpression {
    // Built in place: the builder's `to_owned()` would copy the whole INSERT again.
    let mut cte = sea_query::CommonTableExpression::new();
    cte.query(insert).table_name(name.to_string());
    cte
}

/// `INSERT INTO table (columns) SELECT exprs FROM sources`: one row per row of the
/// sources (each here has one).
fn insert_select(
    table: &Collection,
    pairs: Vec<(String, Expr)>,
    sources: &[&str],
) -> Result<sea_query::InsertStatement, ApiError> {
    let (columns, exprs): (Vec<String>, Vec<Expr>) = pairs.into_iter().unzip();
    let mut select = Sql::select();
    select.exprs(exprs);
    for source in sources {
        select.from(source.to_string());
    }
    let mut insert = Sql::insert();
    insert
        .into_table(table.collection.clone())
        .columns(columns)
        .select_from(select)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(insert)
}

/// `WITH a AS (INSERT INTO directus_activity … RETURNING id) INSERT INTO directus_revisions
/// (activity, …) VALUES ((SELECT id FROM a), …)` (PostgreSQL).
fn activity_with_revision(
    activity: &Collection,
    activity_values: Vec<(String, DbValue)>,
    revision_values: Vec<(String, DbValue)>,
) -> Result<crate::db::Stmt, ApiError> {
    let insert_activity = write::insert_statement(activity, activity_values, true)?;
    let new_id = Sql::select()
        .column(activity.primary_key.clone())
        .from("a")
        .to_owned();
    let (columns, values): (Vec<String>, Vec<DbValue>) = revision_values.into_iter().unzip();
    let mut insert_revision = Sql::insert();
    insert_revision
        .into_table("directus_revisions")
        .columns(std::iter::once("activity".to_string()).chain(columns))
        .values(
            std::iter::once(sea_query::Expr::SubQuery(None, Box::new(new_id.into())))
                .chain(values.into_iter().map(|v| Expr::val(write::sea_value(v)))),
        )
        .map_err(|e| ApiError::internal(&e))?;
    let mut with = WithClause::new();
    with.cte(cte(insert_activity, "a"));
    build_with(with, insert_revision)
}

/// Inserts a row and returns its generated key: `RETURNING` where the database has it, the
/// last insert id on MySQL.
pub async fn insert_returning_key(
    conn: &mut Conn,
    collection: &Collection,
    values: Vec<(String, DbValue)>,
) -> Result<Json, ApiError> {
    let dialect = conn.dialect();
    let pk = &collection.primary_key;
    if let Some((_, given)) = values.iter().find(|(k, v)| k == pk && !v.is_null()) {
        let key = given.to_json();
        conn.execute(&write::insert(dialect, collection, values, false)?)
            .await
            .map_err(|e| ApiError::from_write(e, collection))?;
        return Ok(key);
    }
    if write::supports_returning(dialect) {
        let row = conn
            .query_opt(&write::insert(dialect, collection, values, true)?)
            .await
            .map_err(|e| ApiError::from_write(e, collection))?
            .ok_or_else(|| ApiError::internal(&"the insert returned no key"))?;
        return Ok(row.value(pk)?.to_json());
    }
    let result = conn
        .execute(&write::insert(dialect, collection, values, false)?)
        .await
        .map_err(|e| ApiError::from_write(e, collection))?;
    result
        .last_insert_id
        .map(Json::from)
        .ok_or_else(|| ApiError::internal(&"the database reported no generated key"))
}

//! The JSON expression of a fields tree: columns as the caller may see them, many-to-one
//! relations as the related object, one-to-many relations (and many-to-many, through the
//! junction) as arrays — each related read a correlated subquery inside the one statement,
//! under the related collection's read permission.

use rectus_policies::filter::{FieldAccess, SqlContext, date_part};
use rectus_policies::{Collection, FieldType, Relation};
use sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query as Sql};
use serde_json::Value as Json;

use super::access::ReadAccess;
use super::deep::DeepOptions;
use super::read::{forbidden_field, invalid, rule_error};
use super::tree::{Selected, Tree, can_read_collection, function_field, split_function};
use crate::db::{Dialect, json};
use crate::error::ApiError;

/// The key a many-to-one joins on. The caller already sees the foreign key (it is checked
/// like any field); the related row still has to pass its read rule, and its fields their
/// own checks, so the related key itself needs no field permission (Directus reads it to
/// follow the relation, too).
fn related_key(related: &Collection, table: &str) -> Expr {
    Expr::col((table.to_string(), related.primary_key.clone()))
}

/// Whether PostgreSQL prints `key` in JSON as it is (no quote, backslash or control
/// character to escape), so that it can be found in the text by its bytes.
fn plain_key(key: &str) -> bool {
    key.chars()
        .all(|c| c != '"' && c != '\\' && !c.is_control())
}

/// Whether a column's JSON (as [`json::value`] makes it on PostgreSQL) is a scalar or an
/// array of strings, never an object: the types that only scalar column types introspect
/// as, and `uuid` only on a `uuid` column (the special flag can mark any column).
fn flat_value(f: &rectus_policies::Field) -> bool {
    use FieldType as T;
    match f.kind {
        T::String | T::Text | T::Integer | T::BigInteger | T::Float | T::Decimal | T::Boolean => {
            true
        }
        T::Date | T::Time | T::DateTime | T::Timestamp | T::Binary | T::Hash | T::Csv => true,
        T::Uuid => f.db_type.as_deref() == Some("uuid"),
        T::Json | T::Alias | T::Unknown => false,
    }
}

/// The keys and values of a read's items, and the keys of their timestamps left to
/// PostgreSQL's printing ([`Builder::top_pairs`]).
pub type TopPairs = (Vec<(String, Expr)>, Vec<String>);

/// Everything the JSON of a tree needs.
pub struct Builder<'a> {
    pub dialect: Dialect,
    pub access: &'a ReadAccess<'a>,
    pub sql: &'a SqlContext<'a>,
    /// How many related items a one-to-many field shows.
    pub nested_limit: Option<u64>,
}

impl Builder<'_> {
    /// The row condition of `collection` under the alias `table`.
    fn rows(&self, collection: &str, table: &str) -> Result<sea_query::Condition, ApiError> {
        match self.access.item_filter(collection).map_err(rule_error)? {
            None => Ok(sea_query::Condition::all()),
            Some(filter) => rectus_policies::filter::to_condition(
                &filter,
                collection,
                table,
                &self.sql.trusted(),
            )
            .map_err(rule_error),
        }
    }

    fn column(&self, collection: &str, table: &str, field: &str) -> Result<Expr, ApiError> {
        self.sql
            .column(collection, table, field)
            .map_err(rule_error)
    }

    /// [`Self::pairs`] of the items a read answers, with the keys whose values PostgreSQL
    /// prints as its own JSON timestamps, to be put in Directus's form after the statement
    /// ([`crate::db::timestamps`], which finds them by their keys): their own `timestamp`
    /// columns under plain keys, when no value of the items can hold an object (a JSON
    /// column, a relation) in which such a key could appear again. Otherwise, and on the
    /// other dialects, the statement formats them.
    pub fn top_pairs(
        &self,
        tree: &Tree,
        table: &str,
        deep: Option<&Json>,
    ) -> Result<TopPairs, ApiError> {
        let flat = tree.selected.iter().all(|(_, s)| match s {
            Selected::Column(f) => flat_value(f),
            Selected::Date { .. } => true,
            // Arrays of related keys.
            Selected::Keys { related, .. } => related.primary_key_field().is_some_and(flat_value),
            _ => false,
        });
        let mut timestamps = (self.dialect == Dialect::Postgres && flat).then(Vec::new);
        let pairs = self.object_pairs(tree, table, deep, timestamps.as_mut())?;
        Ok((pairs, timestamps.unwrap_or_default()))
    }

    /// The keys and values of one item of `tree`, whose table is named `table`; `deep` holds
    /// the `deep` parameter's options for this level's relations.
    pub fn pairs(
        &self,
        tree: &Tree,
        table: &str,
        deep: Option<&Json>,
    ) -> Result<Vec<(String, Expr)>, ApiError> {
        self.object_pairs(tree, table, deep, None)
    }

    /// [`Self::pairs`]; with `timestamps`, `timestamp` columns under plain keys are left as
    /// they are and their keys added there ([`Self::top_pairs`]).
    fn object_pairs(
        &self,
        tree: &Tree,
        table: &str,
        deep: Option<&Json>,
        mut timestamps: Option<&mut Vec<String>>,
    ) -> Result<Vec<(String, Expr)>, ApiError> {
        let name = tree.collection.collection.as_str();
        let mut pairs = Vec::with_capacity(tree.selected.len());
        for (out, s) in &tree.selected {
            let out = out.clone();
            match s {
                Selected::Column(f) => {
                    let column = self.column(name, table, &f.field)?;
                    let concealed = f.has_special("conceal");
                    let value = match timestamps.as_mut() {
                        Some(keys)
                            if f.kind == FieldType::Timestamp && !concealed && plain_key(&out) =>
                        {
                            keys.push(out.clone());
                            column
                        }
                        _ => json::value(self.dialect, f.kind, concealed, column),
                    };
                    pairs.push((out, value));
                }
                Selected::ManyToOne {
                    field,
                    related,
                    tree,
                } => {
                    let node = deep.and_then(|d| d.get(&out));
                    let options = DeepOptions::read(node, &out)?;
                    let alias = self.sql.alias();
                    let inner = self.pairs(tree, &alias, node)?;
                    let key = self.column(name, table, &field.field)?;
                    let related_key = related_key(related, &alias);
                    let mut select = Sql::select();
                    select
                        .from_as(related.collection.clone(), alias.clone())
                        .and_where(related_key.eq(key))
                        .cond_where(self.rows(&related.collection, &alias)?)
                        .cond_where(self.deep_filter(&options, related, &alias)?)
                        .limit(1);
                    let select = json::object_json_rows(self.dialect, inner, select);
                    let sub = Expr::SubQuery(None, Box::new(select.into()));
                    pairs.push((out, json::nested(self.dialect, sub)));
                }
                Selected::OneToMany {
                    field: _,
                    relation,
                    related,
                    tree,
                } => {
                    let node = deep.and_then(|d| d.get(&out));
                    let alias = self.sql.alias();
                    let inner = self.pairs(tree, &alias, node)?;
                    let options = DeepOptions::read(node, &out)?;
                    let value = ListValue::Object(inner);
                    pairs.push((
                        out,
                        self.list(name, table, relation, related, &alias, value, &options)?,
                    ));
                }
                Selected::Date {
                    field, function, ..
                } => {
                    let column = self.column(name, table, &field.field)?;
                    pairs.push((out, date_part(self.dialect, *function, column)));
                }
                Selected::Count {
                    relation, related, ..
                } => {
                    pairs.push((out, self.count(name, table, relation, related)?));
                }
                Selected::Keys {
                    field: _,
                    relation,
                    related,
                } => {
                    let alias = self.sql.alias();
                    let key = self.column(&related.collection, &alias, &related.primary_key)?;
                    let pk = related
                        .primary_key_field()
                        .map(|f| f.kind)
                        .unwrap_or(rectus_policies::FieldType::Integer);
                    let value = ListValue::Scalar(json::element(
                        self.dialect,
                        json::value(self.dialect, pk, false, key),
                    ));
                    let options = DeepOptions::read(deep.and_then(|d| d.get(&out)), &out)?;
                    pairs.push((
                        out,
                        self.list(name, table, relation, related, &alias, value, &options)?,
                    ));
                }
            }
        }
        Ok(pairs)
    }

    /// A `deep` `_filter` and `_search`, for the related collection with the caller's
    /// field checks.
    fn deep_filter(
        &self,
        options: &DeepOptions,
        related: &Collection,
        alias: &str,
    ) -> Result<sea_query::Condition, ApiError> {
        let compile = |parsed: &rectus_policies::filter::Filter| {
            rectus_policies::filter::to_condition(parsed, &related.collection, alias, self.sql)
                .map_err(super::read::filter_error)
        };
        let mut condition = sea_query::Condition::all();
        if let Some(json) = &options.filter {
            let root = format!("deep.{}._filter", options.path);
            let parsed = rectus_policies::filter::parse(
                &related.collection,
                json,
                &rectus_policies::filter::ParseOptions {
                    schema: self.sql.schema,
                    variables: self.access.variables,
                    allow_regex: false,
                    access: if self.access.is_admin() {
                        None
                    } else {
                        Some(self.access)
                    },
                    root: &root,
                },
            )
            .map_err(super::read::filter_error)?;
            condition = condition.add(compile(&parsed)?);
        }
        if let Some(term) = options.search.as_deref().filter(|t| !t.is_empty()) {
            condition = condition.add(compile(&super::read::search_filter(
                related,
                self.access,
                term,
            ))?);
        }
        Ok(condition)
    }

    /// How many related items of a one-to-many relation the caller may see.
    pub fn count(
        &self,
        parent: &str,
        parent_table: &str,
        relation: &Relation,
        related: &Collection,
    ) -> Result<Expr, ApiError> {
        let parent_collection = self
            .sql
            .schema
            .collection(parent)
            .ok_or_else(ApiError::forbidden)?;
        let alias = self.sql.alias();
        let parent_key = self.column(parent, parent_table, &parent_collection.primary_key)?;
        let foreign_key = self.column(&related.collection, &alias, &relation.many_field)?;
        let mut select = Sql::select();
        select
            .expr(Expr::cust("COUNT(*)"))
            .from_as(related.collection.clone(), alias.clone())
            .and_where(foreign_key.eq(parent_key))
            .cond_where(self.rows(&related.collection, &alias)?);
        Ok(Expr::SubQuery(None, Box::new(select.into())))
    }

    /// What a `sort` entry orders by: a field as the caller sees it, a function of one, or a
    /// field reached through many-to-one relations (`customer.name`).
    pub fn sort_expr(
        &self,
        collection: &Collection,
        table: &str,
        path: &str,
    ) -> Result<Expr, ApiError> {
        let name = collection.collection.as_str();
        let schema = self.sql.schema;
        if split_function(path).is_some() {
            return match function_field(schema, self.access, collection, path)? {
                Selected::Date {
                    field, function, ..
                } => Ok(date_part(
                    self.dialect,
                    function,
                    self.column(name, table, &field.field)?,
                )),
                Selected::Count {
                    relation, related, ..
                } => self.count(name, table, relation, related),
                _ => Err(invalid(format!(
                    "\"sort\": \"{path}\" cannot be sorted by."
                ))),
            };
        }
        let (first, rest) = match path.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        let field = collection
            .field(first)
            .filter(|_| self.access.can_read(name, first))
            .ok_or_else(|| forbidden_field(name, first))?;
        if field.kind == rectus_policies::FieldType::Hash
            || field.has_special("conceal")
            || field.is_alias()
        {
            return Err(invalid(format!(
                "\"sort\": \"{path}\" cannot be sorted by."
            )));
        }
        let Some(rest) = rest else {
            return self.column(name, table, first);
        };
        let related = schema
            .many_to_one(name, first)
            .and_then(|r| r.one_collection.as_deref())
            .and_then(|c| schema.collection(c))
            .filter(|c| can_read_collection(self.access, &c.collection))
            .ok_or_else(|| invalid(format!("\"sort\": \"{first}\" is not a many-to-one field.")))?;
        let alias = self.sql.alias();
        let key = self.column(name, table, first)?;
        let related_key = related_key(related, &alias);
        let inner = self.sort_expr(related, &alias, rest)?;
        let mut select = Sql::select();
        select
            .expr(inner)
            .from_as(related.collection.clone(), alias.clone())
            .and_where(related_key.eq(key))
            .cond_where(self.rows(&related.collection, &alias)?)
            .limit(1);
        Ok(Expr::SubQuery(None, Box::new(select.into())))
    }

    /// The array of `value` over the related items of a one-to-many relation, filtered,
    /// sorted and limited by the relation's `deep` options.
    #[allow(clippy::too_many_arguments)]
    fn list(
        &self,
        parent: &str,
        parent_table: &str,
        relation: &Relation,
        related: &Collection,
        alias: &str,
        value: ListValue,
        options: &DeepOptions,
    ) -> Result<Expr, ApiError> {
        let parent_collection = self
            .sql
            .schema
            .collection(parent)
            .ok_or_else(ApiError::forbidden)?;
        let parent_key = self.column(parent, parent_table, &parent_collection.primary_key)?;
        let foreign_key = self.column(&related.collection, alias, &relation.many_field)?;
        let default_sort = relation
            .sort_field
            .clone()
            .or_else(|| related.sort_field.clone())
            .unwrap_or_else(|| related.primary_key.clone());
        let entries = if options.sort.is_empty() {
            vec![default_sort]
        } else {
            options.sort.clone()
        };
        let mut order = Vec::with_capacity(entries.len() + 1);
        for entry in &entries {
            let (path, direction) = match entry.strip_prefix('-') {
                Some(p) => (p, Order::Desc),
                None => (entry.as_str(), Order::Asc),
            };
            order.push((self.sort_expr(related, alias, path)?, direction));
        }
        if !entries
            .iter()
            .any(|e| e.trim_start_matches('-') == related.primary_key)
        {
            order.push((
                Expr::col((alias.to_string(), related.primary_key.clone())),
                Order::Asc,
            ));
        }
        let limit = match options.limit {
            Some(-1) => None,
            Some(l) => Some(Ord::max(l, 0) as u64),
            None => self.nested_limit,
        };
        let offset = match (options.page, limit) {
            (Some(p), Some(l)) => (Ord::max(p, 1) as u64 - 1).saturating_mul(l),
            _ => Ord::max(options.offset.unwrap_or(0), 0) as u64,
        };
        let rows = self.rows(&related.collection, alias)?;
        let wanted = self.deep_filter(options, related, alias)?;
        if !json::list_uses_derived_table(self.dialect) {
            let mut select = Sql::select();
            select
                .expr(json::array(
                    self.dialect,
                    value.into_json(self.dialect),
                    order,
                    limit,
                    offset,
                ))
                .from_as(related.collection.clone(), alias.to_string())
                .and_where(foreign_key.eq(parent_key))
                .cond_where(rows)
                .cond_where(wanted);
            return Ok(json::nested(
                self.dialect,
                Expr::SubQuery(None, Box::new(select.into())),
            ));
        }
        // The page of related rows is cut and sorted first, whole, under the related table's
        // own name; their JSON is built from it and aggregated in its order.
        let mut inner = Sql::select();
        inner
            .column((Alias::new(alias), Asterisk))
            .from_as(related.collection.clone(), alias.to_string())
            .and_where(foreign_key.eq(parent_key))
            .cond_where(rows)
            .cond_where(wanted);
        for (expr, direction) in order.iter().cloned() {
            inner.order_by_expr(expr, direction);
        }
        match limit {
            Some(l) => {
                inner.limit(l);
            }
            None if offset > 0 => {
                inner.limit(i64::MAX as u64);
            }
            None => {}
        }
        if offset > 0 {
            inner.offset(offset);
        }
        if let ListValue::Object(pairs) = &value {
            let mut page = Sql::select();
            page.from_subquery(inner.clone(), Alias::new(alias));
            if let Some(outer) = json::object_array(self.dialect, pairs, page) {
                return Ok(json::nested(
                    self.dialect,
                    Expr::SubQuery(None, Box::new(outer.into())),
                ));
            }
        }
        let value = value.into_json(self.dialect);
        let array = match json::keeps_page_order(self.dialect) {
            true => json::array_in_page_order(value),
            false => json::array(self.dialect, value, order, None, 0),
        };
        let mut outer = Sql::select();
        outer.expr(array).from_subquery(inner, Alias::new(alias));
        Ok(json::nested(
            self.dialect,
            Expr::SubQuery(None, Box::new(outer.into())),
        ))
    }
}

/// What a one-to-many list holds per related item.
enum ListValue {
    /// An object of these keys and values.
    Object(Vec<(String, Expr)>),
    /// One JSON value (a related key).
    Scalar(Expr),
}

impl ListValue {
    fn into_json(self, dialect: Dialect) -> Expr {
        match self {
            ListValue::Object(pairs) => json::object_json(dialect, pairs),
            ListValue::Scalar(value) => value,
        }
    }
}

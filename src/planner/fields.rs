//! The `fields` parameter as a tree over the schema, and its JSON expression: columns as the
//! caller may see them, many-to-one relations as the related object, one-to-many relations
//! (and many-to-many, through the junction) as arrays — each related read a correlated
//! subquery inside the one statement, under the related collection's read permission.

use std::collections::BTreeMap;

use rectus_policies::filter::{DateFunction, FieldAccess, SqlContext, date_part};
use rectus_policies::{Action, Collection, Field, Relation, SchemaOverview};
use sea_query::{Expr, ExprTrait, Order, Query as Sql};
use serde_json::Value as Json;

use super::access::ReadAccess;
use super::deep::DeepOptions;
use super::read::{forbidden_field, invalid, rule_error};
use crate::db::{Dialect, json};
use crate::error::ApiError;

/// How deep `fields` may nest relations.
const MAX_DEPTH: usize = 10;

/// One output key of an item.
pub enum Selected<'s> {
    Column(&'s Field),
    /// `year(date_created)` and the like, answered as `date_created_year`.
    Date {
        key: String,
        field: &'s Field,
        function: DateFunction,
    },
    /// `count(orders)` of a one-to-many field, answered as `orders_count`.
    Count {
        key: String,
        relation: &'s Relation,
        related: &'s Collection,
    },
    /// A one-to-many field not expanded: the keys of the related items.
    Keys {
        field: &'s Field,
        relation: &'s Relation,
        related: &'s Collection,
    },
    /// A many-to-one field expanded into the related item.
    ManyToOne {
        field: &'s Field,
        related: &'s Collection,
        tree: Tree<'s>,
    },
    /// A one-to-many field expanded into the related items.
    OneToMany {
        field: &'s Field,
        relation: &'s Relation,
        related: &'s Collection,
        tree: Tree<'s>,
    },
}

pub struct Tree<'s> {
    pub collection: &'s Collection,
    /// Output key (the field name, its alias, or `name_function`) and what it holds.
    pub selected: Vec<(String, Selected<'s>)>,
}

fn can_read_collection(access: &ReadAccess, name: &str) -> bool {
    access
        .caller
        .permissions
        .rules(name, Action::Read)
        .is_some()
}

/// Builds the tree of `requested` (`fields` entries, `a.b.c` paths, `*` wildcards) on
/// `collection`. Unreadable fields named explicitly are FORBIDDEN; wildcards quietly leave
/// them out; relations into collections the caller cannot read are dropped.
pub fn tree<'s>(
    schema: &'s SchemaOverview,
    access: &ReadAccess,
    collection: &'s Collection,
    requested: &[String],
    aliases: &[(String, String)],
) -> Result<Tree<'s>, ApiError> {
    for (alias, target) in aliases {
        if alias.is_empty() || alias.contains(['.', '(', '*']) || collection.field(alias).is_some()
        {
            return Err(invalid(format!(
                "\"alias\": \"{alias}\" cannot be used as an alias."
            )));
        }
        if target.contains('.') {
            return Err(invalid(format!(
                "\"alias\": \"{alias}\" must name a field of \"{}\", not a path.",
                collection.collection
            )));
        }
    }
    let paths: Vec<Vec<String>> = if requested.is_empty() {
        vec![vec!["*".to_string()]]
    } else {
        requested
            .iter()
            .map(|p| p.split('.').map(|s| s.trim().to_string()).collect())
            .collect()
    };
    build(schema, access, collection, paths, aliases, 0)
}

fn build<'s>(
    schema: &'s SchemaOverview,
    access: &ReadAccess,
    collection: &'s Collection,
    paths: Vec<Vec<String>>,
    aliases: &[(String, String)],
    depth: usize,
) -> Result<Tree<'s>, ApiError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "\"fields\" may nest at most {MAX_DEPTH} relations deep."
        )));
    }
    let name = collection.collection.as_str();
    let mut explicit: BTreeMap<String, (&'s str, Vec<Vec<String>>)> = BTreeMap::new();
    let mut wildcard: Option<Vec<Vec<String>>> = None;
    let mut functions: Vec<(String, Selected<'s>)> = Vec::new();
    for path in paths {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        if first.is_empty() {
            return Err(invalid("\"fields\" has an empty field name."));
        }
        if first == "*" {
            wildcard.get_or_insert_with(Vec::new).push(rest.to_vec());
            continue;
        }
        let aliased = aliases.iter().find(|(a, _)| a == first);
        let target = aliased.map_or(first.as_str(), |(_, t)| t.as_str());
        if target.contains('(') {
            if !rest.is_empty() {
                return Err(invalid(format!(
                    "\"fields\": \"{first}\" has no fields below it."
                )));
            }
            let function = function_field(schema, access, collection, target)?;
            let key = match (&function, aliased) {
                (_, Some((alias, _))) => alias.clone(),
                (Selected::Date { key, .. } | Selected::Count { key, .. }, None) => key.clone(),
                _ => first.clone(),
            };
            functions.push((key, function));
            continue;
        }
        let field = collection
            .field(target)
            .filter(|_| access.can_read(name, target))
            .ok_or_else(|| forbidden_field(name, target))?;
        explicit
            .entry(first.clone())
            .or_insert_with(|| (field.field.as_str(), Vec::new()))
            .1
            .push(rest.to_vec());
    }
    let mut wanted: BTreeMap<String, (&'s str, Vec<Vec<String>>, bool)> = explicit
        .into_iter()
        .map(|(k, (f, v))| (k, (f, v, true)))
        .collect();
    if let Some(children) = wildcard {
        for field in collection.fields.values() {
            if wanted.contains_key(field.field.as_str()) || !access.can_read(name, &field.field) {
                continue;
            }
            wanted.insert(
                field.field.clone(),
                (field.field.as_str(), children.clone(), false),
            );
        }
        // Directus lists aliases of plain and relational fields among the wildcard's fields.
        for (alias, target) in aliases {
            match collection.field(target) {
                Some(field) if !wanted.contains_key(alias) && access.can_read(name, target) => {
                    wanted.insert(
                        alias.clone(),
                        (field.field.as_str(), children.clone(), false),
                    );
                }
                _ => {}
            }
        }
    }

    let mut selected = Vec::new();
    for (key, (field_name, children, explicit)) in wanted {
        let Some(field) = collection.field(field_name) else {
            continue;
        };
        let nested: Vec<Vec<String>> = children.into_iter().filter(|p| !p.is_empty()).collect();
        let m2o = schema
            .many_to_one(name, field_name)
            .and_then(|r| r.one_collection.as_deref())
            .and_then(|c| schema.collection(c));
        let o2m = field
            .is_alias()
            .then(|| schema.one_to_many_by_alias(name, field_name))
            .flatten()
            .and_then(|r| schema.collection(&r.many_collection).map(|c| (r, c)));
        match (field.is_alias(), m2o, o2m, nested.is_empty()) {
            (false, _, _, true) => selected.push((key, Selected::Column(field))),
            (false, Some(related), _, false) => {
                if can_read_collection(access, &related.collection) {
                    let tree = build(schema, access, related, nested, &[], depth + 1)?;
                    selected.push((
                        key,
                        Selected::ManyToOne {
                            field,
                            related,
                            tree,
                        },
                    ));
                }
            }
            (false, None, _, false) => {
                if explicit {
                    return Err(invalid(format!(
                        "\"fields\": \"{field_name}\" is not a relational field."
                    )));
                }
                selected.push((key, Selected::Column(field)));
            }
            (true, _, Some((relation, related)), empty) => {
                if !can_read_collection(access, &related.collection) {
                    continue;
                }
                if empty {
                    selected.push((
                        key,
                        Selected::Keys {
                            field,
                            relation,
                            related,
                        },
                    ));
                } else {
                    let tree = build(schema, access, related, nested, &[], depth + 1)?;
                    selected.push((
                        key,
                        Selected::OneToMany {
                            field,
                            relation,
                            related,
                            tree,
                        },
                    ));
                }
            }
            // Presentation aliases and relations rectus cannot follow have no value.
            (true, _, None, _) => {}
        }
    }
    selected.extend(functions);
    Ok(Tree {
        collection,
        selected,
    })
}

/// `year(date_created)` -> ("year", "date_created").
pub fn split_function(text: &str) -> Option<(&str, &str)> {
    let (name, rest) = text.split_once('(')?;
    let argument = rest.strip_suffix(')')?;
    (!name.is_empty() && !argument.is_empty()).then_some((name, argument))
}

/// A function field: a date part of a date field, or the count of a one-to-many field.
pub(super) fn function_field<'s>(
    schema: &'s SchemaOverview,
    access: &ReadAccess,
    collection: &'s Collection,
    text: &str,
) -> Result<Selected<'s>, ApiError> {
    let name = collection.collection.as_str();
    let (function, argument) = split_function(text)
        .ok_or_else(|| invalid(format!("\"{text}\" is not a field function.")))?;
    let field = collection
        .field(argument)
        .filter(|_| access.can_read(name, argument))
        .ok_or_else(|| forbidden_field(name, argument))?;
    if function == "count" {
        let relation = schema.one_to_many_by_alias(name, argument).ok_or_else(|| {
            invalid(format!(
                "count() needs a one-to-many field, not \"{argument}\"."
            ))
        })?;
        let related = schema
            .collection(&relation.many_collection)
            .filter(|c| can_read_collection(access, &c.collection))
            .ok_or_else(|| forbidden_field(name, argument))?;
        return Ok(Selected::Count {
            key: format!("{argument}_count"),
            relation,
            related,
        });
    }
    let date = DateFunction::parse(function)
        .filter(|f| f.applies_to(field.kind))
        .ok_or_else(|| invalid(format!("{function}() cannot be used on \"{argument}\".")))?;
    Ok(Selected::Date {
        key: format!("{argument}_{function}"),
        field,
        function: date,
    })
}

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

    /// The keys and values of one item of `tree`, whose table is named `table`; `deep` holds
    /// the `deep` parameter's options for this level's relations.
    pub fn pairs(
        &self,
        tree: &Tree,
        table: &str,
        deep: Option<&Json>,
    ) -> Result<Vec<(String, Expr)>, ApiError> {
        let name = tree.collection.collection.as_str();
        let mut pairs = Vec::with_capacity(tree.selected.len());
        for (out, s) in &tree.selected {
            let out = out.clone();
            match s {
                Selected::Column(f) => {
                    let column = self.column(name, table, &f.field)?;
                    pairs.push((
                        out,
                        json::value(self.dialect, f.kind, f.has_special("conceal"), column),
                    ));
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
                    let related_key =
                        self.column(&related.collection, &alias, &related.primary_key)?;
                    let mut select = Sql::select();
                    select
                        .expr(json::object_json(self.dialect, inner))
                        .from_as(related.collection.clone(), alias.clone())
                        .and_where(related_key.eq(key))
                        .cond_where(self.rows(&related.collection, &alias)?)
                        .cond_where(self.deep_filter(&options, related, &alias)?)
                        .limit(1);
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
                    let value = json::object_json(self.dialect, inner);
                    let options = DeepOptions::read(node, &out)?;
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
                    let value =
                        json::element(self.dialect, json::value(self.dialect, pk, false, key));
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

    /// A `deep` `_filter`, parsed for the related collection with the caller's field checks.
    fn deep_filter(
        &self,
        options: &DeepOptions,
        related: &Collection,
        alias: &str,
    ) -> Result<sea_query::Condition, ApiError> {
        let Some(json) = &options.filter else {
            return Ok(sea_query::Condition::all());
        };
        let root = format!("deep.{}._filter", options.path);
        let parsed = rectus_policies::filter::parse(
            &related.collection,
            json,
            &rectus_policies::filter::ParseOptions {
                schema: self.sql.schema,
                variables: &self.access.caller.variables,
                allow_regex: false,
                access: if self.access.caller.is_admin() {
                    None
                } else {
                    Some(self.access)
                },
                root: &root,
            },
        )
        .map_err(super::read::filter_error)?;
        rectus_policies::filter::to_condition(&parsed, &related.collection, alias, self.sql)
            .map_err(super::read::filter_error)
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
        let related_key = self.column(&related.collection, &alias, &related.primary_key)?;
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
        value: Expr,
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
            (Some(p), Some(l)) => (Ord::max(p, 1) as u64 - 1) * l,
            _ => Ord::max(options.offset.unwrap_or(0), 0) as u64,
        };
        let rows = self.rows(&related.collection, alias)?;
        let wanted = self.deep_filter(options, related, alias)?;
        if !json::list_uses_derived_table(self.dialect) {
            let mut select = Sql::select();
            select
                .expr(json::array(self.dialect, value, order, limit, offset))
                .from_as(related.collection.clone(), alias.to_string())
                .and_where(foreign_key.eq(parent_key))
                .cond_where(rows)
                .cond_where(wanted);
            return Ok(json::nested(
                self.dialect,
                Expr::SubQuery(None, Box::new(select.into())),
            ));
        }
        let mut inner = Sql::select();
        inner
            .expr_as(value, "__json")
            .expr_as(json::row_number(self.dialect, order.clone()), "__ord")
            .from_as(related.collection.clone(), alias.to_string())
            .and_where(foreign_key.eq(parent_key))
            .cond_where(rows)
            .cond_where(wanted);
        for (expr, direction) in order {
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
        let wrap = format!("{alias}_list");
        let mut outer = Sql::select();
        outer
            .expr(json::array(
                self.dialect,
                Expr::col((wrap.clone(), "__json")),
                vec![(Expr::col((wrap.clone(), "__ord")), Order::Asc)],
                None,
                0,
            ))
            .from_subquery(inner, wrap);
        Ok(json::nested(
            self.dialect,
            Expr::SubQuery(None, Box::new(outer.into())),
        ))
    }
}

//! The `fields` parameter as a tree over the schema: which columns, function fields and
//! relations an item shows, with the caller's field permissions applied (explicit unreadable
//! fields are FORBIDDEN, wildcards leave them out, unreadable relations are dropped).

use std::collections::BTreeMap;

use rectus_policies::filter::{DateFunction, FieldAccess};
use rectus_policies::{Action, Collection, Field, Relation, SchemaOverview};

use super::access::ReadAccess;
use super::read::{forbidden_field, invalid};
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

pub(super) fn can_read_collection(access: &ReadAccess, name: &str) -> bool {
    access.permissions.rules(name, Action::Read).is_some()
}

/// Builds the tree of `requested` (`fields` entries, `a.b.c` paths, `*` wildcards) on
/// `collection`. Unreadable fields named explicitly are FORBIDDEN; wildcards quietly leave
/// them out; relations into collections the caller cannot read are dropped. An alias
/// `customer.recent` names a field of the collection reached through `customer` (GraphQL
/// aliases nested relations so).
pub fn tree<'s>(
    schema: &'s SchemaOverview,
    access: &ReadAccess,
    collection: &'s Collection,
    requested: &[String],
    aliases: &[(String, String)],
) -> Result<Tree<'s>, ApiError> {
    for (alias, target) in aliases {
        if target.contains('.') {
            return Err(invalid(format!(
                "\"alias\": \"{alias}\" must name a field, not a path."
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
    let all_aliases = aliases;
    let aliases: Vec<(String, String)> = aliases
        .iter()
        .filter(|(a, _)| !a.contains('.'))
        .cloned()
        .collect();
    for (alias, _) in &aliases {
        if alias.is_empty() || alias.contains(['(', '*']) || collection.field(alias).is_some() {
            return Err(invalid(format!(
                "\"alias\": \"{alias}\" cannot be used as an alias."
            )));
        }
    }
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
        for (alias, target) in &aliases {
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

    // A relation's own tree, with the aliases that stand below its output key.
    let subtree = |related: &'s Collection, nested: Vec<Vec<String>>, key: &str| {
        build(
            schema,
            access,
            related,
            nested,
            &aliases_below(all_aliases, key),
            depth + 1,
        )
    };
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
                    let tree = subtree(related, nested, &key)?;
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
                    let tree = subtree(related, nested, &key)?;
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

/// The aliases of the level below the output key `key`: `key.x` becomes `x`.
fn aliases_below(aliases: &[(String, String)], key: &str) -> Vec<(String, String)> {
    aliases
        .iter()
        .filter_map(|(a, t)| {
            let rest = a.strip_prefix(key)?.strip_prefix('.')?;
            Some((rest.to_string(), t.clone()))
        })
        .collect()
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

//! Relational values in item payloads, written in the same transaction as the item, each
//! under the caller's permissions on its own collection:
//! - a many-to-one object is created (no key) or updated (key and more fields) first, and
//!   its key stored in the item;
//! - a one-to-many list makes the listed items the item's related items: objects without a
//!   key are created, objects with one updated, bare keys linked; related items left out are
//!   deselected (their foreign key cleared, or deleted when the relation says so);
//! - `{create, update, delete}` does each explicitly (`delete` deselects);
//! - many-to-many is the one-to-many to the junction with a many-to-one in each junction row.

use std::future::Future;
use std::pin::Pin;

use rectus_policies::value::Scalar;
use rectus_policies::{Action, Collection, Relation, Rules};
use sea_query::{Expr, ExprTrait, Query as Sql};
use serde_json::{Map, Value as Json};

use super::{Items, forbidden_field};
use crate::db::{Conn, DialectExt};
use crate::error::{ApiError, ErrorCode};
use crate::planner::read::key_value;

type Boxed<'f, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'f>>;

/// How many relations deep one payload may write.
const MAX_NESTING: usize = 10;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. {}", message.into()),
    )
}

/// A payload taken apart: the item's own column values (many-to-one objects already
/// replaced by keys), and the one-to-many values to write once the item has its key.
pub(super) struct Split<'s> {
    pub(super) own: Json,
    children: Vec<(&'s Relation, &'s Collection, Json)>,
}

/// Whether a payload writes related items, which may include policies and roles.
pub(super) fn has_relational(items: &Items, collection: &Collection, payload: &Json) -> bool {
    let Json::Object(map) = payload else {
        return false;
    };
    map.iter().any(|(k, v)| {
        let name = collection.collection.as_str();
        items.schema.one_to_many_by_alias(name, k).is_some()
            || (v.is_object() && items.schema.many_to_one(name, k).is_some())
    })
}

impl<'a> Items<'a> {
    fn key_of(&self, collection: &Collection, key: &Json) -> Result<Scalar, ApiError> {
        key_value(collection, key).ok_or_else(|| {
            invalid(format!(
                "\"{key}\" is not a key of collection \"{}\".",
                collection.collection
            ))
        })
    }

    /// Creates one item with its relational values; returns its key.
    pub(super) fn create_item<'f>(
        &'f self,
        conn: &'f mut Conn,
        c: &'a Collection,
        payload: &'f Json,
        depth: usize,
    ) -> Boxed<'f, Json> {
        Box::pin(async move {
            let rules = self.rules(c, Action::Create)?;
            let split = self
                .split(Some(&mut *conn), c, &rules, payload, depth)
                .await?;
            let values = self.prepare(c, &rules, Action::Create, &split.own).await?;
            let key = self
                .create_in(conn, c, vec![values])
                .await?
                .pop()
                .ok_or_else(|| ApiError::internal(&"an insert returned no key"))?;
            self.write_children(conn, &key, split.children, depth)
                .await?;
            Ok(key)
        })
    }

    /// Updates items with their relational values; returns the keys updated.
    pub(super) fn update_items<'f>(
        &'f self,
        conn: &'f mut Conn,
        c: &'a Collection,
        keys: &'f [Scalar],
        payload: &'f Json,
        depth: usize,
    ) -> Boxed<'f, Vec<Scalar>> {
        Box::pin(async move {
            let rules = self.rules(c, Action::Update)?;
            let split = self
                .split(Some(&mut *conn), c, &rules, payload, depth)
                .await?;
            let values = self.prepare(c, &rules, Action::Update, &split.own).await?;
            let permitted = self.update_in(conn, c, &rules, keys, values).await?;
            if !split.children.is_empty() {
                for key in &permitted {
                    self.write_children(conn, &key.to_json(), split.children.clone(), depth)
                        .await?;
                }
            }
            Ok(permitted)
        })
    }

    /// The payload's own values and its one-to-many children; a many-to-one object is
    /// written first, on `conn` (`None` only for payloads without relational values, see
    /// [`has_relational`], which need no connection).
    pub(super) async fn split(
        &self,
        mut conn: Option<&mut Conn>,
        c: &'a Collection,
        rules: &Rules<'_>,
        payload: &Json,
        depth: usize,
    ) -> Result<Split<'a>, ApiError> {
        let Json::Object(map) = payload else {
            return Err(invalid("An item must be an object."));
        };
        if depth > MAX_NESTING {
            return Err(invalid(format!(
                "Related items may nest at most {MAX_NESTING} levels deep."
            )));
        }
        let name = c.collection.as_str();
        let mut own = Map::new();
        let mut children = Vec::new();
        for (k, v) in map {
            // Keys that are no field of the collection are ignored, as Directus ignores them.
            let Some(field) = c.field(k) else { continue };
            if field.is_alias() {
                if let Some(relation) = self.schema.one_to_many_by_alias(name, k) {
                    if !rules.field_allowed(k) {
                        return Err(forbidden_field(name, k));
                    }
                    let related = self
                        .schema
                        .collection(&relation.many_collection)
                        .ok_or_else(ApiError::forbidden)?;
                    children.push((relation, related, v.clone()));
                }
                continue;
            }
            let m2o = self
                .schema
                .many_to_one(name, k)
                .and_then(|r| r.one_collection.as_deref())
                .and_then(|r| self.schema.collection(r));
            match (v, m2o) {
                (Json::Object(related_item), Some(related)) => {
                    if !rules.field_allowed(k) {
                        return Err(forbidden_field(name, k));
                    }
                    let Some(conn) = conn.as_deref_mut() else {
                        return Err(ApiError::internal(&"a related item needs a connection"));
                    };
                    let key = self
                        .upsert_related(conn, related, related_item, depth + 1)
                        .await?;
                    own.insert(k.clone(), key);
                }
                _ => {
                    own.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(Split {
            own: Json::Object(own),
            children,
        })
    }

    /// A many-to-one object: updated when it names its key and more, only linked when it
    /// names just its key, created otherwise (or when an admin names a key that is new).
    async fn upsert_related(
        &self,
        conn: &mut Conn,
        related: &'a Collection,
        item: &Map<String, Json>,
        depth: usize,
    ) -> Result<Json, ApiError> {
        let pk = &related.primary_key;
        let Some(key) = item.get(pk).filter(|k| !k.is_null()) else {
            return self
                .create_item(conn, related, &Json::Object(item.clone()), depth)
                .await;
        };
        let scalar = self.key_of(related, key)?;
        // As in Directus, a key that names no item creates it (under the create permission).
        if !self.exists(conn, related, &scalar).await? {
            return self
                .create_item(conn, related, &Json::Object(item.clone()), depth)
                .await;
        }
        if item.len() == 1 {
            return Ok(key.clone());
        }
        let mut rest = item.clone();
        rest.remove(pk);
        self.update_items(
            conn,
            related,
            std::slice::from_ref(&scalar),
            &Json::Object(rest),
            depth,
        )
        .await?;
        Ok(key.clone())
    }

    /// Whether an item with this key exists, whoever may see it (Directus decides between
    /// creating and updating a related item the same way).
    async fn exists(
        &self,
        conn: &mut Conn,
        collection: &Collection,
        key: &Scalar,
    ) -> Result<bool, ApiError> {
        let name = collection.collection.as_str();
        let mut select = Sql::select();
        select
            .expr(Expr::val(1))
            .from(name.to_string())
            .cond_where(crate::planner::read::key_condition(
                collection,
                std::slice::from_ref(key),
            ))
            .limit(1);
        let dialect = conn.dialect();
        Ok(conn.query_opt(&dialect.build(&select)?).await?.is_some())
    }

    /// Writes the one-to-many values of the item `parent_key`.
    async fn write_children(
        &self,
        conn: &mut Conn,
        parent_key: &Json,
        children: Vec<(&'a Relation, &'a Collection, Json)>,
        depth: usize,
    ) -> Result<(), ApiError> {
        for (relation, related, value) in children {
            let fk = relation.many_field.as_str();
            let pk = related.primary_key.as_str();
            let linked = |item: &Map<String, Json>| {
                let mut item = item.clone();
                item.insert(fk.to_string(), parent_key.clone());
                Json::Object(item)
            };
            match value {
                Json::Null => {}
                Json::Array(list) => {
                    let mut kept = Vec::with_capacity(list.len());
                    for entry in &list {
                        let key = match entry {
                            Json::Object(item) => match item
                                .get(pk)
                                .filter(|k| !k.is_null())
                                .map(|k| self.key_of(related, k))
                                .transpose()?
                            {
                                Some(key) if !self.exists(conn, related, &key).await? => {
                                    self.create_item(conn, related, &linked(item), depth + 1)
                                        .await?;
                                    key
                                }
                                Some(key) => {
                                    let mut rest = item.clone();
                                    rest.remove(pk);
                                    self.update_items(
                                        conn,
                                        related,
                                        std::slice::from_ref(&key),
                                        &linked(&rest),
                                        depth + 1,
                                    )
                                    .await?;
                                    key
                                }
                                None => {
                                    let key = self
                                        .create_item(conn, related, &linked(item), depth + 1)
                                        .await?;
                                    self.key_of(related, &key)?
                                }
                            },
                            key => {
                                let key = self.key_of(related, key)?;
                                self.update_items(
                                    conn,
                                    related,
                                    std::slice::from_ref(&key),
                                    &linked(&Map::new()),
                                    depth + 1,
                                )
                                .await?;
                                key
                            }
                        };
                        kept.push(key);
                    }
                    let current = self.related_keys(conn, related, fk, parent_key).await?;
                    let removed: Vec<Scalar> =
                        current.into_iter().filter(|k| !kept.contains(k)).collect();
                    self.deselect(conn, relation, related, &removed, depth)
                        .await?;
                }
                Json::Object(ops) => {
                    if let Some(other) = ops
                        .keys()
                        .find(|k| !matches!(k.as_str(), "create" | "update" | "delete"))
                    {
                        return Err(invalid(format!(
                            "\"{other}\" is not one of \"create\", \"update\", \"delete\"."
                        )));
                    }
                    let list = |name: &str| match ops.get(name) {
                        None | Some(Json::Null) => Ok(Vec::new()),
                        Some(Json::Array(items)) => Ok(items.clone()),
                        Some(_) => Err(invalid(format!("\"{name}\" must be a list."))),
                    };
                    for item in list("create")? {
                        let Json::Object(item) = item else {
                            return Err(invalid("Items to create must be objects."));
                        };
                        self.create_item(conn, related, &linked(&item), depth + 1)
                            .await?;
                    }
                    for item in list("update")? {
                        let Some((key, mut rest)) = item
                            .as_object()
                            .and_then(|o| o.get(pk).map(|k| (k.clone(), o.clone())))
                        else {
                            return Err(invalid(format!(
                                "Items to update must be objects with their \"{pk}\"."
                            )));
                        };
                        rest.remove(pk);
                        let key = self.key_of(related, &key)?;
                        self.update_items(
                            conn,
                            related,
                            std::slice::from_ref(&key),
                            &linked(&rest),
                            depth + 1,
                        )
                        .await?;
                    }
                    let wanted = list("delete")?
                        .iter()
                        .map(|k| self.key_of(related, k))
                        .collect::<Result<Vec<_>, _>>()?;
                    // Only items related to this one can be removed from it.
                    let current = self.related_keys(conn, related, fk, parent_key).await?;
                    let removed: Vec<Scalar> =
                        current.into_iter().filter(|k| wanted.contains(k)).collect();
                    self.deselect(conn, relation, related, &removed, depth)
                        .await?;
                }
                _ => {
                    return Err(invalid(format!(
                        "\"{}\" must be a list of items or {{\"create\", \"update\", \"delete\"}}.",
                        relation.one_field.as_deref().unwrap_or(fk)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The keys of the items of `related` whose `fk` points at `parent_key`.
    async fn related_keys(
        &self,
        conn: &mut Conn,
        related: &Collection,
        fk: &str,
        parent_key: &Json,
    ) -> Result<Vec<Scalar>, ApiError> {
        let name = related.collection.as_str();
        let parent = match parent_key {
            Json::Number(n) => n
                .as_i64()
                .map_or_else(|| Scalar::Text(n.to_string()), Scalar::Int),
            Json::String(s) => Scalar::Text(s.clone()),
            other => Scalar::Text(other.to_string()),
        };
        let mut select = Sql::select();
        select
            .expr_as(
                Expr::col((name.to_string(), related.primary_key.clone())),
                "key",
            )
            .from(name.to_string())
            .and_where(
                Expr::col((name.to_string(), fk.to_string())).eq(Expr::val(parent.to_sea())),
            );
        let dialect = conn.dialect();
        conn.query(&dialect.build(&select)?)
            .await?
            .iter()
            .map(|r| {
                let key = r.value("key")?.to_json();
                self.key_of(related, &key)
            })
            .collect()
    }

    /// Items removed from a one-to-many: deleted when the relation says so, otherwise
    /// their foreign key is cleared.
    async fn deselect(
        &self,
        conn: &mut Conn,
        relation: &Relation,
        related: &'a Collection,
        keys: &[Scalar],
        depth: usize,
    ) -> Result<(), ApiError> {
        if keys.is_empty() {
            return Ok(());
        }
        if relation.one_deselect_action == "delete" {
            let rules = self.rules(related, Action::Delete)?;
            return self.delete_in(conn, related, &rules, keys).await;
        }
        let mut cleared = Map::new();
        cleared.insert(relation.many_field.clone(), Json::Null);
        self.update_items(conn, related, keys, &Json::Object(cleared), depth + 1)
            .await?;
        Ok(())
    }
}

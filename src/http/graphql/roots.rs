//! The root fields of a schema: per collection the reads (`<c>`, `<c>_by_id`,
//! `<c>_aggregated`, or the singleton `<c>`) and the mutations its permissions allow.

use std::collections::BTreeSet;

use async_graphql::dynamic::{InputValue, Object, TypeRef};
use rectus_policies::{Action, Collection};

use super::resolve::{self, Kind, Mutation, Read};
use super::schema::{Builder, id_type};
use super::types;

/// Adds the read fields of `collection`, named after `root`.
pub(super) fn query_fields(query: Object, collection: &Collection, root: &str) -> Object {
    let c = collection.collection.as_str();
    let read = Read {
        collection: c.to_string(),
    };
    if collection.singleton {
        return query.field(resolve::singleton(root, c, read));
    }
    query
        .field(Builder::list_arguments(
            resolve::list(root, c, read.clone()),
            c,
            true,
        ))
        .field(resolve::by_id(&format!("{root}_by_id"), c, read.clone()))
        .field(
            Builder::list_arguments(
                resolve::aggregated(&format!("{root}_aggregated"), c, read),
                c,
                true,
            )
            .argument(InputValue::new(
                "groupBy",
                TypeRef::named_list(TypeRef::STRING),
            )),
        )
}

/// Adds the mutations the caller may run on `collection`; `inputs` are the input types the
/// schema has. Says whether there were any.
pub(super) fn mutation_fields(
    mut mutation: Object,
    builder: &Builder,
    collection: &Collection,
    root: &str,
    inputs: &BTreeSet<String>,
) -> (Object, bool) {
    let c = collection.collection.as_str();
    let returns = |list: bool| match (list, builder.can(c, Action::Read)) {
        (true, true) => TypeRef::named_nn_list_nn(c),
        (false, true) => TypeRef::named(c),
        (_, false) => TypeRef::named(TypeRef::BOOLEAN),
    };
    let mutate = |kind| Mutation {
        collection: c.to_string(),
        kind,
    };
    let field =
        |name: String, returns: TypeRef, kind| resolve::mutation(&name, returns, mutate(kind));
    let create_input = format!("create_{c}_input");
    let update_input = format!("update_{c}_input");
    let creates = inputs.contains(&create_input) && !collection.singleton;
    let updates = inputs.contains(&update_input);
    let deletes = builder.can(c, Action::Delete) && !collection.singleton && !collection.view;
    if creates {
        mutation = mutation
            .field(
                field(
                    format!("create_{root}_items"),
                    returns(true),
                    Kind::CreateMany,
                )
                .argument(InputValue::new(
                    "data",
                    TypeRef::named_nn_list(&create_input),
                )),
            )
            .field(
                field(
                    format!("create_{root}_item"),
                    returns(false),
                    Kind::CreateOne,
                )
                .argument(InputValue::new("data", TypeRef::named_nn(&create_input))),
            );
    }
    if updates {
        let data = || InputValue::new("data", TypeRef::named_nn(&update_input));
        if collection.singleton {
            mutation = mutation.field(
                field(
                    format!("update_{root}"),
                    returns(false),
                    Kind::UpdateSingleton,
                )
                .argument(data()),
            );
        } else {
            mutation = mutation
                .field(
                    field(
                        format!("update_{root}_items"),
                        returns(true),
                        Kind::UpdateMany,
                    )
                    .argument(InputValue::new(
                        "ids",
                        TypeRef::named_nn_list_nn(TypeRef::ID),
                    ))
                    .argument(data()),
                )
                .field(
                    field(
                        format!("update_{root}_batch"),
                        returns(true),
                        Kind::UpdateBatch,
                    )
                    .argument(InputValue::new(
                        "data",
                        TypeRef::named_nn_list_nn(&update_input),
                    )),
                )
                .field(
                    field(
                        format!("update_{root}_item"),
                        returns(false),
                        Kind::UpdateOne,
                    )
                    .argument(InputValue::new("id", id_type(true)))
                    .argument(data()),
                );
        }
    }
    if deletes {
        mutation = mutation
            .field(
                field(
                    format!("delete_{root}_items"),
                    TypeRef::named(types::DELETE_MANY),
                    Kind::DeleteMany,
                )
                .argument(InputValue::new(
                    "ids",
                    TypeRef::named_nn_list_nn(TypeRef::ID),
                )),
            )
            .field(
                field(
                    format!("delete_{root}_item"),
                    TypeRef::named(types::DELETE_ONE),
                    Kind::DeleteOne,
                )
                .argument(InputValue::new("id", id_type(true))),
            );
    }
    (mutation, creates || updates || deletes)
}

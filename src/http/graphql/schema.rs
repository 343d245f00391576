//! The GraphQL schema of one permission set: an object type per collection the caller may
//! read (only readable fields, relations only into readable collections), its filter and
//! aggregate types, input types per collection and action the caller may write, and the
//! root fields Directus generates (`<c>`, `<c>_by_id`, `<c>_aggregated`,
//! `create_<c>_item(s)`, `update_<c>_item(s)`, `update_<c>_batch`, `delete_<c>_item(s)`).
//! What the caller may not do is not in the schema, so introspection shows nothing more
//! and a query naming it fails validation.

use std::collections::BTreeSet;

use async_graphql::Value;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Schema, SchemaError, TypeRef,
};
use rectus_policies::{Action, Collection, EffectivePermissions, SchemaOverview};

use super::resolve;
use super::roots;
use super::types::{self, is_graphql_name, plain_field};
use crate::config::GraphqlSettings;

/// Which endpoint a schema serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `/graphql`: the user's collections.
    Items,
    /// `/graphql/system`: Directus's system collections.
    System,
}

/// The system collections `/graphql/system` serves, with their root field names, and
/// whether they may be written through it (activity and revisions are written by rectus).
const SYSTEM: &[(&str, &str, bool)] = &[
    ("directus_users", "users", true),
    ("directus_roles", "roles", true),
    ("directus_policies", "policies", true),
    ("directus_access", "access", true),
    ("directus_permissions", "permissions", true),
    ("directus_files", "files", false),
    ("directus_folders", "folders", false),
    ("directus_activity", "activity", false),
    ("directus_revisions", "revisions", false),
];

/// How a field of a collection relates to another collection.
enum Link<'s> {
    None,
    ManyToOne(&'s Collection),
    OneToMany(&'s Collection),
}

pub(super) struct Builder<'s> {
    overview: &'s SchemaOverview,
    permissions: &'s EffectivePermissions,
    /// Collections that get types, by name; their type name is the collection name.
    typed: BTreeSet<&'s str>,
    /// The names of the types other collections give rise to (`orders_filter`,
    /// `create_orders_input`, ...): a collection named like one gets no types, or the
    /// schema would name one type twice.
    derived: BTreeSet<String>,
}

/// The type names a collection gives rise to besides its own.
fn derived_names(collection: &str) -> [String; 6] {
    [
        format!("{collection}_filter"),
        format!("{collection}_aggregated"),
        format!("{collection}_aggregated_count"),
        format!("{collection}_aggregated_fields"),
        format!("create_{collection}_input"),
        format!("update_{collection}_input"),
    ]
}

pub(super) fn id_type(required: bool) -> TypeRef {
    match required {
        true => TypeRef::named_nn(TypeRef::ID),
        false => TypeRef::named(TypeRef::ID),
    }
}

impl<'s> Builder<'s> {
    pub(super) fn can(&self, collection: &str, action: Action) -> bool {
        self.permissions.rules(collection, action).is_some()
    }

    fn field_allowed(&self, collection: &str, action: Action, field: &str) -> bool {
        self.permissions
            .rules(collection, action)
            .is_some_and(|r| r.field_allowed(field))
    }

    /// Whether `collection` gets types: a GraphQL name, read permission, and a readable
    /// column to show (an object type needs a field).
    fn usable(&self, collection: &Collection) -> bool {
        let name = collection.collection.as_str();
        is_graphql_name(name)
            && !types::RESERVED.contains(&name)
            && !self.derived.contains(name)
            && self.can(name, Action::Read)
            && collection.fields.values().any(|f| {
                !f.is_alias()
                    && is_graphql_name(&f.field)
                    && self.field_allowed(name, Action::Read, &f.field)
            })
    }

    fn link(&self, collection: &Collection, field: &rectus_policies::Field) -> Link<'s> {
        let name = collection.collection.as_str();
        let related = match field.is_alias() {
            true => self
                .overview
                .one_to_many_by_alias(name, &field.field)
                .and_then(|r| self.overview.collection(&r.many_collection))
                .map(Link::OneToMany),
            false => self
                .overview
                .many_to_one(name, &field.field)
                .and_then(|r| r.one_collection.as_deref())
                .and_then(|c| self.overview.collection(c))
                .map(Link::ManyToOne),
        };
        match related {
            Some(Link::ManyToOne(c)) | Some(Link::OneToMany(c))
                if !self.typed.contains(c.collection.as_str()) =>
            {
                Link::None
            }
            Some(link) => link,
            None => Link::None,
        }
    }

    /// The fields of `collection` GraphQL may show for `action`, with their links.
    fn fields(
        &self,
        collection: &'s Collection,
        action: Action,
    ) -> Vec<(&'s rectus_policies::Field, Link<'s>)> {
        collection
            .fields
            .values()
            .filter(|f| {
                is_graphql_name(&f.field)
                    && self.field_allowed(&collection.collection, action, &f.field)
            })
            .map(|f| (f, self.link(collection, f)))
            .filter(|(f, link)| !f.is_alias() || matches!(link, Link::OneToMany(_)))
            .collect()
    }

    pub(super) fn list_arguments(field: Field, related: &str, search: bool) -> Field {
        let field = field
            .argument(InputValue::new(
                "filter",
                TypeRef::named(format!("{related}_filter")),
            ))
            .argument(InputValue::new(
                "sort",
                TypeRef::named_list(TypeRef::STRING),
            ))
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("page", TypeRef::named(TypeRef::INT)));
        match search {
            true => field.argument(InputValue::new("search", TypeRef::named(TypeRef::STRING))),
            false => field,
        }
    }

    fn object(&self, collection: &'s Collection) -> Object {
        let name = collection.collection.as_str();
        let mut object = Object::new(name);
        for (field, link) in self.fields(collection, Action::Read) {
            let f = field.field.as_str();
            match link {
                Link::ManyToOne(related) => {
                    object = object.field(
                        resolve::item_field(f, TypeRef::named(&related.collection)).argument(
                            InputValue::new(
                                "filter",
                                TypeRef::named(format!("{}_filter", related.collection)),
                            ),
                        ),
                    );
                }
                Link::OneToMany(related) => {
                    object = object.field(Self::list_arguments(
                        resolve::item_field(f, TypeRef::named_nn_list_nn(&related.collection)),
                        &related.collection,
                        true,
                    ));
                    object = object.field(resolve::function_field(f, types::COUNT_FUNCTIONS));
                }
                Link::None => {
                    let ty = match field.primary_key {
                        true => id_type(true),
                        false => match types::scalar_type(field.kind) {
                            Some(ty) => ty,
                            None => continue,
                        },
                    };
                    object = object.field(resolve::item_field(f, ty));
                    if let Some(functions) = types::date_functions(field.kind) {
                        object = object.field(resolve::function_field(f, functions));
                    }
                }
            }
        }
        object
    }

    fn filter(&self, collection: &'s Collection) -> InputObject {
        let name = collection.collection.as_str();
        let own = format!("{name}_filter");
        let mut input = InputObject::new(&own)
            .field(InputValue::new("_and", TypeRef::named_list(&own)))
            .field(InputValue::new("_or", TypeRef::named_list(&own)));
        for (field, link) in self.fields(collection, Action::Read) {
            if field.has_special("conceal") {
                continue;
            }
            let f = field.field.as_str();
            match link {
                Link::ManyToOne(related) => {
                    input = input.field(InputValue::new(
                        f,
                        TypeRef::named(format!("{}_filter", related.collection)),
                    ));
                }
                Link::OneToMany(related) => {
                    input = input
                        .field(InputValue::new(
                            f,
                            TypeRef::named(format!("{}_filter", related.collection)),
                        ))
                        .field(InputValue::new(
                            format!("{f}_func"),
                            TypeRef::named(types::COUNT_FUNCTION_OPS),
                        ));
                }
                Link::None => {
                    if let Some(operators) = types::filter_operators(field.kind) {
                        input = input.field(InputValue::new(f, TypeRef::named(operators)));
                    }
                    if types::date_functions(field.kind).is_some() {
                        input = input.field(InputValue::new(
                            format!("{f}_func"),
                            TypeRef::named(types::DATETIME_FUNCTION_OPS),
                        ));
                    }
                }
            }
        }
        input
    }

    /// `<c>_aggregated` and the objects of its functions.
    fn aggregated(&self, collection: &'s Collection) -> Vec<Object> {
        let name = collection.collection.as_str();
        let columns: Vec<_> = self
            .fields(collection, Action::Read)
            .into_iter()
            .filter(|(f, link)| {
                !f.is_alias()
                    && !f.has_special("conceal")
                    && matches!(link, Link::None | Link::ManyToOne(_))
            })
            .map(|(f, _)| f)
            .collect();
        let count_type = format!("{name}_aggregated_count");
        let fields_type = format!("{name}_aggregated_fields");
        let mut objects = Vec::new();
        let mut aggregated = Object::new(format!("{name}_aggregated"))
            .field(plain_field("group", TypeRef::named(types::JSON)))
            .field(resolve::number_field("countAll", TypeRef::INT));
        if !columns.is_empty() {
            objects.push(columns.iter().fold(Object::new(&count_type), |o, f| {
                o.field(resolve::number_field(&f.field, TypeRef::INT))
            }));
            for function in ["count", "countDistinct"] {
                aggregated = aggregated.field(plain_field(function, TypeRef::named(&count_type)));
            }
        }
        let numeric: Vec<_> = columns.iter().filter(|f| f.kind.is_numeric()).collect();
        if !numeric.is_empty() {
            objects.push(numeric.iter().fold(Object::new(&fields_type), |o, f| {
                o.field(resolve::number_field(&f.field, TypeRef::FLOAT))
            }));
            for function in ["sum", "sumDistinct", "avg", "avgDistinct", "min", "max"] {
                aggregated = aggregated.field(plain_field(function, TypeRef::named(&fields_type)));
            }
        }
        objects.push(aggregated);
        objects
    }

    fn input_name(action: Action, collection: &str) -> String {
        match action {
            Action::Create => format!("create_{collection}_input"),
            _ => format!("update_{collection}_input"),
        }
    }

    /// `create_<c>_input` / `update_<c>_input`: the fields the caller may write; relations
    /// take the related collection's input of the same action, or its key.
    fn has_input(&self, collection: &'s Collection, action: Action) -> bool {
        !collection.view
            && self.can(&collection.collection, action)
            && !self.fields(collection, action).is_empty()
    }

    fn input(&self, collection: &'s Collection, action: Action) -> Option<InputObject> {
        if !self.has_input(collection, action) {
            return None;
        }
        let mut input = InputObject::new(Self::input_name(action, &collection.collection));
        for (field, link) in self.fields(collection, action) {
            let f = field.field.as_str();
            let related_input = |related: &'s Collection| {
                self.has_input(related, action)
                    .then(|| Self::input_name(action, &related.collection))
            };
            let ty = match link {
                Link::ManyToOne(related) => match related_input(related) {
                    Some(input) => TypeRef::named(input),
                    None => id_type(false),
                },
                Link::OneToMany(related) => match related_input(related) {
                    Some(input) => TypeRef::named_list(input),
                    None => TypeRef::named_list(TypeRef::ID),
                },
                Link::None if field.primary_key => id_type(false),
                Link::None => match types::scalar_type(field.kind) {
                    Some(ty) => ty,
                    None => continue,
                },
            };
            input = input.field(InputValue::new(f, ty));
        }
        Some(input)
    }
}

/// The collections of the scope the caller may read, with their root field names.
fn roots<'s>(
    scope: Scope,
    overview: &'s SchemaOverview,
    builder: &Builder<'s>,
) -> Vec<(&'s Collection, String, bool)> {
    match scope {
        Scope::Items => overview
            .user_collections()
            .filter(|c| builder.usable(c))
            .map(|c| (c, c.collection.clone(), true))
            .collect(),
        Scope::System => SYSTEM
            .iter()
            .filter_map(|(name, root, writable)| {
                overview
                    .collection(name)
                    .filter(|c| builder.usable(c))
                    .map(|c| (c, root.to_string(), *writable))
            })
            .collect(),
    }
}

/// Every readable collection reachable from the roots through relations.
fn reachable<'s>(
    overview: &'s SchemaOverview,
    builder: &Builder<'s>,
    roots: &[(&'s Collection, String, bool)],
) -> BTreeSet<&'s str> {
    let mut seen: BTreeSet<&'s str> = BTreeSet::new();
    let mut queue: Vec<&'s Collection> = roots.iter().map(|(c, _, _)| *c).collect();
    while let Some(collection) = queue.pop() {
        if !seen.insert(collection.collection.as_str()) {
            continue;
        }
        let name = collection.collection.as_str();
        for field in collection.fields.values() {
            let related = match field.is_alias() {
                true => overview
                    .one_to_many_by_alias(name, &field.field)
                    .map(|r| r.many_collection.as_str()),
                false => overview
                    .many_to_one(name, &field.field)
                    .and_then(|r| r.one_collection.as_deref()),
            };
            if let Some(related) = related.and_then(|r| overview.collection(r))
                && builder.usable(related)
                && builder.field_allowed(name, Action::Read, &field.field)
            {
                queue.push(related);
            }
        }
    }
    seen
}

/// Builds the schema `permissions` may see of `scope`.
pub fn build(
    scope: Scope,
    overview: &SchemaOverview,
    permissions: &EffectivePermissions,
    settings: &GraphqlSettings,
) -> Result<Schema, SchemaError> {
    let mut builder = Builder {
        overview,
        permissions,
        typed: BTreeSet::new(),
        derived: overview
            .collections
            .keys()
            .flat_map(|c| derived_names(c))
            .collect(),
    };
    let roots = roots(scope, overview, &builder);
    builder.typed = reachable(overview, &builder, &roots);

    let (scalars, inputs, objects) = types::shared();
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut registered: Vec<async_graphql::dynamic::Type> = Vec::new();
    registered.extend(scalars.into_iter().map(Into::into));
    registered.extend(inputs.into_iter().map(Into::into));
    registered.extend(objects.into_iter().map(Into::into));

    let mut inputs_made: BTreeSet<String> = BTreeSet::new();
    for name in builder.typed.clone() {
        let Some(collection) = overview.collection(name) else {
            continue;
        };
        registered.push(builder.object(collection).into());
        registered.push(builder.filter(collection).into());
        registered.extend(builder.aggregated(collection).into_iter().map(Into::into));
        for action in [Action::Create, Action::Update] {
            if let Some(input) = builder.input(collection, action) {
                inputs_made.insert(input.type_name().to_string());
                registered.push(input.into());
            }
        }
    }
    let mut any_mutation = false;
    for (collection, root, writable) in &roots {
        query = roots::query_fields(query, collection, root);
        if *writable {
            let (with, added) =
                roots::mutation_fields(mutation, &builder, collection, root, &inputs_made);
            mutation = with;
            any_mutation |= added;
        }
    }
    if scope == Scope::System {
        query = resolve::system_fields(query, builder.can("directus_users", Action::Read));
    }
    if roots.is_empty() && scope == Scope::Items {
        // A schema needs one query field; Directus answers an empty schema the same way.
        query = query.field(Field::new(
            "_empty",
            TypeRef::named(TypeRef::BOOLEAN),
            |_| FieldFuture::Value(Some(FieldValue::value(Value::Null))),
        ));
    }

    let mut schema = Schema::build("Query", any_mutation.then_some("Mutation"), None);
    for ty in registered {
        schema = schema.register(ty);
    }
    schema = schema.register(query);
    if any_mutation {
        schema = schema.register(mutation);
    }
    if !settings.introspection {
        schema = schema.disable_introspection();
    }
    schema.disable_suggestions().finish()
}

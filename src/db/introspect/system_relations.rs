//! The one-to-many side of Directus's own relations, which Directus keeps in its code
//! rather than in `directus_relations` (`@directus/system-data`): `policies` on roles and
//! users, `users` and `children` on roles, `roles` and `permissions` on policies,
//! `revisions` on activity, `operations` on flows, `panels` on dashboards. With them a
//! client reads `roles?fields=policies.policy.name` and assigns a policy to a role the way
//! the Studio and the SDK do, with `{"policies": {"create": [{"policy": ...}]}}`.

use super::RawSchema;
use super::metadata::{FieldMeta, Metadata, RelationMeta};

struct SystemRelation {
    many_collection: &'static str,
    many_field: &'static str,
    one_collection: &'static str,
    one_field: &'static str,
    junction_field: Option<&'static str>,
    sort_field: Option<&'static str>,
    one_deselect_action: &'static str,
}

const fn o2m(
    many_collection: &'static str,
    many_field: &'static str,
    one_collection: &'static str,
    one_field: &'static str,
) -> SystemRelation {
    SystemRelation {
        many_collection,
        many_field,
        one_collection,
        one_field,
        junction_field: None,
        sort_field: None,
        one_deselect_action: "nullify",
    }
}

/// Directus 11's, as its system data lists them. `directus_access.policy` is listed there
/// twice (as `roles` and as `users` on policies); a column has one relation here, and
/// `roles` is the one kept.
const SYSTEM_RELATIONS: &[SystemRelation] = &[
    o2m("directus_users", "role", "directus_roles", "users"),
    o2m(
        "directus_revisions",
        "activity",
        "directus_activity",
        "revisions",
    ),
    o2m(
        "directus_panels",
        "dashboard",
        "directus_dashboards",
        "panels",
    ),
    SystemRelation {
        one_deselect_action: "delete",
        ..o2m(
            "directus_operations",
            "flow",
            "directus_flows",
            "operations",
        )
    },
    SystemRelation {
        one_deselect_action: "delete",
        ..o2m(
            "directus_permissions",
            "policy",
            "directus_policies",
            "permissions",
        )
    },
    SystemRelation {
        junction_field: Some("role"),
        one_deselect_action: "delete",
        ..o2m("directus_access", "policy", "directus_policies", "roles")
    },
    SystemRelation {
        junction_field: Some("policy"),
        sort_field: Some("sort"),
        one_deselect_action: "delete",
        ..o2m("directus_access", "role", "directus_roles", "policies")
    },
    SystemRelation {
        junction_field: Some("policy"),
        sort_field: Some("sort"),
        one_deselect_action: "delete",
        ..o2m("directus_access", "user", "directus_users", "policies")
    },
    o2m("directus_roles", "parent", "directus_roles", "children"),
];

/// Adds each system relation whose tables exist and that the metadata rows do not
/// describe already, with its alias field on the one side.
pub(super) fn add(meta: &mut Metadata, raw: &RawSchema) {
    for r in SYSTEM_RELATIONS {
        let present = raw.has_table(r.many_collection) && raw.has_table(r.one_collection);
        let described = meta
            .relations
            .iter()
            .any(|m| m.many_collection == r.many_collection && m.many_field == r.many_field);
        if !present || described {
            continue;
        }
        meta.relations.push(RelationMeta {
            many_collection: r.many_collection.into(),
            many_field: r.many_field.into(),
            one_collection: Some(r.one_collection.into()),
            one_field: Some(r.one_field.into()),
            one_collection_field: None,
            one_allowed_collections: Vec::new(),
            junction_field: r.junction_field.map(Into::into),
            sort_field: r.sort_field.map(Into::into),
            one_deselect_action: r.one_deselect_action.into(),
        });
        if meta.field(r.one_collection, r.one_field).is_none() {
            meta.add_field(FieldMeta {
                collection: r.one_collection.into(),
                field: r.one_field.into(),
                special: vec![
                    if r.junction_field.is_some() {
                        "m2m"
                    } else {
                        "o2m"
                    }
                    .into(),
                ],
                note: None,
                searchable: true,
                validation: None,
                required: false,
            });
        }
    }
}

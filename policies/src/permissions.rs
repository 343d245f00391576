//! Effective permissions: the `directus_permissions` rows of the policies that apply,
//! combined as Directus 11 combines them. Several rows for one collection and action allow
//! the union of what each allows, and a field allowed by one row under its own item filter
//! is visible only on the items that filter admits ("case when"), never on the others.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::accountability::{Accountability, Action};
use crate::filter::{self, Filter, FilterError, ParseOptions};
use crate::schema::Collection;

/// One `directus_permissions` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionRecord {
    pub policy: String,
    pub collection: String,
    pub action: Action,
    /// The item filter (`permissions`); `None` or `{}`: every item.
    pub permissions: Option<Json>,
    pub validation: Option<Json>,
    pub presets: Option<Json>,
    /// Field names; `*` stands for every field.
    pub fields: Vec<String>,
}

impl PermissionRecord {
    fn has_filter(&self) -> bool {
        self.permissions
            .as_ref()
            .is_some_and(|p| !(p.is_null() || p.as_object().is_some_and(Map::is_empty)))
    }

    fn allows_field(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == "*" || f == field)
    }
}

/// What the policies of one accountability allow.
#[derive(Debug, Clone)]
pub struct EffectivePermissions {
    admin: bool,
    records: Vec<Arc<PermissionRecord>>,
}

impl EffectivePermissions {
    /// Everything, for admins.
    pub fn admin() -> Self {
        EffectivePermissions {
            admin: true,
            records: Vec::new(),
        }
    }

    /// The rows of the accountability's policies, out of all rows.
    pub fn for_accountability(
        accountability: &Accountability,
        all: &[Arc<PermissionRecord>],
    ) -> Self {
        if accountability.admin {
            return Self::admin();
        }
        let mut records: Vec<Arc<PermissionRecord>> = all
            .iter()
            .filter(|r| accountability.policies.contains(&r.policy))
            .cloned()
            .collect();
        if accountability.app {
            records.extend(app_access_minimum());
        }
        EffectivePermissions {
            admin: false,
            records,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.admin
    }

    pub fn records(&self) -> impl Iterator<Item = &PermissionRecord> {
        self.records.iter().map(|r| r.as_ref())
    }

    /// The rules for one collection and action; `None` when nothing is allowed.
    pub fn rules(&self, collection: &str, action: Action) -> Option<Rules<'_>> {
        if self.admin {
            return Some(Rules {
                admin: true,
                records: Vec::new(),
            });
        }
        let records: Vec<&PermissionRecord> = self
            .records
            .iter()
            .map(|r| r.as_ref())
            .filter(|r| r.collection == collection && r.action == action)
            .collect();
        (!records.is_empty()).then_some(Rules {
            admin: false,
            records,
        })
    }
}

/// What Directus lets every user with app access read without any permission row: their
/// own user, their roles and policies, and the permissions of those policies.
fn app_access_minimum() -> Vec<Arc<PermissionRecord>> {
    let read = |collection: &str, filter: Json, fields: &[&str]| {
        Arc::new(PermissionRecord {
            policy: "$app_access".into(),
            collection: collection.into(),
            action: Action::Read,
            permissions: Some(filter),
            validation: None,
            presets: None,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        })
    };
    vec![
        read(
            "directus_users",
            serde_json::json!({"id": {"_eq": "$CURRENT_USER"}}),
            &[
                "id",
                "first_name",
                "last_name",
                "email",
                "password",
                "location",
                "title",
                "description",
                "tags",
                "avatar",
                "language",
                "tfa_secret",
                "status",
                "role",
                "last_access",
                "last_page",
                "provider",
                "email_notifications",
                "appearance",
                "theme_dark",
                "theme_light",
                "theme_light_overrides",
                "theme_dark_overrides",
                "text_direction",
            ],
        ),
        read(
            "directus_roles",
            serde_json::json!({"id": {"_in": "$CURRENT_ROLES"}}),
            &["*"],
        ),
        read(
            "directus_policies",
            serde_json::json!({"id": {"_in": "$CURRENT_POLICIES"}}),
            &["*"],
        ),
        read(
            "directus_permissions",
            serde_json::json!({"policy": {"_in": "$CURRENT_POLICIES"}}),
            &["*"],
        ),
    ]
}

/// Where a field may be seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Visibility {
    Hidden,
    /// On every item the caller may see.
    Always,
    /// Only on the items this filter admits.
    When(Filter),
}

/// The permission rows for one collection and action.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    admin: bool,
    records: Vec<&'a PermissionRecord>,
}

/// A payload that breaks the validation rules, naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Validation failed for field \"{field}\".")]
pub struct ValidationError {
    pub field: String,
    /// The rule's operator without its `_` (`nnull`, `regex`, `eq`, ...), as Directus reports.
    pub kind: String,
    /// What the rule wanted, when it names a value.
    pub valid: Option<Json>,
}

impl Rules<'_> {
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    pub fn field_allowed(&self, field: &str) -> bool {
        self.admin || self.records.iter().any(|r| r.allows_field(field))
    }

    /// The collection's fields the rows allow, in the collection's order.
    pub fn allowed_fields<'c>(&self, collection: &'c Collection) -> Vec<&'c str> {
        collection
            .fields
            .keys()
            .map(String::as_str)
            .filter(|f| self.field_allowed(f))
            .collect()
    }

    fn parse(
        &self,
        collection: &str,
        json: &Json,
        options: &ParseOptions,
    ) -> Result<Filter, FilterError> {
        filter::parse(collection, json, options)
    }

    /// The items the rows admit; `None` when they admit every item.
    pub fn item_filter(
        &self,
        collection: &str,
        options: &ParseOptions,
    ) -> Result<Option<Filter>, FilterError> {
        if self.admin || self.records.iter().any(|r| !r.has_filter()) {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(self.records.len());
        for r in &self.records {
            if let Some(p) = &r.permissions {
                parts.push(self.parse(collection, p, options)?);
            }
        }
        Ok(Some(Filter::Any(parts)))
    }

    /// On which items `field` may be seen.
    pub fn visibility(
        &self,
        collection: &str,
        field: &str,
        options: &ParseOptions,
    ) -> Result<Visibility, FilterError> {
        if self.admin {
            return Ok(Visibility::Always);
        }
        let allowing: Vec<&&PermissionRecord> = self
            .records
            .iter()
            .filter(|r| r.allows_field(field))
            .collect();
        if allowing.is_empty() {
            return Ok(Visibility::Hidden);
        }
        // Allowed by every row, or by a row that admits every item: the row filter already
        // limits it to the items the caller may see.
        if allowing.len() == self.records.len() || allowing.iter().any(|r| !r.has_filter()) {
            return Ok(Visibility::Always);
        }
        let mut parts = Vec::with_capacity(allowing.len());
        for r in allowing {
            if let Some(p) = &r.permissions {
                parts.push(self.parse(collection, p, options)?);
            }
        }
        Ok(Visibility::When(Filter::Any(parts)))
    }

    /// Whether any row has a validation rule.
    pub fn has_validation(&self) -> bool {
        !self.admin
            && self
                .records
                .iter()
                .filter_map(|r| r.validation.as_ref())
                .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
    }

    /// The item rules and validation rules of the rows, as written.
    pub fn filters(&self) -> impl Iterator<Item = &Json> {
        self.records
            .iter()
            .flat_map(|r| [r.permissions.as_ref(), r.validation.as_ref()])
            .flatten()
    }

    /// The presets of every row, merged in row order.
    pub fn presets(&self) -> Map<String, Json> {
        let mut merged = Map::new();
        for r in &self.records {
            if let Some(Json::Object(p)) = &r.presets {
                for (k, v) in p {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        merged
    }

    /// The first payload field the rows do not allow writing, if any.
    pub fn disallowed_field<'p>(&self, payload: &'p Map<String, Json>) -> Option<&'p str> {
        payload
            .keys()
            .map(String::as_str)
            .find(|f| !self.field_allowed(f))
    }

    /// Checks a payload (presets applied) against the rows' validation rules: it must pass
    /// the rule of at least one row that has one.
    pub fn validate(
        &self,
        collection: &str,
        payload: &Json,
        options: &ParseOptions,
    ) -> Result<(), ValidationOutcome> {
        let rules: Vec<&Json> = self
            .records
            .iter()
            .filter_map(|r| r.validation.as_ref())
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
            .collect();
        if self.admin || rules.is_empty() {
            return Ok(());
        }
        let mut first_failure = None;
        for rule in rules {
            let parsed = self
                .parse(collection, rule, options)
                .map_err(ValidationOutcome::Rule)?;
            if filter::matches(&parsed, payload) {
                return Ok(());
            }
            first_failure.get_or_insert_with(|| failing_part(&parsed, payload));
        }
        Err(ValidationOutcome::Failed(first_failure.unwrap_or(
            ValidationError {
                field: String::new(),
                kind: String::new(),
                valid: None,
            },
        )))
    }
}

/// Directus's field-level rules, for every caller (admins too): a `required` field must
/// have a value when an item is created (unless the database fills it) and cannot be set
/// to null; a field's own `validation` filter must hold whenever the payload sets the field.
pub fn validate_fields(
    collection: &Collection,
    payload: &Json,
    creating: bool,
    options: &ParseOptions,
) -> Result<(), ValidationOutcome> {
    let Json::Object(map) = payload else {
        return Ok(());
    };
    for field in collection.fields.values() {
        if field.is_alias() {
            continue;
        }
        let value = map.get(&field.field);
        let missing = match value {
            None => creating && field.default_value.is_none() && !field.auto_increment,
            Some(v) => v.is_null(),
        };
        if field.required && missing {
            return Err(ValidationOutcome::Failed(ValidationError {
                field: field.field.clone(),
                kind: "required".into(),
                valid: None,
            }));
        }
        let Some(rule) = field
            .validation
            .as_ref()
            .filter(|r| r.as_object().is_some_and(|m| !m.is_empty()))
        else {
            continue;
        };
        if value.is_none() {
            continue;
        }
        let parsed = filter::parse(&collection.collection, rule, options)
            .map_err(ValidationOutcome::Rule)?;
        if !filter::matches(&parsed, payload) {
            return Err(ValidationOutcome::Failed(failing_part(&parsed, payload)));
        }
    }
    Ok(())
}

/// Why a payload was refused by validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationOutcome {
    Failed(ValidationError),
    /// A validation rule in the permissions cannot be read.
    Rule(FilterError),
}

/// The first part of a rule the payload fails: its field, operator and wanted value.
fn failing_part(filter: &Filter, payload: &Json) -> ValidationError {
    let named = |field: &str, kind: &str| ValidationError {
        field: field.to_string(),
        kind: kind.to_string(),
        valid: None,
    };
    match filter {
        Filter::All(parts) => parts
            .iter()
            .find(|p| !filter::matches(p, payload))
            .map(|p| failing_part(p, payload))
            .unwrap_or_else(|| named("", "")),
        Filter::Any(parts) => parts
            .first()
            .map(|p| failing_part(p, payload))
            .unwrap_or_else(|| named("", "")),
        Filter::Field(c) => ValidationError {
            field: c.field.clone(),
            kind: c.operator.name().trim_start_matches('_').to_string(),
            valid: match &c.operand {
                filter::Operand::Value(v) => Some(v.to_json()),
                filter::Operand::List(list) => {
                    Some(Json::Array(list.iter().map(|v| v.to_json()).collect()))
                }
                _ => None,
            },
        },
        Filter::ManyToOne { field, .. } | Filter::OneToMany { field, .. } => {
            named(field, "relation")
        }
        Filter::Count { field, .. } => named(field, "count"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Variables;
    use serde_json::json;

    fn record(
        policy: &str,
        action: Action,
        permissions: Json,
        fields: &[&str],
    ) -> Arc<PermissionRecord> {
        Arc::new(PermissionRecord {
            policy: policy.into(),
            collection: "articles".into(),
            action,
            permissions: Some(permissions),
            validation: None,
            presets: None,
            fields: fields.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn accountability(policies: &[&str]) -> Accountability {
        Accountability {
            policies: policies.iter().map(|s| s.to_string()).collect(),
            ..Accountability::anonymous(None)
        }
    }

    fn with<T>(f: impl FnOnce(&ParseOptions) -> T) -> T {
        let schema = crate::filter::tests::schema();
        let vars = Variables::default();
        f(&ParseOptions {
            schema: &schema,
            variables: &vars,
            allow_regex: true,
            access: None,
            root: "permissions",
        })
    }

    #[test]
    fn rows_of_other_policies_and_actions_do_not_count() {
        let all = vec![
            record("p1", Action::Read, json!({}), &["*"]),
            record("p2", Action::Update, json!({}), &["*"]),
        ];
        let perms = EffectivePermissions::for_accountability(&accountability(&["p2"]), &all);
        assert!(perms.rules("articles", Action::Read).is_none());
        assert!(perms.rules("articles", Action::Update).is_some());
        assert!(perms.rules("authors", Action::Update).is_none());
        let admin = Accountability {
            admin: true,
            ..accountability(&[])
        };
        assert!(
            EffectivePermissions::for_accountability(&admin, &all)
                .rules("anything", Action::Delete)
                .is_some()
        );
    }

    #[test]
    fn two_policies_combine_with_fields_visible_only_under_their_own_filter() {
        let all = vec![
            // p1: published articles, title only.
            record(
                "p1",
                Action::Read,
                json!({"published": {"_eq": true}}),
                &["id", "title"],
            ),
            // p2: the caller's own drafts, every field.
            record("p2", Action::Read, json!({"views": {"_lt": 10}}), &["*"]),
        ];
        let perms = EffectivePermissions::for_accountability(&accountability(&["p1", "p2"]), &all);
        let rules = perms.rules("articles", Action::Read).unwrap();
        with(|options| {
            let rows = rules.item_filter("articles", options).unwrap().unwrap();
            let published = json!({"published": true, "views": 50});
            let draft = json!({"published": false, "views": 3});
            let other = json!({"published": false, "views": 50});
            assert!(filter::matches(&rows, &published));
            assert!(filter::matches(&rows, &draft));
            assert!(!filter::matches(&rows, &other));

            assert_eq!(
                rules.visibility("articles", "title", options).unwrap(),
                Visibility::Always
            );
            let Visibility::When(body) = rules.visibility("articles", "body", options).unwrap()
            else {
                panic!("body is conditional")
            };
            assert!(filter::matches(&body, &draft));
            assert!(!filter::matches(&body, &published), "p1 does not show body");
            assert!(rules.field_allowed("body"));
        });
    }

    #[test]
    fn a_row_without_filter_admits_every_item() {
        let all = vec![
            record(
                "p1",
                Action::Read,
                json!({"published": {"_eq": true}}),
                &["title"],
            ),
            record("p2", Action::Read, json!({}), &["id"]),
        ];
        let perms = EffectivePermissions::for_accountability(&accountability(&["p1", "p2"]), &all);
        let rules = perms.rules("articles", Action::Read).unwrap();
        with(|options| {
            assert_eq!(rules.item_filter("articles", options).unwrap(), None);
            assert_eq!(
                rules.visibility("articles", "id", options).unwrap(),
                Visibility::Always
            );
            assert!(matches!(
                rules.visibility("articles", "title", options).unwrap(),
                Visibility::When(_)
            ));
            assert_eq!(
                rules.visibility("articles", "body", options).unwrap(),
                Visibility::Hidden
            );
        });
    }

    #[test]
    fn presets_merge_and_validation_needs_one_passing_rule() {
        let mut a = (*record("p1", Action::Create, json!({}), &["title", "views"])).clone();
        a.presets = Some(json!({"views": 0, "title": "Untitled"}));
        a.validation = Some(json!({"views": {"_lt": 100}}));
        let mut b = (*record("p2", Action::Create, json!({}), &["title"])).clone();
        b.presets = Some(json!({"title": "New"}));
        b.validation = Some(json!({"title": {"_regex": "^[A-Z]"}}));
        let all = vec![Arc::new(a), Arc::new(b)];
        let perms = EffectivePermissions::for_accountability(&accountability(&["p1", "p2"]), &all);
        let rules = perms.rules("articles", Action::Create).unwrap();
        assert_eq!(
            rules.presets(),
            json!({"views": 0, "title": "New"})
                .as_object()
                .unwrap()
                .clone()
        );
        let payload = json!({"title": "x", "body": "y"});
        assert_eq!(
            rules.disallowed_field(payload.as_object().unwrap()),
            Some("body")
        );
        with(|options| {
            assert!(
                rules
                    .validate("articles", &json!({"title": "lower", "views": 5}), options)
                    .is_ok()
            );
            assert!(
                rules
                    .validate(
                        "articles",
                        &json!({"title": "Upper", "views": 500}),
                        options
                    )
                    .is_ok()
            );
            assert_eq!(
                rules.validate(
                    "articles",
                    &json!({"title": "lower", "views": 500}),
                    options
                ),
                Err(ValidationOutcome::Failed(ValidationError {
                    field: "views".into(),
                    kind: "lt".into(),
                    valid: Some(json!(100)),
                }))
            );
        });
    }
}

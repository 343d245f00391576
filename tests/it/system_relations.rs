//! The one-to-many fields of the system collections (`policies` on users and roles, …),
//! written as nested items: a user allowed to edit their own user item cannot give
//! themselves a policy through `policies`, since the nested `directus_access` rows need a
//! create permission of their own.

use serde_json::json;

use crate::on_every_database;
use crate::rbac::role_with_user;
use crate::support::{App, Kind};

on_every_database!(no_policy_through_policies:
    a_user_cannot_give_themselves_a_policy_on_postgres => Kind::Postgres,
    a_user_cannot_give_themselves_a_policy_on_mariadb => Kind::MySql,
    a_user_cannot_give_themselves_a_policy_on_sqlite => Kind::Sqlite,
);

async fn no_policy_through_policies(kind: Kind) {
    let app = App::start(kind, None).await;
    let own = json!({"id": {"_eq": "$CURRENT_USER"}});
    let (_, token, user) = role_with_user(
        &app,
        "Selfie",
        &[json!({"name": "Own profile", "app_access": true, "permissions": {"create": [
            {"collection": "directus_users", "action": "read", "fields": ["*"], "permissions": own},
            {"collection": "directus_users", "action": "update", "fields": ["*"], "permissions": own},
        ]}})],
    )
    .await;
    let policies = app
        .admin_call("GET", "/policies?fields=id,admin_access&limit=-1", None)
        .await;
    let admin_policy = policies["data"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["admin_access"] == true)
        .expect("the Administrator policy")["id"]
        .clone();

    let (status, body) = app
        .call(
            "PATCH",
            "/users/me",
            Some(&token),
            Some(json!({"first_name": "Sam"})),
        )
        .await;
    assert_eq!(status, 200, "the user may edit themselves: {body}");
    for policies in [
        json!({"create": [{"policy": admin_policy}]}),
        json!([{"policy": admin_policy}]),
    ] {
        let (status, body) = app
            .call(
                "PATCH",
                "/users/me",
                Some(&token),
                Some(json!({"policies": policies})),
            )
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let access = app
        .admin_call("GET", &format!("/access?filter[user][_eq]={user}"), None)
        .await;
    assert_eq!(access["data"], json!([]), "no policy was given to the user");
    let (status, me) = app.call("GET", "/users/me", Some(&token), None).await;
    assert_eq!(status, 200, "{me}");
    assert!(
        me["data"].get("policies").is_none(),
        "`policies` is left out of `*` for a user who may not read directus_access: {me}"
    );
}

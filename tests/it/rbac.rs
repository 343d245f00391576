//! Permissions over HTTP on PostgreSQL, MariaDB and SQLite: the Public policy, a role that
//! reads only its own items, a field hidden from a role, two policies combining (with fields
//! visible only under their own policy's filter), validation and presets on create, and
//! permission changes taking effect on the next request.

use serde_json::{Value, json};

use crate::on_every_database;
use crate::support::{App, Kind};

const PUBLIC_POLICY: &str = "abf8a154-5b1c-4a46-ac9c-7300570f4f17";

fn notes_ddl(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => {
            "CREATE TABLE notes (id serial PRIMARY KEY, title varchar(100), body text, secret varchar(100), \
             published boolean NOT NULL DEFAULT false, status varchar(20), user_created uuid);\n\
             INSERT INTO directus_fields (collection, field, special) VALUES ('notes', 'user_created', 'user-created')"
        }
        Kind::MySql => {
            "CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, title varchar(100), body text, secret varchar(100), \
             published tinyint(1) NOT NULL DEFAULT 0, status varchar(20), user_created char(36));\n\
             INSERT INTO directus_fields (collection, field, special) VALUES ('notes', 'user_created', 'user-created')"
        }
        Kind::Sqlite => {
            "CREATE TABLE notes (id integer PRIMARY KEY AUTOINCREMENT, title varchar(100), body text, secret varchar(100), \
             published boolean NOT NULL DEFAULT 0, status varchar(20), user_created char(36));\n\
             INSERT INTO directus_fields (collection, field, special) VALUES ('notes', 'user_created', 'user-created')"
        }
    }
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

fn ids(body: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

/// A role with its own policies, and one user in it; returns (policy ids, user token, user id).
pub async fn role_with_user(
    app: &App,
    name: &str,
    policies: &[Value],
) -> (Vec<String>, String, String) {
    let role = app
        .admin_call("POST", "/roles", Some(json!({"name": name})))
        .await["data"]["id"]
        .clone();
    let mut ids = Vec::new();
    for policy in policies {
        let id = app
            .admin_call("POST", "/policies", Some(policy.clone()))
            .await["data"]["id"]
            .clone();
        app.admin_call("POST", "/access", Some(json!({"role": role, "policy": id})))
            .await;
        ids.push(id.as_str().unwrap().to_string());
    }
    let email = format!("{}@example.com", name.to_lowercase());
    let user = app
        .admin_call(
            "POST",
            "/users",
            Some(json!({"email": email, "password": "pw", "role": role})),
        )
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (ids, app.login(&email, "pw").await, user)
}

async fn permit(app: &App, policy: &str, action: &str, fields: &[&str], rule: Value, extra: Value) {
    let mut body = json!({"policy": policy, "collection": "notes", "action": action, "fields": fields, "permissions": rule});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    app.admin_call("POST", "/permissions", Some(body)).await;
}

on_every_database!(public_policy:
    the_public_policy_applies_on_the_next_request_on_postgres => Kind::Postgres,
    the_public_policy_applies_on_the_next_request_on_mariadb => Kind::MySql,
    the_public_policy_applies_on_the_next_request_on_sqlite => Kind::Sqlite,
);

async fn public_policy(kind: Kind) {
    let app = App::start(kind, Some(notes_ddl(kind))).await;
    for (title, published) in [("open", true), ("draft", false)] {
        app.admin_call(
            "POST",
            "/items/notes",
            Some(json!({"title": title, "published": published, "secret": "s"})),
        )
        .await;
    }
    let (status, body) = app.call("GET", "/items/notes", None, None).await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"));
    let (status, _) = app.call("GET", "/items/nothing_here", None, None).await;
    assert_eq!(
        status, 403,
        "a collection that does not exist looks the same"
    );

    permit(
        &app,
        PUBLIC_POLICY,
        "read",
        &["id", "title"],
        json!({"published": {"_eq": true}}),
        json!({}),
    )
    .await;
    let (status, body) = app.call("GET", "/items/notes", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"id": 1, "title": "open"}]));
    let (status, body) = app
        .call("GET", "/items/notes?fields=secret", None, None)
        .await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"));
    let (status, _) = app.call("GET", "/items/notes/2", None, None).await;
    assert_eq!(status, 403, "an item outside the rule is not revealed");
    let (status, _) = app
        .call("POST", "/items/notes", None, Some(json!({"title": "spam"})))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call("GET", "/items/directus_users", Some(&app.admin), None)
        .await;
    assert_eq!(status, 403, "system collections are not items");
}

on_every_database!(roles_and_policies:
    roles_read_their_own_items_and_policies_combine_on_postgres => Kind::Postgres,
    roles_read_their_own_items_and_policies_combine_on_mariadb => Kind::MySql,
    roles_read_their_own_items_and_policies_combine_on_sqlite => Kind::Sqlite,
);

async fn roles_and_policies(kind: Kind) {
    let app = App::start(kind, Some(notes_ddl(kind))).await;
    let own = json!({"user_created": {"_eq": "$CURRENT_USER"}});
    let published = json!({"published": {"_eq": true}});

    // Writers: read and edit their own notes (every field); read published notes (title only);
    // create notes with a title, published defaulting to false.
    let (writer_policies, ann, ann_id) = role_with_user(
        &app,
        "Writers",
        &[
            json!({"name": "Own notes"}),
            json!({"name": "Published notes"}),
        ],
    )
    .await;
    let (p_own, p_pub) = (&writer_policies[0], &writer_policies[1]);
    permit(&app, p_own, "read", &["*"], own.clone(), json!({})).await;
    permit(
        &app,
        p_own,
        "update",
        &["title", "body"],
        own.clone(),
        json!({}),
    )
    .await;
    permit(&app, p_own, "delete", &[], own.clone(), json!({})).await;
    permit(
        &app,
        p_own,
        "create",
        &["title", "body", "secret", "status"],
        json!({}),
        json!({"validation": {"title": {"_nnull": true}}, "presets": {"status": "draft"}}),
    )
    .await;
    permit(
        &app,
        p_pub,
        "read",
        &["id", "title", "published"],
        published.clone(),
        json!({}),
    )
    .await;

    // A second writer, same rules.
    let bob_role = app
        .admin_call("POST", "/roles", Some(json!({"name": "More writers"})))
        .await["data"]["id"]
        .clone();
    for p in &writer_policies {
        app.admin_call(
            "POST",
            "/access",
            Some(json!({"role": bob_role, "policy": p})),
        )
        .await;
    }
    app.admin_call(
        "POST",
        "/users",
        Some(json!({"email": "bob@example.com", "password": "pw", "role": bob_role})),
    )
    .await;
    let bob = app.login("bob@example.com", "pw").await;

    let (status, mine) = app
        .call(
            "POST",
            "/items/notes",
            Some(&ann),
            Some(json!({"title": "ann draft", "body": "ann body", "secret": "ann secret"})),
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["data"]["status"], "draft", "preset applied");
    assert_eq!(
        mine["data"]["user_created"],
        ann_id.as_str(),
        "user-created set by rectus"
    );
    let ann_note = mine["data"]["id"].as_i64().unwrap();
    let (_, theirs) = app
        .call(
            "POST",
            "/items/notes",
            Some(&bob),
            Some(json!({"title": "bob draft", "body": "bob body"})),
        )
        .await;
    let bob_note = theirs["data"]["id"].as_i64().unwrap();
    let public = app
        .admin_call("POST", "/items/notes", Some(json!({"title": "news", "body": "pub body", "secret": "pub secret", "published": true})))
        .await["data"]["id"]
        .as_i64()
        .unwrap();

    // Ann sees her note and the published one, not Bob's.
    let (status, list) = app.call("GET", "/items/notes", Some(&ann), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![ann_note, public]);
    let items = list["data"].as_array().unwrap();
    let find = |id: i64| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(find(ann_note)["body"], "ann body");
    assert_eq!(find(ann_note)["secret"], "ann secret");
    assert_eq!(find(public)["title"], "news");
    assert_eq!(
        find(public)["body"],
        Value::Null,
        "body is visible only under the own-notes rule"
    );
    assert_eq!(find(public)["secret"], Value::Null);

    // Filters cannot probe values hidden on an item.
    let (_, probe) = app
        .call(
            "GET",
            "/items/notes?filter[body][_contains]=pub",
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(ids(&probe), Vec::<i64>::new(), "{probe}");
    let (_, probe) = app
        .call("GET", "/items/notes?search=secret", Some(&ann), None)
        .await;
    assert_eq!(ids(&probe), vec![ann_note]);
    let (_, found) = app
        .call(
            "GET",
            "/items/notes?filter[title][_eq]=news&meta=*",
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(ids(&found), vec![public]);
    assert_eq!(found["meta"], json!({"total_count": 2, "filter_count": 1}));

    let (status, _) = app
        .call("GET", &format!("/items/notes/{bob_note}"), Some(&ann), None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/items/notes/{bob_note}"),
            Some(&ann),
            Some(json!({"title": "mine now"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/items/notes/{bob_note}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/items/notes/{ann_note}"),
            Some(&ann),
            Some(json!({"published": true})),
        )
        .await;
    assert_eq!(status, 403, "published is not an updatable field");
    let (status, updated) = app
        .call(
            "PATCH",
            &format!("/items/notes/{ann_note}"),
            Some(&ann),
            Some(json!({"title": "ann edited"})),
        )
        .await;
    assert_eq!(
        (status, &updated["data"]["title"]),
        (200, &json!("ann edited"))
    );

    // Validation and field rules on create; nothing is written on failure.
    let (status, body) = app
        .call(
            "POST",
            "/items/notes",
            Some(&ann),
            Some(json!({"body": "no title"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "FAILED_VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "title");
    assert_eq!(body["errors"][0]["extensions"]["type"], "nnull");
    let (status, body) = app
        .call(
            "POST",
            "/items/notes",
            Some(&ann),
            Some(json!({"title": "extra keys", "no_such_field": 1})),
        )
        .await;
    assert_eq!(status, 200, "unknown keys are ignored: {body}");
    let extra = body["data"]["id"].as_i64().unwrap();
    app.admin_call("DELETE", &format!("/items/notes/{extra}"), None)
        .await;
    let (status, body) = app
        .call(
            "POST",
            "/items/notes",
            Some(&ann),
            Some(json!({"title": "x", "published": true})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"));
    let (status, body) = app
        .call(
            "POST",
            "/items/notes",
            Some(&ann),
            Some(json!([{"title": "ok"}, {"body": "bad"}])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, all) = app
        .call("GET", "/items/notes?limit=-1", Some(&app.admin), None)
        .await;
    assert_eq!(ids(&all).len(), 3, "a failed batch writes nothing: {all}");

    // A field hidden from a role: Readers see titles of published notes only.
    let (reader_policies, reader, _) =
        role_with_user(&app, "Readers", &[json!({"name": "Titles"})]).await;
    permit(
        &app,
        &reader_policies[0],
        "read",
        &["id", "title"],
        published.clone(),
        json!({}),
    )
    .await;
    let (status, list) = app.call("GET", "/items/notes", Some(&reader), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([{"id": public, "title": "news"}]));
    for path in [
        "/items/notes?fields=body",
        "/items/notes?filter[body][_null]=true",
        "/items/notes?sort=body",
    ] {
        let (status, body) = app.call("GET", path, Some(&reader), None).await;
        assert_eq!((status, code(&body)), (403, "FORBIDDEN"), "{path}: {body}");
    }

    // Rules may use fields of the caller's own user.
    let (namesake_policies, namesake, namesake_id) =
        role_with_user(&app, "Namesakes", &[json!({"name": "Same name"})]).await;
    permit(
        &app,
        &namesake_policies[0],
        "read",
        &["id"],
        json!({"title": {"_eq": "$CURRENT_USER.last_name"}}),
        json!({}),
    )
    .await;
    let (_, none_yet) = app.call("GET", "/items/notes", Some(&namesake), None).await;
    assert_eq!(
        ids(&none_yet),
        Vec::<i64>::new(),
        "no last name: the rule admits nothing"
    );
    app.admin_call(
        "PATCH",
        &format!("/users/{namesake_id}"),
        Some(json!({"last_name": "news"})),
    )
    .await;
    let (_, named) = app.call("GET", "/items/notes", Some(&namesake), None).await;
    assert_eq!(ids(&named), vec![public]);

    // What a role may do, as Directus reports it.
    let (_, mine) = app.call("GET", "/permissions/me", Some(&ann), None).await;
    assert_eq!(mine["data"]["notes"]["read"]["access"], "partial");
    assert_eq!(mine["data"]["notes"]["create"]["access"], "full");
    assert_eq!(
        mine["data"]["notes"]["create"]["presets"],
        json!({"status": "draft"})
    );
    let (status, _) = app.call("GET", "/permissions", Some(&reader), None).await;
    assert_eq!(
        status, 403,
        "without app access nothing reads directus_permissions implicitly"
    );
}

on_every_database!(update_stays_inside:
    an_update_cannot_move_a_row_out_of_the_rule_on_postgres => Kind::Postgres,
    an_update_cannot_move_a_row_out_of_the_rule_on_mariadb => Kind::MySql,
    an_update_cannot_move_a_row_out_of_the_rule_on_sqlite => Kind::Sqlite,
);

/// Editors may update drafts only: moving a draft out of "draft" would put it where they
/// could no longer update it, so the update is refused and nothing changes.
async fn update_stays_inside(kind: Kind) {
    let app = App::start(kind, Some(notes_ddl(kind))).await;
    let (policies, editor, _) = role_with_user(&app, "Editors", &[json!({"name": "Drafts"})]).await;
    let drafts = json!({"status": {"_eq": "draft"}});
    permit(&app, &policies[0], "read", &["*"], json!({}), json!({})).await;
    permit(
        &app,
        &policies[0],
        "update",
        &["title", "status"],
        drafts,
        json!({}),
    )
    .await;
    let id = app
        .admin_call(
            "POST",
            "/items/notes",
            Some(json!({"title": "t", "status": "draft"})),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/items/notes/{id}");

    let (status, body) = app
        .call(
            "PATCH",
            &path,
            Some(&editor),
            Some(json!({"status": "published"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(code(&body), "FORBIDDEN");
    let note = app.admin_call("GET", &path, None).await;
    assert_eq!(note["data"]["status"], "draft", "nothing changed: {note}");

    let (status, body) = app
        .call(
            "PATCH",
            &path,
            Some(&editor),
            Some(json!({"title": "better"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["title"], "better");
}

/// A rule that reads the clock is evaluated at each request, though read plans are reused:
/// an item created after the first read shows in the second.
#[tokio::test(flavor = "multi_thread")]
async fn rules_with_now_see_the_current_time() {
    let app = crate::items::seeded(Kind::Sqlite).await;
    let (policies, token, _) = role_with_user(
        &app,
        "Clock",
        &[json!({"name": "Clock", "app_access": false})],
    )
    .await;
    app.admin_call(
        "POST",
        "/permissions",
        Some(
            json!({"policy": policies[0], "collection": "orders", "action": "read",
            "fields": ["id"], "permissions": {"date_created": {"_lte": "$NOW"}}}),
        ),
    )
    .await;
    let read = || async {
        let (status, body) = app
            .call("GET", "/items/orders?fields=id&sort=id", Some(&token), None)
            .await;
        assert_eq!(status, 200, "{body}");
        ids(&body)
    };
    assert_eq!(read().await, [1, 2, 3]);
    assert_eq!(read().await, [1, 2, 3]);
    app.admin_call(
        "POST",
        "/items/orders",
        Some(json!({"customer_name": "Late", "amount": 1})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(read().await, [1, 2, 3, 4]);
    let (_, one) = app
        .call("GET", "/items/orders/4?fields=id", Some(&token), None)
        .await;
    assert_eq!(one["data"]["id"], 4, "{one}");
    let (_, two) = app
        .call("GET", "/items/orders/2?fields=id", Some(&token), None)
        .await;
    assert_eq!(
        two["data"]["id"], 2,
        "a reused plan takes the new key: {two}"
    );
}

on_every_database!(create_answers_as_read:
    a_create_answers_what_the_creator_may_read_on_postgres => Kind::Postgres,
    a_create_answers_what_the_creator_may_read_on_mariadb => Kind::MySql,
    a_create_answers_what_the_creator_may_read_on_sqlite => Kind::Sqlite,
);

/// A create answers the new item under the creator's read permission (its row rule and
/// fields), and nothing (204) when they may not read it; the item is created either way.
async fn create_answers_as_read(kind: Kind) {
    let app = App::start(kind, Some(notes_ddl(kind))).await;
    let (policies, author, author_id) =
        role_with_user(&app, "Authors", &[json!({"name": "Authors"})]).await;
    let policy = &policies[0];
    permit(&app, policy, "create", &["*"], json!({}), json!({})).await;
    let published = json!({"published": {"_eq": true}});
    let readable = ["id", "title", "published", "user_created"];
    permit(&app, policy, "read", &readable, published, json!({})).await;
    let post = |path: &'static str, body: Value| app.call("POST", path, Some(&author), Some(body));

    let (status, body) = post(
        "/items/notes",
        json!({"title": "open", "published": true, "secret": "s"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let item = &body["data"];
    assert_eq!(
        sorted_keys(item),
        ["id", "published", "title", "user_created"],
        "{body}"
    );
    assert_eq!(item["published"], true);
    assert_eq!(item["user_created"], author_id.as_str());
    let path = format!("/items/notes/{}", item["id"]);
    let (_, read) = app.call("GET", &path, Some(&author), None).await;
    assert_eq!(read["data"], *item);

    let (status, body) = post(
        "/items/notes?fields=id,title",
        json!({"title": "short", "published": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["title"], "short");
    assert_eq!(body["data"].as_object().map(|o| o.len()), Some(2), "{body}");

    for (path, note) in [
        // Outside the read rule.
        (
            "/items/notes",
            json!({"title": "draft", "published": false}),
        ),
        // A field the creator may not read.
        (
            "/items/notes?fields=secret",
            json!({"title": "sealed", "published": true}),
        ),
    ] {
        let (status, body) = post(path, note.clone()).await;
        assert_eq!(status, 204, "{path}: {body}");
        let title = note["title"].as_str().unwrap();
        let stored = app
            .admin_call(
                "GET",
                &format!("/items/notes?filter[title][_eq]={title}"),
                None,
            )
            .await;
        assert_eq!(
            stored["data"].as_array().map(Vec::len),
            Some(1),
            "{path}: created anyway"
        );
    }

    // The read folded into a create is kept between creates: a narrower read permission
    // applies to the very next one.
    let read_permission = app
        .admin_call(
            "GET",
            &format!("/permissions?filter[policy][_eq]={policy}&filter[action][_eq]=read"),
            None,
        )
        .await["data"][0]["id"]
        .clone();
    app.admin_call(
        "PATCH",
        &format!("/permissions/{read_permission}"),
        Some(json!({"fields": ["id", "published", "user_created"]})),
    )
    .await;
    let (status, body) = post(
        "/items/notes",
        json!({"title": "narrower", "published": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sorted_keys(&body["data"]),
        ["id", "published", "user_created"],
        "{body}"
    );
}

/// The keys of a JSON object, sorted.
fn sorted_keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

//! Authentication over HTTP on PostgreSQL, MariaDB and SQLite: the three login modes,
//! refresh rotation, logout, bad tokens of every kind, suspended users, static tokens,
//! and the handling of wrong credentials.

use base64::Engine;
use rectus::auth::jwt::{Claims, JwtKeys};
use rectus::db::Stmt;
use serde_json::{Value, json};

use crate::on_every_database;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind, SECRET};

on_every_database!(json_mode:
    json_mode_logs_in_rotates_and_logs_out_on_postgres => Kind::Postgres,
    json_mode_logs_in_rotates_and_logs_out_on_mariadb => Kind::MySql,
    json_mode_logs_in_rotates_and_logs_out_on_sqlite => Kind::Sqlite,
);

async fn json_mode(kind: Kind) {
    let app = App::start(kind, None).await;
    let (status, login) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "ADMIN@example.com", "password": ADMIN_PASSWORD, "mode": "json"})),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let access = login["data"]["access_token"].as_str().unwrap().to_string();
    let refresh = login["data"]["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(login["data"]["expires"], 900_000);

    let (status, me) = app.call("GET", "/users/me", Some(&access), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["email"], ADMIN_EMAIL);
    assert_eq!(me["data"]["password"], "**********");

    // The database keeps no usable refresh token.
    let database = app.db.connect().await;
    let stored: Vec<String> = database
        .query(&Stmt::new("SELECT token FROM directus_sessions"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("token").unwrap())
        .collect();
    assert!(
        !stored.is_empty() && !stored.contains(&refresh),
        "{stored:?}"
    );

    let (status, rotated) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let next = rotated["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(next, refresh);
    let (status, again) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(
        (status, &again["errors"][0]["extensions"]["code"]),
        (401, &json!("INVALID_CREDENTIALS"))
    );

    let (status, _) = app
        .call(
            "POST",
            "/auth/logout",
            None,
            Some(json!({"refresh_token": next})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": next})),
        )
        .await;
    assert_eq!(status, 401);
    database.close().await;
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(String::from)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

on_every_database!(cookie_and_session_modes:
    cookie_and_session_modes_on_postgres => Kind::Postgres,
    cookie_and_session_modes_on_mariadb => Kind::MySql,
    cookie_and_session_modes_on_sqlite => Kind::Sqlite,
);

async fn cookie_and_session_modes(kind: Kind) {
    let app = App::start(kind, None).await;
    let url = |p: &str| app.server.url(p);
    let credentials =
        |mode: &str| json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "mode": mode});

    // cookie: the refresh token travels in an httpOnly cookie only.
    let response = app
        .client
        .post(url("/auth/login"))
        .json(&credentials("cookie"))
        .send()
        .await
        .unwrap();
    let cookie = set_cookie(&response, "directus_refresh_token").expect("refresh cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["data"]["access_token"].is_string() && body["data"].get("refresh_token").is_none()
    );
    let refresh = cookie_value(&cookie);
    let response = app
        .client
        .post(url("/auth/refresh"))
        .header("cookie", format!("directus_refresh_token={refresh}"))
        .json(&json!({"mode": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated =
        cookie_value(&set_cookie(&response, "directus_refresh_token").expect("new cookie"));
    assert_ne!(rotated, refresh);
    let response = app
        .client
        .post(url("/auth/logout"))
        .header("cookie", format!("directus_refresh_token={rotated}"))
        .json(&json!({"mode": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(
        set_cookie(&response, "directus_refresh_token")
            .unwrap()
            .contains("Max-Age=0")
    );

    // session: the session cookie authenticates requests until logout.
    let response = app
        .client
        .post(url("/auth/login"))
        .json(&credentials("session"))
        .send()
        .await
        .unwrap();
    let session =
        cookie_value(&set_cookie(&response, "directus_session_token").expect("session cookie"));
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["expires"].is_number() && body["data"].get("access_token").is_none());
    let me = |session: String| {
        let client = app.client.clone();
        let url = url("/users/me");
        async move {
            client
                .get(url)
                .header("cookie", format!("directus_session_token={session}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(session.clone()).await, 200);
    // A refresh rotates the session: the cookie from before stops working at once.
    let response = app
        .client
        .post(url("/auth/refresh"))
        .header("cookie", format!("directus_session_token={session}"))
        .json(&json!({"mode": "session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated =
        cookie_value(&set_cookie(&response, "directus_session_token").expect("rotated cookie"));
    assert_eq!(
        me(session).await,
        401,
        "the session cookie from before the refresh"
    );
    let session = rotated;
    assert_eq!(me(session.clone()).await, 200);
    let response = app
        .client
        .post(url("/auth/logout"))
        .header("cookie", format!("directus_session_token={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        me(session).await,
        401,
        "a logged-out session stops working at once"
    );
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

on_every_database!(bad_tokens:
    bad_tokens_are_refused_on_postgres => Kind::Postgres,
    bad_tokens_are_refused_on_mariadb => Kind::MySql,
    bad_tokens_are_refused_on_sqlite => Kind::Sqlite,
);

async fn bad_tokens(kind: Kind) {
    let app = App::start(kind, None).await;
    let (_, me) = app.call("GET", "/users/me", Some(&app.admin), None).await;
    let id = me["data"]["id"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        id: id.clone(),
        role: None,
        app_access: true,
        admin_access: true,
        session: None,
        iat: now - 100,
        exp,
        iss: "directus".into(),
    };
    let ours = JwtKeys::new(SECRET);
    let code = |body: &Value| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    let expired = ours.sign(&claims(now - 10)).unwrap();
    let (status, body) = app.call("GET", "/users/me", Some(&expired), None).await;
    assert_eq!((status, code(&body)), (401, "TOKEN_EXPIRED".into()));

    let foreign = JwtKeys::new("some other secret")
        .sign(&claims(now + 600))
        .unwrap();
    let (status, body) = app.call("GET", "/users/me", Some(&foreign), None).await;
    assert_eq!((status, code(&body)), (403, "INVALID_TOKEN".into()));
    assert_eq!(body["errors"][0]["message"], "Invalid token.");

    let valid = ours.sign(&claims(now + 600)).unwrap();
    let parts: Vec<&str> = valid.split('.').collect();
    let mut forged = serde_json::to_value(claims(now + 6000)).unwrap();
    forged["id"] = json!(uuid::Uuid::new_v4().to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    let (status, body) = app.call("GET", "/users/me", Some(&tampered), None).await;
    assert_eq!((status, code(&body)), (403, "INVALID_TOKEN".into()));
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let (status, body) = app.call("GET", "/users/me", Some(&alg_none), None).await;
    assert_eq!((status, code(&body)), (403, "INVALID_TOKEN".into()));

    let (status, body) = app
        .call("GET", "/users/me", Some("not-a-token-at-all"), None)
        .await;
    assert_eq!((status, code(&body)), (401, "INVALID_CREDENTIALS".into()));

    // The valid one works, also as ?access_token=.
    let (status, _) = app.call("GET", "/users/me", Some(&valid), None).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            "GET",
            &format!("/users/me?access_token={valid}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
}

on_every_database!(users_and_tokens:
    suspension_static_tokens_and_wrong_credentials_on_postgres => Kind::Postgres,
    suspension_static_tokens_and_wrong_credentials_on_mariadb => Kind::MySql,
    suspension_static_tokens_and_wrong_credentials_on_sqlite => Kind::Sqlite,
);

async fn users_and_tokens(kind: Kind) {
    let app = App::start(kind, None).await;
    // A role whose policy grants app access: its users may read themselves.
    let policy = app
        .admin_call(
            "POST",
            "/policies",
            Some(json!({"name": "Staff", "app_access": true})),
        )
        .await["data"]["id"]
        .clone();
    let role = app
        .admin_call("POST", "/roles", Some(json!({"name": "Staff"})))
        .await["data"]["id"]
        .clone();
    app.admin_call(
        "POST",
        "/access",
        Some(json!({"role": role, "policy": policy})),
    )
    .await;
    let created = app
        .admin_call(
            "POST",
            "/users",
            Some(json!({"email": "Ed@Example.com", "password": "ed-password", "status": "active", "role": role})),
        )
        .await;
    let ed = created["data"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["data"]["email"], "ed@example.com");
    assert_eq!(created["data"]["password"], "**********");

    let token = app.login("ed@example.com", "ed-password").await;
    let (status, _) = app.call("GET", "/users/me", Some(&token), None).await;
    assert_eq!(status, 200);

    // Static token, concealed when read back.
    app.admin_call(
        "PATCH",
        &format!("/users/{ed}"),
        Some(json!({"token": "static-ed-token"})),
    )
    .await;
    let (status, me) = app
        .call("GET", "/users/me", Some("static-ed-token"), None)
        .await;
    assert_eq!(
        (status, me["data"]["id"].as_str()),
        (200, Some(ed.as_str()))
    );
    let listed = app
        .admin_call("GET", &format!("/users/{ed}?fields=token"), None)
        .await;
    assert_eq!(listed["data"]["token"], "**********");
    let (status, _) = app
        .call(
            "GET",
            "/users?filter[token][_eq]=static-ed-token",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        status, 400,
        "concealed values cannot be probed with filters"
    );
    // A token replaced through rectus stops working at once, though tokens are cached.
    app.admin_call(
        "PATCH",
        &format!("/users/{ed}"),
        Some(json!({"token": "static-ed-token-2"})),
    )
    .await;
    let (status, _) = app
        .call("GET", "/users/me", Some("static-ed-token"), None)
        .await;
    assert_eq!(status, 401, "the replaced token");
    let (status, _) = app
        .call("GET", "/users/me", Some("static-ed-token-2"), None)
        .await;
    assert_eq!(status, 200, "the new token");

    // Updating oneself needs an update permission; admins have it.
    let (status, _) = app
        .call(
            "PATCH",
            "/users/me",
            Some(&token),
            Some(json!({"first_name": "Ed"})),
        )
        .await;
    assert_eq!(status, 403);
    let me = app
        .admin_call("PATCH", "/users/me", Some(json!({"first_name": "Root"})))
        .await;
    assert_eq!(me["data"]["first_name"], "Root");
    let (status, _) = app.call("GET", "/users/me", None, None).await;
    assert_eq!(status, 401, "the public has no \"me\"");

    // Suspension: every token and session stops at once.
    app.admin_call(
        "PATCH",
        &format!("/users/{ed}"),
        Some(json!({"status": "suspended"})),
    )
    .await;
    for t in [token.as_str(), "static-ed-token-2"] {
        let (status, _) = app.call("GET", "/users/me", Some(t), None).await;
        assert_eq!(status, 401, "{t}");
    }
    let (status, body) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "ed@example.com", "password": "ed-password"})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (401, &json!("USER_SUSPENDED"))
    );

    // A wrong password and an unknown e-mail get the same answer.
    let wrong = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "nope"})),
        )
        .await;
    let unknown = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "nope"})),
        )
        .await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 401);
    assert_eq!(
        wrong.1["errors"][0]["extensions"]["code"],
        "INVALID_CREDENTIALS"
    );

    // Repeated failures throttle that e-mail only.
    for _ in 0..5 {
        app.call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "victim@example.com", "password": "x"})),
        )
        .await;
    }
    let (status, body) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "victim@example.com", "password": "x"})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (429, &json!("REQUESTS_EXCEEDED"))
    );
    let (status, _) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "other accounts are not locked");

    for (body, field) in [
        (json!({"password": "x"}), "email"),
        (json!({"email": "a@b.c"}), "password"),
    ] {
        let (status, response) = app.call("POST", "/auth/login", None, Some(body)).await;
        assert_eq!(status, 400);
        assert!(
            response["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }
    let response = app
        .client
        .post(app.server.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_PAYLOAD");
}

/// Each password hash holds 64 MiB (Directus's argon2 parameters) while it runs: a burst of
/// logins is hashed a few at a time (one per core, at most four), so memory stays bounded
/// however many arrive together. Every login still succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_logins_is_hashed_a_few_at_a_time() {
    let app = App::start(Kind::Sqlite, None).await;
    let pid = app.server.pid();
    let status_kb = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
    };
    // Only the burst's growth is measured: the peak so far (the first start hashes the
    // admin password) is reset to what rectus holds now.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before_kb = status_kb("VmRSS:");
    const LOGINS: usize = 12;
    let logins = (0..LOGINS).map(|_| app.login(ADMIN_EMAIL, ADMIN_PASSWORD));
    let tokens = futures_util::future::join_all(logins).await;
    assert_eq!(tokens.len(), LOGINS);
    let growth_kb = status_kb("VmHWM:").saturating_sub(before_kb);
    let places = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4) as u64;
    // The hashes at once, plus less than one more hash for the requests themselves: one
    // hash over the bound fails this.
    let bound_kb = places * 64 * 1024 + 48 * 1024;
    assert!(
        growth_kb < bound_kb,
        "grew {growth_kb} kB with {LOGINS} logins at once; at most {places} hashes should run together"
    );
}

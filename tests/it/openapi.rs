//! `/server/specs/oas`: the OpenAPI document of the REST API, checked by a real OpenAPI
//! validator (openapi-spec-validator, the reference validator of the Python world), for an
//! admin and for a role that sees less.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::graphql::paid_orders_reader;
use crate::items::seeded;
use crate::on_every_database;
use crate::support::Kind;

/// A `PYTHONPATH` under which `openapi_spec_validator` imports: the machine's own, or one
/// installed with pip into the test's target directory on first use.
fn validator_path() -> Option<PathBuf> {
    let imports = |path: Option<&PathBuf>| {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import openapi_spec_validator"]);
        if let Some(p) = path {
            cmd.env("PYTHONPATH", p);
        }
        cmd.output().is_ok_and(|o| o.status.success())
    };
    if imports(None) {
        return None;
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openapi-spec-validator");
    if !imports(Some(&target)) {
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg("openapi-spec-validator")
            .output()
            .expect("python3 with pip is needed to validate the OpenAPI document");
        assert!(
            out.status.success(),
            "pip install openapi-spec-validator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(target)
}

fn assert_valid(document: &Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("oas.json");
    std::fs::write(&file, document.to_string()).expect("write");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "openapi_spec_validator"]).arg(&file);
    if let Some(path) = validator_path() {
        cmd.env("PYTHONPATH", path);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "the document does not validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn methods(document: &Value, path: &str) -> Vec<String> {
    let mut methods: Vec<String> = document["paths"][path]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    methods.sort();
    methods
}

fn properties(document: &Value, schema: &str) -> Vec<String> {
    let mut names: Vec<String> = document["components"]["schemas"][schema]["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

on_every_database!(specification:
    openapi_on_postgres => Kind::Postgres,
    openapi_on_sqlite => Kind::Sqlite,
);

async fn specification(kind: Kind) {
    let app = seeded(kind).await;
    let admin = app.admin_call("GET", "/server/specs/oas", None).await;
    assert_eq!(admin["openapi"], "3.0.1");
    assert_valid(&admin);
    assert_eq!(
        methods(&admin, "/items/orders"),
        ["delete", "get", "patch", "post"]
    );
    assert_eq!(
        methods(&admin, "/items/orders/{id}"),
        ["delete", "get", "patch"]
    );
    assert!(properties(&admin, "ItemsOrders").contains(&"amount".to_string()));
    assert_eq!(
        admin["components"]["schemas"]["ItemsOrders"]["properties"]["customer"],
        json!({"oneOf": [{"type": "integer"}, {"$ref": "#/components/schemas/ItemsCustomers"}]})
    );
    assert!(
        admin["paths"]["/users"].is_object(),
        "system paths for admins"
    );

    let (_, token) = paid_orders_reader(&app, "Reader").await;
    let (status, reader) = app
        .call("GET", "/server/specs/oas", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{reader}");
    assert_valid(&reader);
    assert_eq!(methods(&reader, "/items/orders"), ["get"]);
    assert_eq!(methods(&reader, "/items/orders/{id}"), ["get"]);
    assert_eq!(
        properties(&reader, "ItemsOrders"),
        ["customer", "customer_name", "id"]
    );
    assert_eq!(
        reader["components"]["schemas"]["ItemsOrders"]["properties"]["customer"],
        json!({"type": "integer", "nullable": true}),
        "an unreadable relation is its key"
    );
    assert!(reader["paths"]["/items/customers"].is_null());
    assert!(reader["components"]["schemas"]["ItemsCustomers"].is_null());
    assert!(reader["paths"]["/users"].is_null());
}

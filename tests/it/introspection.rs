//! One logical schema — every Directus type, a composite unique, foreign keys, a view, a
//! table without a primary key — written in each database's own DDL, introspected on
//! PostgreSQL, MariaDB and SQLite: the three SchemaOverviews are the same, and match the
//! committed snapshot `tests/snapshots/introspection.json`.

use rectus::db::{introspect, migrations};
use rectus_policies::{FieldType, SchemaOverview};
use serde_json::Value;

use crate::support::{ALL_KINDS, Kind, TestDb};

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/snapshots/introspection.json"
);

fn fixture_ddl(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => {
            r#"
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name varchar(120) NOT NULL,
  email varchar(255) UNIQUE,
  bio text,
  big_number bigint DEFAULT 0,
  rating double precision,
  balance numeric(10,2) DEFAULT 9.99,
  active boolean NOT NULL DEFAULT true,
  birthday date,
  wake_up time,
  last_seen timestamp,
  created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
  prefs json,
  external_id uuid,
  avatar bytea,
  tags text,
  password_hash varchar(255),
  status varchar(20) NOT NULL DEFAULT 'active',
  location point
);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer integer REFERENCES customers(id) ON DELETE SET NULL,
  total numeric(12,2) NOT NULL,
  code varchar(20) NOT NULL,
  region varchar(10) NOT NULL,
  note text,
  UNIQUE (code, region)
);
CREATE TABLE tags (id varchar(64) PRIMARY KEY, label varchar(255));
CREATE TABLE orders_tags (
  id serial PRIMARY KEY,
  orders_id integer REFERENCES orders(id) ON DELETE CASCADE,
  tags_id varchar(64) REFERENCES tags(id) ON DELETE CASCADE
);
CREATE TABLE site_settings (id serial PRIMARY KEY, title varchar(255));
CREATE TABLE audit_log (message text);
CREATE TABLE pairs (a integer NOT NULL, b integer NOT NULL, PRIMARY KEY (a, b));
CREATE VIEW customer_names AS SELECT id, name FROM customers
"#
        }
        Kind::MySql => {
            r#"
CREATE TABLE customers (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name varchar(120) NOT NULL,
  email varchar(255) NULL UNIQUE,
  bio text,
  big_number bigint DEFAULT 0,
  rating double,
  balance decimal(10,2) DEFAULT 9.99,
  active tinyint(1) NOT NULL DEFAULT 1,
  birthday date,
  wake_up time,
  last_seen datetime NULL,
  created_at timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  prefs json,
  external_id uuid,
  avatar blob,
  tags text,
  password_hash varchar(255),
  status varchar(20) NOT NULL DEFAULT 'active',
  location point
);
CREATE TABLE orders (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer int NULL,
  total decimal(12,2) NOT NULL,
  code varchar(20) NOT NULL,
  region varchar(10) NOT NULL,
  note text,
  UNIQUE KEY orders_code_region (code, region),
  CONSTRAINT orders_customer_foreign FOREIGN KEY (customer) REFERENCES customers (id) ON DELETE SET NULL
);
CREATE TABLE tags (id varchar(64) NOT NULL PRIMARY KEY, label varchar(255));
CREATE TABLE orders_tags (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  orders_id int NULL,
  tags_id varchar(64) NULL,
  FOREIGN KEY (orders_id) REFERENCES orders (id) ON DELETE CASCADE,
  FOREIGN KEY (tags_id) REFERENCES tags (id) ON DELETE CASCADE
);
CREATE TABLE site_settings (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, title varchar(255));
CREATE TABLE audit_log (message text);
CREATE TABLE pairs (a int NOT NULL, b int NOT NULL, PRIMARY KEY (a, b));
CREATE VIEW customer_names AS SELECT id, name FROM customers
"#
        }
        Kind::Sqlite => {
            r#"
CREATE TABLE customers (
  id integer PRIMARY KEY AUTOINCREMENT,
  name varchar(120) NOT NULL,
  email varchar(255) UNIQUE,
  bio text,
  big_number bigint DEFAULT 0,
  rating double,
  balance decimal(10,2) DEFAULT 9.99,
  active boolean NOT NULL DEFAULT TRUE,
  birthday date,
  wake_up time,
  last_seen datetime,
  created_at timestamp DEFAULT CURRENT_TIMESTAMP,
  prefs json,
  external_id uuid,
  avatar blob,
  tags text,
  password_hash varchar(255),
  status varchar(20) NOT NULL DEFAULT 'active',
  location point
);
CREATE TABLE orders (
  id integer PRIMARY KEY AUTOINCREMENT,
  customer integer REFERENCES customers(id) ON DELETE SET NULL,
  total decimal(12,2) NOT NULL,
  code varchar(20) NOT NULL,
  region varchar(10) NOT NULL,
  note text,
  UNIQUE (code, region)
);
CREATE TABLE tags (id varchar(64) NOT NULL PRIMARY KEY, label varchar(255));
CREATE TABLE orders_tags (
  id integer PRIMARY KEY AUTOINCREMENT,
  orders_id integer REFERENCES orders(id) ON DELETE CASCADE,
  tags_id varchar(64) REFERENCES tags(id) ON DELETE CASCADE
);
CREATE TABLE site_settings (id integer PRIMARY KEY AUTOINCREMENT, title varchar(255));
CREATE TABLE audit_log (message text);
CREATE TABLE pairs (a integer NOT NULL, b integer NOT NULL, PRIMARY KEY (a, b));
CREATE VIEW customer_names AS SELECT id, name FROM customers
"#
        }
    }
}

/// Directus metadata for the fixture, in SQL every database accepts.
const FIXTURE_METADATA: &str = r#"
INSERT INTO directus_collections (collection, note, singleton, hidden) VALUES ('customers', 'People who buy', false, false);
INSERT INTO directus_collections (collection, singleton, hidden, sort_field) VALUES ('site_settings', true, false, NULL);
INSERT INTO directus_collections (collection, singleton, hidden) VALUES ('shop', false, false);
INSERT INTO directus_fields (collection, field, special) VALUES ('customers', 'tags', 'csv');
INSERT INTO directus_fields (collection, field, special, note) VALUES ('customers', 'password_hash', 'hash', 'Never shown');
INSERT INTO directus_fields (collection, field, special, searchable) VALUES ('customers', 'bio', NULL, false);
INSERT INTO directus_fields (collection, field, special) VALUES ('customers', 'orders', 'o2m');
INSERT INTO directus_fields (collection, field, special) VALUES ('orders', 'tags', 'm2m');
INSERT INTO directus_fields (collection, field, special) VALUES ('orders', 'divider', 'alias,no-data');
INSERT INTO directus_fields (collection, field, special) VALUES ('orders', 'ghost', NULL);
INSERT INTO directus_relations (many_collection, many_field, one_collection, one_field) VALUES ('orders', 'customer', 'customers', 'orders');
INSERT INTO directus_relations (many_collection, many_field, one_collection, one_field, junction_field) VALUES ('orders_tags', 'orders_id', 'orders', 'tags', 'tags_id');
INSERT INTO directus_relations (many_collection, many_field, one_collection, one_field, junction_field) VALUES ('orders_tags', 'tags_id', 'tags', NULL, 'orders_id')
"#;

async fn introspect_fixture(kind: Kind) -> SchemaOverview {
    let db = TestDb::new(kind).await;
    db.exec(fixture_ddl(kind)).await;
    let database = db.connect().await;
    migrations::migrate(&database).await.expect("system tables");
    db.exec(FIXTURE_METADATA).await;
    let schema = introspect::introspect(&database).await.expect("introspect");
    database.close().await;
    schema
}

/// The parts of a SchemaOverview that must agree across databases: everything but the
/// database's own type spelling and constraint names.
fn portable(schema: &SchemaOverview, system: bool) -> Value {
    let mut json = serde_json::to_value(schema).expect("serialise");
    if let Some(collections) = json["collections"].as_object_mut() {
        collections.retain(|name, _| name.starts_with("directus_") == system);
        for collection in collections.values_mut() {
            for field in collection["fields"]
                .as_object_mut()
                .expect("fields")
                .values_mut()
            {
                field.as_object_mut().expect("field").remove("db_type");
            }
        }
    }
    if let Some(relations) = json["relations"].as_array_mut() {
        relations.retain(|r| {
            r["many_collection"]
                .as_str()
                .is_some_and(|c| c.starts_with("directus_") == system)
        });
        for relation in relations.iter_mut() {
            if let Some(fk) = relation["foreign_key"].as_object_mut() {
                fk.remove("constraint_name");
            }
        }
    }
    json
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_schema_introspects_the_same_on_every_database() {
    let mut results = Vec::new();
    for kind in ALL_KINDS {
        results.push((kind, introspect_fixture(kind).await));
    }
    let (_, reference) = &results[0];
    let user = portable(reference, false);

    // Spot checks that say what the snapshot means.
    let customers = reference.collection("customers").expect("customers");
    let types: Vec<(&str, FieldType)> = customers
        .fields
        .values()
        .map(|f| (f.field.as_str(), f.kind))
        .collect();
    for expected in [
        ("id", FieldType::Integer),
        ("name", FieldType::String),
        ("bio", FieldType::Text),
        ("big_number", FieldType::BigInteger),
        ("rating", FieldType::Float),
        ("balance", FieldType::Decimal),
        ("active", FieldType::Boolean),
        ("birthday", FieldType::Date),
        ("wake_up", FieldType::Time),
        ("last_seen", FieldType::DateTime),
        ("created_at", FieldType::Timestamp),
        ("prefs", FieldType::Json),
        ("external_id", FieldType::Uuid),
        ("avatar", FieldType::Binary),
        ("tags", FieldType::Csv),
        ("password_hash", FieldType::Hash),
        ("orders", FieldType::Alias),
        ("location", FieldType::Unknown),
    ] {
        assert!(
            types.contains(&expected),
            "missing {expected:?} in {types:?}"
        );
    }
    assert!(customers.fields["id"].auto_increment && customers.fields["id"].primary_key);
    assert!(customers.fields["email"].unique);
    assert_eq!(customers.note.as_deref(), Some("People who buy"));
    let orders = reference.collection("orders").expect("orders");
    assert!(
        !orders.fields["code"].unique,
        "a composite unique is not a unique column"
    );
    assert!(!orders.fields["region"].unique);
    assert!(orders.fields.contains_key("divider") && !orders.fields.contains_key("ghost"));
    assert!(
        reference
            .collection("site_settings")
            .expect("singleton")
            .singleton
    );
    let view = reference.collection("customer_names").expect("view");
    assert!(view.view && view.primary_key == "id");
    assert!(
        reference.collection("audit_log").is_none(),
        "no primary key: left out"
    );
    assert!(
        reference.collection("pairs").is_none(),
        "composite key: left out"
    );
    assert!(
        reference.collection("shop").is_none(),
        "a folder has no table"
    );
    let m2o = reference.many_to_one("orders", "customer").expect("m2o");
    assert_eq!(m2o.one_collection.as_deref(), Some("customers"));
    assert_eq!(
        reference
            .one_to_many_by_alias("customers", "orders")
            .map(|r| r.many_field.as_str()),
        Some("customer")
    );
    assert!(reference.collections.values().filter(|c| c.system).count() >= 26);
    assert_eq!(reference.user_collections().count(), 6);

    for (kind, schema) in &results[1..] {
        assert_eq!(
            portable(schema, false),
            user,
            "user collections differ between PostgreSQL and {kind:?}"
        );
        assert_eq!(
            portable(schema, true),
            portable(reference, true),
            "system collections differ between PostgreSQL and {kind:?}"
        );
    }

    let rendered = serde_json::to_string_pretty(&user).expect("render") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &rendered).expect("write snapshot");
    }
    let committed = std::fs::read_to_string(SNAPSHOT)
        .expect("tests/snapshots/introspection.json (UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        rendered, committed,
        "the SchemaOverview changed; review, then UPDATE_SNAPSHOTS=1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixture_directus_database_introspects_with_its_system_types() {
    let db = TestDb::new(Kind::Postgres).await;
    crate::bootstrap::load_directus_fixture(&db);
    let database = db.connect().await;
    let schema = introspect::introspect(&database).await.expect("introspect");
    assert_eq!(schema.user_collections().count(), 0);
    let users = schema.collection("directus_users").expect("directus_users");
    assert!(users.system);
    assert_eq!(users.fields["password"].kind, FieldType::Hash);
    assert_eq!(users.fields["id"].kind, FieldType::Uuid);
    assert_eq!(users.fields["tags"].kind, FieldType::Json);
    let permissions = schema
        .collection("directus_permissions")
        .expect("permissions");
    assert_eq!(permissions.fields["fields"].kind, FieldType::Csv);
    assert!(permissions.fields["id"].auto_increment);
    let access_policy = schema.many_to_one("directus_access", "policy").expect("fk");
    assert_eq!(
        access_policy.one_collection.as_deref(),
        Some("directus_policies")
    );
    database.close().await;
}

//! Table-driven tests of the filter language: parse errors with their paths, and the SQL each
//! operator compiles to on each dialect (text in, text out).

use std::collections::BTreeMap;

use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, Query, SqliteQueryBuilder};
use serde_json::{Value as Json, json};

use super::*;
use crate::dialect::Dialect;
use crate::schema::{Collection, Field, FieldType, Relation, SchemaOverview};

pub(crate) fn field(name: &str, kind: FieldType) -> Field {
    Field {
        field: name.into(),
        kind,
        db_type: None,
        nullable: true,
        default_value: None,
        max_length: None,
        precision: None,
        scale: None,
        primary_key: name == "id",
        auto_increment: false,
        unique: false,
        special: vec![],
        note: None,
        searchable: true,
        required: false,
        validation: None,
        position: 0,
    }
}

pub(crate) fn collection(name: &str, fields: &[(&str, FieldType)]) -> Collection {
    Collection {
        collection: name.into(),
        primary_key: "id".into(),
        view: false,
        system: false,
        singleton: false,
        hidden: false,
        sort_field: None,
        note: None,
        accountability: None,
        fields: fields
            .iter()
            .zip(0..)
            .map(|((n, k), position)| {
                let field = Field {
                    position,
                    ..field(n, *k)
                };
                (n.to_string(), field)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

pub(crate) fn schema() -> SchemaOverview {
    use FieldType::*;
    let articles = collection(
        "articles",
        &[
            ("id", Integer),
            ("title", String),
            ("body", Text),
            ("views", Integer),
            ("price", Decimal),
            ("published", Boolean),
            ("published_on", Date),
            ("created_at", Timestamp),
            ("author", Integer),
            ("secret", Hash),
            ("meta", Json),
            ("uid", Uuid),
        ],
    );
    let authors = collection(
        "authors",
        &[("id", Integer), ("name", String), ("articles", Alias)],
    );
    SchemaOverview {
        collections: [("articles".into(), articles), ("authors".into(), authors)].into(),
        relations: vec![Relation {
            one_collection: Some("authors".into()),
            one_field: Some("articles".into()),
            has_meta: true,
            ..Relation::new("articles", "author")
        }],
    }
}

fn variables() -> Variables {
    use chrono::TimeZone;
    Variables {
        user: Some("6e1bb3a4-0e57-4a83-9a46-4c3c6a1b3c51".into()),
        roles: vec!["r1".into(), "r2".into()],
        now: chrono::Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap(),
        ..Variables::default()
    }
}

fn parse_on(collection: &str, filter: Json) -> Result<Filter, FilterError> {
    let schema = schema();
    let vars = variables();
    parse(
        collection,
        &filter,
        &ParseOptions {
            schema: &schema,
            variables: &vars,
            allow_regex: false,
            access: None,
            root: "filter",
        },
    )
}

/// The WHERE clause a filter on `articles` compiles to, on each dialect.
fn sql(filter: Json) -> [String; 3] {
    let schema = schema();
    let parsed = parse_on("articles", filter).expect("filter parses");
    Dialect::ALL.map(|dialect| {
        let ctx = SqlContext::new(&schema, dialect);
        let condition = to_condition(&parsed, "articles", "articles", &ctx).expect("compiles");
        let mut q = Query::select();
        q.column("id").from("articles").cond_where(condition);
        let text = match dialect {
            Dialect::Postgres => q.to_string(PostgresQueryBuilder),
            Dialect::MySql => q.to_string(MysqlQueryBuilder),
            Dialect::Sqlite => q.to_string(SqliteQueryBuilder),
        };
        text.split_once(" WHERE ")
            .map(|(_, w)| w.to_string())
            .unwrap_or_default()
    })
}

#[test]
fn comparison_operators_compile_on_every_dialect() {
    let cases: &[(Json, [&str; 3])] = &[
        (
            json!({"views": {"_eq": "5"}}),
            [
                r#""articles"."views" = 5"#,
                "`articles`.`views` = 5",
                r#""articles"."views" = 5"#,
            ],
        ),
        (
            json!({"views": {"_neq": 5, "_lt": 10}}),
            [
                r#""articles"."views" <> 5 AND "articles"."views" < 10"#,
                "`articles`.`views` <> 5 AND `articles`.`views` < 10",
                r#""articles"."views" <> 5 AND "articles"."views" < 10"#,
            ],
        ),
        (
            json!({"title": {"_eq": null}}),
            [
                r#""articles"."title" IS NULL"#,
                "`articles`.`title` IS NULL",
                r#""articles"."title" IS NULL"#,
            ],
        ),
        (
            json!({"views": {"_in": "1,2,3"}}),
            [
                r#""articles"."views" IN (1, 2, 3)"#,
                "`articles`.`views` IN (1, 2, 3)",
                r#""articles"."views" IN (1, 2, 3)"#,
            ],
        ),
        (
            json!({"title": {"_nin": ["$CURRENT_ROLES"]}, "views": {"_gt": 0}}),
            [
                r#""articles"."title" NOT IN ('r1', 'r2') AND "articles"."views" > 0"#,
                "`articles`.`title` NOT IN ('r1', 'r2') AND `articles`.`views` > 0",
                r#""articles"."title" NOT IN ('r1', 'r2') AND "articles"."views" > 0"#,
            ],
        ),
        (
            json!({"price": {"_between": ["1.5", 9]}}),
            [
                r#""articles"."price" BETWEEN '1.5' AND '9'"#,
                "`articles`.`price` BETWEEN '1.5' AND '9'",
                r#""articles"."price" BETWEEN '1.5' AND '9'"#,
            ],
        ),
        (
            json!({"published": {"_eq": "true"}}),
            [
                r#""articles"."published" = TRUE"#,
                "`articles`.`published` = TRUE",
                r#""articles"."published" = TRUE"#,
            ],
        ),
        (
            json!({"title": {"_null": true}, "body": {"_nnull": "true"}}),
            [
                r#""articles"."title" IS NULL AND "articles"."body" IS NOT NULL"#,
                "`articles`.`title` IS NULL AND `articles`.`body` IS NOT NULL",
                r#""articles"."title" IS NULL AND "articles"."body" IS NOT NULL"#,
            ],
        ),
        (
            json!({"title": {"_empty": true}}),
            [
                r#""articles"."title" IS NULL OR "articles"."title" = ''"#,
                "`articles`.`title` IS NULL OR `articles`.`title` = ''",
                r#""articles"."title" IS NULL OR "articles"."title" = ''"#,
            ],
        ),
        (
            json!({"title": {"_empty": true}, "views": {"_eq": 1}}),
            [
                r#"("articles"."title" IS NULL OR "articles"."title" = '') AND "articles"."views" = 1"#,
                "(`articles`.`title` IS NULL OR `articles`.`title` = '') AND `articles`.`views` = 1",
                r#"("articles"."title" IS NULL OR "articles"."title" = '') AND "articles"."views" = 1"#,
            ],
        ),
        (json!({"title": {"_null": false}}), ["TRUE", "TRUE", "TRUE"]),
        (
            json!({"created_at": {"_gte": "2024-01-01T00:00:00Z"}}),
            [
                r#""articles"."created_at" >= '2024-01-01 00:00:00.000000'"#,
                "`articles`.`created_at` >= '2024-01-01 00:00:00.000000'",
                r#"(julianday("articles"."created_at")) >= (julianday('2024-01-01 00:00:00.000000'))"#,
            ],
        ),
        (
            json!({"year(created_at)": {"_eq": 2024}}),
            [
                r#"(CAST(EXTRACT(YEAR FROM "articles"."created_at") AS INTEGER)) = 2024"#,
                "(YEAR(`articles`.`created_at`)) = 2024",
                r#"(CAST(strftime('%Y', "articles"."created_at") AS INTEGER)) = 2024"#,
            ],
        ),
        (
            json!({"_or": [{"views": {"_gt": 1}}, {"title": {"_eq": "a"}}]}),
            [
                r#""articles"."views" > 1 OR "articles"."title" = 'a'"#,
                "`articles`.`views` > 1 OR `articles`.`title` = 'a'",
                r#""articles"."views" > 1 OR "articles"."title" = 'a'"#,
            ],
        ),
        (json!({"_or": []}), ["FALSE", "FALSE", "FALSE"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            sql(filter.clone()),
            expected.map(String::from),
            "for {filter}"
        );
    }
}

#[test]
fn text_operators_escape_wildcards_and_respect_case() {
    assert_eq!(
        sql(json!({"title": {"_contains": "50%_off"}})),
        [
            r#""articles"."title" LIKE E'%50\\%\\_off%' ESCAPE E'\\'"#,
            r#"(CAST(`articles`.`title` AS BINARY)) LIKE '%50\\%\\_off%' ESCAPE '\\'"#,
            r#"(instr("articles"."title", '50%_off')) > 0"#,
        ]
        .map(String::from)
    );
    assert_eq!(
        sql(json!({"title": {"_istarts_with": "AB"}}))[0],
        r#"LOWER("articles"."title") LIKE 'ab%' ESCAPE E'\\'"#
    );
    assert_eq!(
        sql(json!({"title": {"_nends_with": "z"}}))[2],
        r#""articles"."title" IS NOT NULL AND (NOT ((substr("articles"."title", -1)) = 'z'))"#
    );
    assert_eq!(
        sql(json!({"title": {"_starts_with": "ab"}}))[2],
        r#"(substr("articles"."title", 1, 2)) = 'ab'"#
    );
}

#[test]
fn relational_filters_become_subqueries() {
    let [pg, ..] = sql(json!({"author": {"name": {"_eq": "Ann"}}}));
    assert_eq!(
        pg,
        r#""articles"."author" IN (SELECT "__f1"."id" FROM "authors" AS "__f1" WHERE "__f1"."name" = 'Ann')"#
    );
    let schema = schema();
    let parsed = parse_on(
        "authors",
        json!({"articles": {"_none": {"views": {"_gt": 10}}}}),
    )
    .unwrap();
    let ctx = SqlContext::new(&schema, Dialect::Postgres);
    let c = to_condition(&parsed, "authors", "authors", &ctx).unwrap();
    let text = Query::select()
        .column("id")
        .from("authors")
        .cond_where(c)
        .to_string(PostgresQueryBuilder);
    assert!(
        text.ends_with(r#"WHERE "authors"."id" NOT IN (SELECT "__f1"."author" FROM "articles" AS "__f1" WHERE "__f1"."author" IS NOT NULL AND "__f1"."views" > 10)"#),
        "{text}"
    );
    let parsed = parse_on("authors", json!({"count(articles)": {"_gte": 2}})).unwrap();
    let ctx = SqlContext::new(&schema, Dialect::Sqlite);
    let c = to_condition(&parsed, "authors", "authors", &ctx).unwrap();
    let text = Query::select()
        .column("id")
        .from("authors")
        .cond_where(c)
        .to_string(SqliteQueryBuilder);
    assert!(
        text.ends_with(r#"WHERE (SELECT COUNT(*) FROM "articles" AS "__f1" WHERE "__f1"."author" = "authors"."id") >= 2"#),
        "{text}"
    );
}

#[test]
fn dynamic_variables_are_substituted() {
    let [pg, ..] = sql(json!({"uid": {"_eq": "$CURRENT_USER"}}));
    assert_eq!(
        pg,
        r#""articles"."uid" = '6e1bb3a4-0e57-4a83-9a46-4c3c6a1b3c51'"#
    );
    let [pg, ..] = sql(json!({"title": {"_in": ["$CURRENT_ROLES", "x"]}}));
    assert_eq!(pg, r#""articles"."title" IN ('r1', 'r2', 'x')"#);
    // A list variable that is empty is no error: the list admits nothing.
    let overview = schema();
    let nobody = Variables::default();
    let parsed = parse(
        "articles",
        &json!({"title": {"_in": "$CURRENT_ROLES"}}),
        &ParseOptions {
            schema: &overview,
            variables: &nobody,
            allow_regex: false,
            access: None,
            root: "filter",
        },
    )
    .unwrap();
    assert!(!matches(&parsed, &json!({"title": "r1"})));
    let [pg, ..] = sql(json!({"created_at": {"_lt": "$NOW(-1 day)"}}));
    assert_eq!(
        pg,
        r#""articles"."created_at" < '2024-01-30 12:00:00.000000'"#
    );
    // The public has no user: the comparison matches nothing.
    let schema = schema();
    let public = Variables::default();
    let parsed = parse(
        "articles",
        &json!({"uid": {"_eq": "$CURRENT_USER"}}),
        &ParseOptions {
            schema: &schema,
            variables: &public,
            allow_regex: false,
            access: None,
            root: "filter",
        },
    )
    .unwrap();
    assert!(!matches(&parsed, &json!({"uid": null})));
    let ctx = SqlContext::new(&schema, Dialect::Postgres);
    let c = to_condition(&parsed, "articles", "articles", &ctx).unwrap();
    let text = Query::select()
        .column("id")
        .from("articles")
        .cond_where(c)
        .to_string(PostgresQueryBuilder);
    assert!(text.ends_with("WHERE FALSE"), "{text}");
}

#[test]
fn malformed_filters_name_the_bad_part() {
    let invalid =
        |filter: Json, path: &str, needle: &str| match parse_on("articles", filter.clone()) {
            Err(FilterError::Invalid { path: p, message }) => {
                assert_eq!(p, path, "{filter}");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{filter}: {other:?}"),
        };
    invalid(
        json!({"views": {"_eqq": 1}}),
        "filter.views._eqq",
        "not a filter operator",
    );
    invalid(
        json!({"views": {"_eq": "many"}}),
        "filter.views._eq",
        "not an integer",
    );
    invalid(
        json!({"_and": [{"views": {"_eq": 1}}, 5]}),
        "filter._and.1",
        "must be an object",
    );
    invalid(json!({"_and": {"views": 1}}), "filter._and", "array");
    invalid(json!({"views": 5}), "filter.views", "object of operators");
    invalid(
        json!({"title": {"_regex": "^a"}}),
        "filter.title._regex",
        "validation rules",
    );
    invalid(
        json!({"secret": {"_eq": "x"}}),
        "filter.secret._eq",
        "_null and _nnull",
    );
    invalid(
        json!({"views": {"_contains": "1"}}),
        "filter.views._contains",
        "text fields",
    );
    invalid(
        json!({"views": {"_between": [1]}}),
        "filter.views._between",
        "two values",
    );
    invalid(
        json!({"title": {"_intersects": "x"}}),
        "filter.title._intersects",
        "not supported on this database",
    );
    invalid(
        json!({"title": {"name": {"_eq": 1}}}),
        "filter.title",
        "not a relational field",
    );
    invalid(
        json!({"year(title)": {"_eq": 1}}),
        "filter.year(title)",
        "cannot be used",
    );
    invalid(
        json!({"uid": {"_eq": "$CURRENT_USR"}}),
        "filter.uid._eq",
        "not a dynamic variable",
    );
    invalid(
        json!({"uid": {"_eq": "42"}}),
        "filter.uid._eq",
        "not a uuid",
    );
    invalid(
        json!({"_xor": []}),
        "filter._xor",
        "not a field or a logical operator",
    );
    assert_eq!(
        parse_on("articles", json!({"nope": {"_eq": 1}})),
        Err(FilterError::Forbidden {
            collection: "articles".into(),
            field: "nope".into()
        })
    );
    assert!(parse_on("articles", json!({"secret": {"_null": true}})).is_ok());
}

#[test]
fn field_access_is_checked_through_relations() {
    let schema = schema();
    let vars = variables();
    let access = |collection: &str, field: &str| !(collection == "authors" && field == "name");
    let options = ParseOptions {
        schema: &schema,
        variables: &vars,
        allow_regex: false,
        access: Some(&access),
        root: "filter",
    };
    assert_eq!(
        parse(
            "articles",
            &json!({"author": {"name": {"_eq": "x"}}}),
            &options
        ),
        Err(FilterError::Forbidden {
            collection: "authors".into(),
            field: "name".into()
        })
    );
    assert!(parse("articles", &json!({"author": {"id": {"_eq": 1}}}), &options).is_ok());
}

#[test]
fn in_memory_evaluation_follows_sql_null_rules() {
    let f = |filter: Json| parse_on("articles", filter).unwrap();
    let item =
        json!({"views": 5, "title": "Hello", "body": null, "created_at": "2024-03-01T10:00:00Z"});
    assert!(matches(&f(json!({"views": {"_gt": 4}})), &item));
    assert!(!matches(&f(json!({"views": {"_in": [1, 2]}})), &item));
    assert!(matches(&f(json!({"title": {"_icontains": "ELL"}})), &item));
    assert!(!matches(&f(json!({"title": {"_contains": "ELL"}})), &item));
    assert!(
        !matches(&f(json!({"body": {"_neq": "x"}})), &item),
        "NULL <> x is not true"
    );
    assert!(!matches(&f(json!({"body": {"_ncontains": "x"}})), &item));
    assert!(matches(&f(json!({"body": {"_empty": true}})), &item));
    assert!(matches(&f(json!({"month(created_at)": {"_eq": 3}})), &item));
    assert!(matches(
        &f(json!({"_or": [{"views": {"_eq": 1}}, {"title": {"_starts_with": "He"}}]})),
        &item
    ));
}

#[test]
fn validation_rules_may_use_regex() {
    let schema = schema();
    let vars = variables();
    let rule = parse(
        "articles",
        &json!({"title": {"_regex": "/^[a-z]+$/i"}}),
        &ParseOptions {
            schema: &schema,
            variables: &vars,
            allow_regex: true,
            access: None,
            root: "validation",
        },
    )
    .unwrap();
    assert!(matches(&rule, &json!({"title": "Hello"})));
    assert!(!matches(&rule, &json!({"title": "Hello!"})));
}

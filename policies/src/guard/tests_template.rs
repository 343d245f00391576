//! Reads rewritten once in their shape and filled with each text's literals give exactly
//! what rewriting each text gives, on both dialects.

use proptest::prelude::*;

use super::tests::with_context;
use super::*;

fn check(sql: &str, dialect: Dialect) -> Option<String> {
    with_context(dialect, |ctx| {
        let direct = guard(sql, ctx);
        let shaped = template::shape(sql, dialect)?;
        let filled = template::template(&shaped, ctx).and_then(|t| shaped.fill(&t));
        if let Some(filled) = &filled {
            match &direct {
                Ok(list) => assert_eq!(list.len(), 1, "{sql}"),
                Err(e) => panic!("{sql}: templated but refused directly ({e})"),
            }
            assert_eq!(filled, &direct.as_ref().unwrap()[0].sql, "{sql}");
        }
        filled
    })
}

#[test]
fn common_reads_have_templates_equal_to_their_rewrites() {
    for (sql, dialect) in [
        ("select * from orders where id = 5", Dialect::Postgres),
        (
            "SELECT id, amount FROM orders WHERE status = 'a''b' AND amount > 1.5 ORDER BY 1 LIMIT 10",
            Dialect::Postgres,
        ),
        (
            "select lower(name) from customers where name like 'A%' or name = E'x\\'y'",
            Dialect::Postgres,
        ),
        (
            "select c FROM orders o WHERE 1/(amount-100) = 1",
            Dialect::Postgres,
        ),
        ("select * from orders where id = 5", Dialect::MySql),
        (
            "SELECT id FROM orders WHERE status = 'it\\'s' AND amount BETWEEN 1 AND 2 LIMIT 5, 10",
            Dialect::MySql,
        ),
        (
            "select name from customers where name like 'A\\_%' or name = \"x\\\\y\"",
            Dialect::MySql,
        ),
    ] {
        assert!(check(sql, dialect).is_some(), "no template: {sql}");
    }
    // Not reads, or reads refused: no template, the text is guarded as it is.
    for (sql, dialect) in [
        (
            "insert into orders (customer, amount) values (1, 5)",
            Dialect::Postgres,
        ),
        ("select secret from orders where id = 1", Dialect::Postgres),
        ("set application_name = 'x'", Dialect::Postgres),
        ("select $1", Dialect::Postgres),
        ("select @x", Dialect::MySql),
        (
            "select /*!50000 secret */ id from orders where id = 1",
            Dialect::MySql,
        ),
        ("show tables like 'o%'", Dialect::MySql),
    ] {
        assert!(check(sql, dialect).is_none(), "templated: {sql}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any literal values, quotes, backslashes, newlines and comment starters included.
    #[test]
    fn any_literals(
        text in "[a-z'\\\\\"\\n#*/\\- ]{0,12}",
        number in 0u32..100_000,
        form in 0usize..4,
    ) {
        let pg = text.replace('\'', "''");
        let my = text.replace('\\', "\\\\").replace('\'', "\\'");
        let (pg_sql, my_sql) = match form {
            0 => (
                format!("select id from orders where status = '{pg}' and amount > {number}"),
                format!("select id from orders where status = '{my}' and amount > {number}"),
            ),
            1 => (
                format!("select name, '{pg}' as t from customers where id in ({number}, 2) order by 1"),
                format!("select name, '{my}' as t from customers where id in ({number}, 2) order by 1"),
            ),
            2 => (
                format!("select count(*) from orders o join customers c on c.id = o.customer where c.name like '{pg}%' limit {number}"),
                format!("select count(*) from orders o join customers c on c.id = o.customer where c.name like '{my}%' limit {number}"),
            ),
            _ => (
                format!("select - -{number} as a, '{pg}' from orders"),
                format!("select - -{number} as a, \"{}\" from orders", text.replace('\\', "\\\\").replace('"', "\"\"")),
            ),
        };
        prop_assert!(check(&pg_sql, Dialect::Postgres).is_some(), "{}", pg_sql);
        // MySQL: text holding both a quote pair or backslash-quote of each kind cannot be
        // printed and is refused both ways; the rest must have a template.
        let printable = !(text.contains("\\'") || text.contains("''"))
            || !(text.contains("\\\"") || text.contains("\"\""));
        let filled = check(&my_sql, Dialect::MySql);
        prop_assert!(filled.is_some() || !printable, "{}", my_sql);
        // MySQL's prepared form (`EXECUTE … USING` the values): each `?` given its value is
        // exactly the filled text, so the database reads the same statement either way.
        if let Some(filled) = filled {
            let bound = bound(&my_sql, Dialect::MySql);
            // Form 3 has its literals in the select list only.
            prop_assert_eq!(bound.is_some(), form != 3, "{}", my_sql);
            if let Some(bound) = bound {
                let mut values = bound.values.iter();
                let mut substituted = String::new();
                for (i, part) in bound.sql.split('?').enumerate() {
                    if i > 0 {
                        substituted.push_str(values.next().expect("a value per ?"));
                    }
                    substituted.push_str(part);
                }
                prop_assert!(values.next().is_none(), "{}", my_sql);
                prop_assert_eq!(substituted, filled, "{}", my_sql);
            }
        }
    }
}

/// The extended-protocol form of a templated read.
fn bound(sql: &str, dialect: Dialect) -> Option<template::Bound> {
    with_context(dialect, |ctx| {
        let shaped = template::shape(sql, dialect)?;
        let template = template::template(&shaped, ctx)?;
        shaped.bind(&template)
    })
}

#[test]
fn literals_become_parameters_only_where_they_read_the_same() {
    let b = bound(
        "select id from orders where id = 5 and amount > 1.5 and customer in (2147483648, 7)",
        Dialect::Postgres,
    )
    .expect("bound");
    assert_eq!(b.types, vec![23, 1700, 20, 23]);
    assert_eq!(b.values, vec!["5", "1.5", "2147483648", "7"]);
    assert!(
        b.sql.contains("= $1") && b.sql.contains("> $2"),
        "{}",
        b.sql
    );
    assert!(b.sql.contains("IN ($3, $4)"), "{}", b.sql);

    // A string compared with a column leaves its type to the column; elsewhere it stays.
    let b = bound(
        "select 'x' as t, id from orders where status = 'it''s' and 'a' || status = 'ab'",
        Dialect::Postgres,
    )
    .expect("bound");
    assert_eq!(b.types, vec![0]);
    assert_eq!(b.values, vec!["it's"]);
    assert!(
        b.sql.contains("'x'") && b.sql.contains("'a' ||") && b.sql.contains("'ab'"),
        "{}",
        b.sql
    );

    // Positional ORDER BY, LIMIT and OFFSET, select-list numbers and function arguments
    // keep their literals.
    let b = bound(
        "select id, 2 from orders where id - 1 > 0 order by 1 limit 10 offset 3",
        Dialect::Postgres,
    )
    .expect("bound");
    assert_eq!(b.values, vec!["1", "0"]);
    assert!(
        b.sql.contains("LIMIT 10") && b.sql.contains("OFFSET 3"),
        "{}",
        b.sql
    );
    assert!(b.sql.contains("ORDER BY 1"), "{}", b.sql);

    // MySQL: `?`, and each value as the literal it was, for MariaDB's `EXECUTE … USING`.
    let b = bound(
        "select id, 'x' from orders where id = 5 and status = 'it''s' and amount > 1.5 and id in (7, 8) limit 3",
        Dialect::MySql,
    )
    .expect("bound");
    assert_eq!(b.values, vec!["5", "'it''s'", "1.5", "7", "8"]);
    assert_eq!(b.types, vec![0; 5]);
    assert!(
        b.sql.contains("= ?") && b.sql.contains("> ?") && b.sql.contains("IN (?, ?)"),
        "{}",
        b.sql
    );
    assert!(
        b.sql.contains("'x'") && b.sql.contains("LIMIT 3") && !b.sql.contains("$1"),
        "{}",
        b.sql
    );

    // MySQL describes a select-list column by its expression: literals there stay, at any
    // depth.
    let b = bound(
        "select 2 * id, id + 1 as y, (select count(*) from orders where id > 4) from orders where id = 5 union select id - 3, 0, 0 from orders where id < 6",
        Dialect::MySql,
    )
    .expect("bound");
    assert_eq!(b.values, vec!["5", "6"]);
    assert!(
        b.sql.contains("2 * id") && b.sql.contains("id > 4") && b.sql.contains("id - 3"),
        "{}",
        b.sql
    );
    let b = bound(
        "select x from (select id * 3 as x, id - 1 from orders) as t where x > 2",
        Dialect::MySql,
    )
    .expect("bound");
    assert_eq!(b.values, vec!["2"]);
    assert!(
        b.sql.contains("id - 1") && b.sql.contains("id * 3"),
        "{}",
        b.sql
    );

    // Nothing to bind, and literal forms the database types on its own: no parameters.
    for (sql, dialect) in [
        (
            "select id from orders order by 1 limit 5",
            Dialect::Postgres,
        ),
        ("select id from orders where id = 0x10", Dialect::MySql),
        ("select id from orders where status = x'41'", Dialect::MySql),
        (
            "select id from orders where status = _utf8mb4'a' collate utf8mb4_bin",
            Dialect::MySql,
        ),
        ("select id from orders where status = \"a\"", Dialect::MySql),
        (
            "select id from orders where status = E'a\\'b'",
            Dialect::Postgres,
        ),
        (
            "select id from orders where status = 'a' collate \"C\"",
            Dialect::Postgres,
        ),
        ("select round(amount, 2) from orders", Dialect::Postgres),
        // The database matches these expressions with each other; parameters never match.
        (
            "select id from orders where id in (select customer + 1 from orders group by customer + 1)",
            Dialect::Postgres,
        ),
        (
            "select count(distinct amount + 1) from orders",
            Dialect::Postgres,
        ),
        (
            "select status, count(*) from orders group by status having count(*) > 1",
            Dialect::MySql,
        ),
    ] {
        assert_eq!(bound(sql, dialect), None, "{sql}");
    }
}

#[test]
fn grouped_queries_keep_their_matched_literals_and_bind_their_where() {
    for dialect in [Dialect::Postgres, Dialect::MySql] {
        for (sql, values, kept) in [
            (
                "select id + 1 from orders where id > 0 group by id + 1",
                vec!["0"],
                vec!["id + 1"],
            ),
            (
                "select distinct id + 1 from orders where id > 3 order by id + 1",
                vec!["3"],
                vec!["id + 1"],
            ),
            (
                "select customer from orders where id > 4 group by customer having count(*) > 1",
                vec!["4"],
                vec!["count(*) > 1"],
            ),
            (
                "select count(distinct amount + 1) from orders where id > 5",
                vec!["5"],
                vec!["amount + 1"],
            ),
            (
                "select o.status, count(*) from orders o join customers c on c.id = o.customer and c.id > 6 where o.id < 7 group by o.status order by count(*) * 2",
                vec!["6", "7"],
                vec!["count(*) * 2"],
            ),
            (
                "select customer from orders where id > 8 and id in (select customer + 9 from orders group by customer + 9)",
                vec!["8"],
                vec!["customer + 9"],
            ),
        ] {
            let b = bound(sql, dialect).unwrap_or_else(|| panic!("{dialect:?}: {sql}"));
            assert_eq!(b.values, values, "{dialect:?}: {sql}");
            for text in kept {
                assert!(
                    b.sql.to_lowercase().contains(text),
                    "{dialect:?}: {text} in {}",
                    b.sql
                );
            }
        }
    }
}

#[test]
fn numbers_take_the_type_postgresql_gives_the_literal() {
    for (sql, oid) in [
        ("select id from orders where id = 2147483647", 23),
        ("select id from orders where id = 9223372036854775807", 20),
        ("select id from orders where id = 9223372036854775808", 1700),
        ("select id from orders where id = .5", 1700),
        ("select id from orders where id = 1e3", 1700),
        ("select id from orders where id = 1.5E-3", 1700),
    ] {
        let b = bound(sql, Dialect::Postgres).expect(sql);
        assert_eq!(b.types, vec![oid], "{sql}");
    }
}

/// An admin's read as a statement with parameters: its own text (no derived tables, so
/// `*` is every column the database has, not the ones the schema overview knows), with
/// the literals bound as for a rewrite; anything but one plain read has none.
#[test]
fn admin_reads_bind_their_own_text() {
    let bind = |sql: &str| admin_bind(sql, Dialect::Postgres);
    let b = bind("select * from orders where id = 5 and status = 'draft' order by 1 limit 3")
        .expect("a read");
    assert_eq!(
        b.sql,
        "SELECT * FROM orders WHERE id = $1 AND status = $2 ORDER BY 1 LIMIT 3"
    );
    assert_eq!(b.types, [23, 0]);
    assert_eq!(b.values, ["5", "draft"]);
    // Hidden from restricted users, but an admin reads them: still one plain read.
    assert!(bind("select secret from orders where id = 1").is_some());
    for sql in [
        "update orders set status = 'x' where id = 1",
        "select set_config('search_path', 'x', false) where 1 = 1",
        "select nextval('s') where 1 = 1",
        "select * from pg_stat_activity where pid = 1",
        "select 1 where 1 = 1; select 2 where 2 = 2",
        "select * from orders where id = 1 for update",
        "with w as (delete from orders where id = 1 returning id) select * from w",
    ] {
        assert_eq!(bind(sql), None, "{sql}");
    }
}

/// On MySQL an admin's read is printed for the guarded sessions' `NO_BACKSLASH_ESCAPES`,
/// as rewrites are: a backslash in a string is the character itself and `LIKE` names its
/// escape, so the text reads there as it read on a connection with backslash escapes.
#[test]
fn admin_reads_on_mysql_are_printed_for_guarded_sessions() {
    let bind = |sql: &str| admin_bind(sql, Dialect::MySql);
    let b = bind(r"select id from orders where status like 'a\_%' and id = 7").expect("a read");
    assert_eq!(
        b.sql,
        r"SELECT id FROM orders WHERE status LIKE ? ESCAPE '\' AND id = ?"
    );
    assert_eq!(b.values, [r"'a\_%'", "7"]);
    let b = bind(r"select id from orders where status = 'it\'s a\\b'").expect("a read");
    assert_eq!(b.values, [r"'it''s a\b'"]);
    assert_eq!(bind("select @x := 1 from orders where id = 1"), None);
}

/// An admin's read of `sql` bound as for a shared connection.
fn admin_bind(sql: &str, dialect: Dialect) -> Option<template::Bound> {
    let schema = super::tests::schema();
    let permissions = crate::EffectivePermissions::admin();
    let variables = crate::filter::Variables::default();
    let ctx = GuardContext {
        access: crate::ReadAccess {
            schema: &schema,
            permissions: &permissions,
            variables: &variables,
        },
        schema_name: "public",
        derived: None,
        dialect,
        deferred_checks: false,
    };
    let shaped = template::shape(sql, dialect)?;
    let template = template::template_as_is(&shaped, &ctx)?;
    shaped.bind(&template)
}

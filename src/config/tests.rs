use super::*;

fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, Scalar> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Scalar(v.to_string())))
        .collect()
}

#[test]
fn the_shipped_config_file_documents_every_setting_and_sets_none() {
    let shipped = include_str!("../../config/rectus.toml");
    for name in SETTINGS {
        assert!(
            shipped.contains(&format!("# {name} = ")),
            "config/rectus.toml does not document {name}"
        );
    }
    let set: Vec<&str> = shipped
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        set.is_empty(),
        "the shipped file must leave the defaults: {set:?}"
    );
}

#[test]
fn defaults_are_the_embedded_sqlite_database_on_8055() {
    let c = validate(raw(&[])).unwrap();
    assert_eq!(
        c.database,
        DatabaseConfig::Sqlite {
            filename: "./data/rectus.db".into()
        }
    );
    assert_eq!(c.port, 8055);
    assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
    assert!(c.secret_generated);
    assert_eq!(c.secret.len(), 64);
    assert_eq!(c.log_style, LogStyle::Pretty);
}

#[test]
fn each_bad_value_names_its_setting() {
    let cases = [
        (
            ("DB_CLIENT", "oracle"),
            "DB_CLIENT=oracle is not supported: use pg, mysql or sqlite3",
        ),
        (
            ("PORT", "abc"),
            "PORT=abc is not a valid port: use a number from 0 (any free port) to 65535",
        ),
        (
            ("LOG_STYLE", "fancy"),
            "LOG_STYLE=fancy is not supported: use pretty or json",
        ),
        (
            ("ADMIN_EMAIL", "nobody"),
            "ADMIN_EMAIL=nobody is not an e-mail address",
        ),
    ];
    for ((k, v), message) in cases {
        assert_eq!(validate(raw(&[(k, v)])).unwrap_err().0, message);
    }
    assert_eq!(
        validate(raw(&[("DB_CLIENT", "pg")])).unwrap_err().0,
        "DB_DATABASE is required when DB_CLIENT=pg (or give DB_CONNECTION_STRING)"
    );
    assert_eq!(
        validate(raw(&[
            ("DB_CLIENT", "mysql"),
            ("DB_DATABASE", "x"),
            ("DB_PORT", "0")
        ]))
        .unwrap_err()
        .0,
        "DB_PORT=0 is not a valid port: use a number from 1 to 65535"
    );
    assert_eq!(
        validate(raw(&[
            ("DB_CLIENT", "pg"),
            ("DB_DATABASE", "x"),
            ("DB_SOCKET_PATH", "/run/x.sock")
        ]))
        .unwrap_err()
        .0,
        "DB_SOCKET_PATH is for DB_CLIENT=mysql: with DB_CLIENT=pg, set DB_HOST to the socket's directory"
    );
}

#[test]
fn db_socket_path_is_the_mysql_host() {
    let c = validate(raw(&[
        ("DB_CLIENT", "mysql"),
        ("DB_DATABASE", "x"),
        ("DB_HOST", "db.example"),
        ("DB_SOCKET_PATH", "/run/mysqld/mysqld.sock"),
    ]))
    .unwrap();
    match c.database {
        DatabaseConfig::MySql(net) => assert_eq!(net.host, "/run/mysqld/mysqld.sock"),
        other => panic!("{other:?}"),
    }
    let relative = validate(raw(&[
        ("DB_CLIENT", "mysql"),
        ("DB_DATABASE", "x"),
        ("DB_SOCKET_PATH", "mysqld.sock"),
    ]));
    assert_eq!(
        relative.unwrap_err().0,
        "DB_SOCKET_PATH=mysqld.sock is not a socket file: give its absolute path"
    );
}

#[test]
fn durations_read_like_directus() {
    assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
    assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
    assert_eq!(parse_duration("500"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("150us"), Some(Duration::from_micros(150)));
    assert_eq!(parse_duration("0.25ms"), Some(Duration::from_micros(250)));
    assert_eq!(parse_duration("soon"), None);
    assert_eq!(parse_duration("5 fortnights"), None);
    let c = validate(raw(&[])).unwrap();
    assert_eq!(c.auth.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.auth.refresh_cookie.name, "directus_refresh_token");
    assert_eq!(
        validate(raw(&[("ACCESS_TOKEN_TTL", "forever")]))
            .unwrap_err()
            .0,
        "ACCESS_TOKEN_TTL=forever is not a duration: use for example 900, 30s, 15m, 12h or 7d"
    );
    assert_eq!(
        validate(raw(&[("SECRET", "")])).unwrap_err().0,
        "SECRET is empty: set a long random value, or leave it unset to have one generated"
    );
}

#[test]
fn network_databases_take_their_default_port() {
    let c = validate(raw(&[("DB_CLIENT", "mysql"), ("DB_DATABASE", "shop")])).unwrap();
    match c.database {
        DatabaseConfig::MySql(n) => {
            assert_eq!(n.port, 3306);
            assert_eq!(n.database.as_deref(), Some("shop"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn passwords_keep_their_exact_text_and_never_print() {
    let c = validate(raw(&[
        ("DB_CLIENT", "pg"),
        ("DB_DATABASE", "d"),
        ("DB_PASSWORD", "007"),
    ]))
    .unwrap();
    let DatabaseConfig::Postgres(n) = &c.database else {
        panic!("not pg")
    };
    assert_eq!(n.password.as_deref(), Some("007"));
    assert!(!format!("{:?}", c.database).contains("007"));
}

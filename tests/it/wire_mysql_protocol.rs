//! The MySQL wire endpoint spoken to by hand, byte by byte: what a driver would never send
//! (commands that carry no SQL text) is refused for a restricted user.

use crate::clerk::{clerk_permissions, restricted_app};
use crate::support::Kind;

const SETUP: &str = "
CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100));
CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, customer int, status varchar(20), amount decimal(10,2), secret varchar(50));
CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, body text);
INSERT INTO orders (customer, status, amount, secret) VALUES (1, 'published', 10.50, 's1')
";

/// A client speaking the protocol by hand: commands that carry no SQL text are refused for a
/// restricted user, and the session goes on.
#[tokio::test(flavor = "multi_thread")]
async fn commands_without_sql_text_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn packet(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).await.unwrap();
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload).await.unwrap();
        (header[3], payload)
    }
    async fn send(stream: &mut tokio::net::TcpStream, seq: u8, payload: &[u8]) {
        let len = (payload.len() as u32).to_le_bytes();
        let mut out = vec![len[0], len[1], len[2], seq];
        out.extend_from_slice(payload);
        stream.write_all(&out).await.unwrap();
    }

    let (app, _) = restricted_app(Kind::MySql, SETUP, "Clerk", &clerk_permissions()).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.server.mysql_port()))
        .await
        .unwrap();
    let (_, greeting) = packet(&mut stream).await;
    assert_eq!(greeting[0], 10);
    // Handshake response: PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | CONNECT_WITH_DB,
    // no password yet: the endpoint asks for it in clear (allowed without TLS here).
    let capabilities: u32 = (1 << 9) | (1 << 15) | (1 << 19) | (1 << 3);
    let mut response = capabilities.to_le_bytes().to_vec();
    response.extend_from_slice(&(1u32 << 24).to_le_bytes());
    response.push(45);
    response.extend_from_slice(&[0; 23]);
    response.extend_from_slice(b"clerk@example.com\0");
    response.push(0);
    response.extend_from_slice(app.db.name.as_bytes());
    response.push(0);
    response.extend_from_slice(b"mysql_native_password\0");
    send(&mut stream, 1, &response).await;
    let (seq, switch) = packet(&mut stream).await;
    assert_eq!(switch[0], 0xFE);
    assert!(switch.starts_with(b"\xFEmysql_clear_password\0"));
    send(&mut stream, seq + 1, b"pw\0").await;
    let (_, ok) = packet(&mut stream).await;
    assert_eq!(ok[0], 0, "logged in");
    for command in [
        vec![0x04, b'o', b'r', b'd', b'e', b'r', b's', 0], // COM_FIELD_LIST
        vec![0x12, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0],          // COM_BINLOG_DUMP
        vec![0x11, b'r', b'o', b'o', b't', 0, 0],          // COM_CHANGE_USER
        vec![0x0A],                                        // COM_PROCESS_INFO
        vec![0x0C, 1, 0, 0, 0],                            // COM_PROCESS_KILL
        vec![0x09],                                        // COM_STATISTICS
        vec![0x08],                                        // COM_SHUTDOWN
        vec![0x17, 99, 0, 0, 0, 0, 1, 0, 0, 0],            // COM_STMT_EXECUTE, unknown id
    ] {
        send(&mut stream, 0, &command).await;
        let (seq, answer) = packet(&mut stream).await;
        assert_eq!(seq, 1);
        assert_eq!(answer[0], 0xFF, "command 0x{:02X} refused", command[0]);
    }
    // COM_INIT_DB: the configured database only.
    send(&mut stream, 0, b"\x02mysql").await;
    let (_, answer) = packet(&mut stream).await;
    assert_eq!(answer[0], 0xFF, "another database refused");
    let mut init = vec![0x02];
    init.extend_from_slice(app.db.name.as_bytes());
    send(&mut stream, 0, &init).await;
    let (_, answer) = packet(&mut stream).await;
    assert_eq!(answer[0], 0x00, "the configured database");
    let mut query = vec![0x03];
    query.extend_from_slice(b"SELECT count(*) FROM orders");
    send(&mut stream, 0, &query).await;
    let (_, header) = packet(&mut stream).await;
    assert_eq!(header, [1], "one column");
}

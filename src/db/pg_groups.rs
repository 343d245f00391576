//! Writes that are one statement committing by itself (a create with its activity and
//! revision), grouped on PostgreSQL: while every group line is busy, the writes that arrive
//! wait together, and the next free line runs them as one transaction — `BEGIN`, their
//! statements and `COMMIT` pipelined in one round trip, one commit for all. A commit is
//! most of what such a write costs PostgreSQL beyond the rows themselves (measured with
//! pgbench: four creates with their records per pipelined transaction wrote 1.5× the rows
//! per second of one per transaction, at the same number in flight).
//!
//! A group commits only when every statement in it succeeded. When the database refuses
//! one (a unique key, a foreign key, a deadlock), the transaction rolls back whole and each
//! write runs again alone, so each gets exactly the answer and effect it would have had by
//! itself. When the connection is lost, nobody knows whether the commit happened, and
//! every write in the group answers with that error, as a lone write would. A write that
//! arrives while a line is free runs at once, alone, as before. A line that finishes a
//! group while writes wait goes on to them before it answers the group it finished. A
//! group still running after [`SLOW`] frees its line, and a group of several is stopped and
//! its writes run again apart, so one waiting on a lock holds up no other.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_postgres::types::ToSql;

use super::pg::{self, describe, lock, prepare, rows_of};
use super::pg_values::PgParam;
use super::{DbError, Row, Stmt};

/// Writes in one group at most. Kept below `join_all`'s threshold (30), under which it
/// polls its futures in order, which is what sends the pipeline's messages in order.
const MOST: usize = 16;

/// A group still running after this frees its line for the next group, so one write
/// waiting on a lock holds up the others' lines for no longer.
const SLOW: Duration = Duration::from_millis(50);

pub(super) struct WriteGroups {
    waiting: Waiting,
    lines: Arc<Semaphore>,
}

type Waiting = Arc<Mutex<Vec<Pending>>>;

type Answer = Result<Vec<Row>, DbError>;

struct Pending {
    stmt: Stmt,
    answer: oneshot::Sender<Answer>,
}

impl WriteGroups {
    /// One line per two cores, at least one: a line's backend runs its group's statements
    /// one after the other, and fewer lines make bigger groups, with fewer commits and
    /// fewer wake-ups per write. On two cores with eight clients, two lines saved
    /// PostgreSQL more than four or eight did, and one more than two (its CPU per create
    /// 0.11 against 0.13 ms, medians of 18 runs each). A group stuck for [`SLOW`] frees its
    /// line, so one line does not make every write wait on a lock one of them waits for.
    pub(super) fn new() -> WriteGroups {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        WriteGroups {
            waiting: Arc::new(Mutex::new(Vec::new())),
            lines: Arc::new(Semaphore::new((cores / 2).max(1))),
        }
    }

    /// Runs `stmt` alone or in a group; its rows.
    pub(super) async fn query(&self, pool: &Pool, stmt: Stmt) -> Answer {
        let (answer, mut receiver) = oneshot::channel();
        lock(&self.waiting).push(Pending { stmt, answer });
        loop {
            tokio::select! {
                biased;
                result = &mut receiver => return received(result),
                permit = self.lines.clone().acquire_owned() => {
                    let Ok(permit) = permit else {
                        return Err(DbError::Connect("the write groups are closed".into()));
                    };
                    let group = next_group(&self.waiting);
                    if group.is_empty() {
                        // Another line took this write: its answer comes from there.
                        drop(permit);
                        return received(receiver.await);
                    }
                    // A task of its own, so that a caller going away (a closed HTTP
                    // connection) cannot cut short a transaction other writes are in.
                    tokio::spawn(run_on_line(pool.clone(), self.waiting.clone(), group, permit));
                }
            }
        }
    }
}

fn received(result: Result<Answer, oneshot::error::RecvError>) -> Answer {
    result.unwrap_or_else(|_| Err(DbError::Connect("the write's group ended early".into())))
}

fn next_group(waiting: &Mutex<Vec<Pending>>) -> Vec<Pending> {
    let mut waiting = lock(waiting);
    let n = waiting.len().min(MOST);
    waiting.drain(..n).collect()
}

/// Runs `group` on the line `permit` holds, then, while writes are waiting, the next
/// groups. Each group is answered only once the next one's statements are on their way:
/// its backend then works on them while the answers are written to the clients, where
/// answering first left it idle for as long as that took, every group.
async fn run_on_line(
    pool: Pool,
    waiting: Waiting,
    mut group: Vec<Pending>,
    permit: OwnedSemaphorePermit,
) {
    let mut permit = Some(permit);
    let mut earlier: Answers = Vec::new();
    loop {
        let running = run(&pool, group);
        tokio::pin!(running);
        // The first poll hands the statements to the connection's task, which is woken
        // before the clients the answers wake.
        let first = futures_util::poll!(running.as_mut());
        answer(std::mem::take(&mut earlier));
        let answers = match (first, permit.is_some()) {
            (Poll::Ready(answers), _) => answers,
            (Poll::Pending, false) => running.await,
            (Poll::Pending, true) => tokio::select! {
                answers = &mut running => answers,
                () = tokio::time::sleep(SLOW) => {
                    permit = None;
                    running.await
                }
            },
        };
        let next = match permit {
            Some(_) => next_group(&waiting),
            None => Vec::new(),
        };
        if next.is_empty() {
            return answer(answers);
        }
        earlier = answers;
        group = next;
    }
}

type Answers = Vec<(oneshot::Sender<Answer>, Answer)>;

fn answer(answers: Answers) {
    for (to, answer) in answers {
        let _ = to.send(answer);
    }
}

async fn run(pool: &Pool, group: Vec<Pending>) -> Answers {
    let client = match pg::acquire(pool).await {
        Ok(client) => client,
        Err(e) => {
            return group
                .into_iter()
                .map(|p| (p.answer, Err(same_error(&e))))
                .collect();
        }
    };
    if group.len() == 1 {
        return alone(&client, group).await;
    }
    let (outcome, cancelled) = together(&client, &group).await;
    // A cancel may reach the backend after the group is done and stop the next statement
    // sent on its connection: a cancelled group's connection is closed, not pooled.
    let client = match cancelled {
        true => {
            drop(Object::take(client));
            None
        }
        false => Some(client),
    };
    match (outcome, client) {
        (Together::Committed(rows), _) => group
            .into_iter()
            .zip(rows)
            .map(|(p, rows)| (p.answer, Ok(rows)))
            .collect(),
        (Together::RolledBack, Some(client)) => alone(&client, group).await,
        (Together::RolledBack, None) => {
            apart(pool, group).await;
            Vec::new()
        }
        (Together::Lost(message), _) => group
            .into_iter()
            .map(|p| (p.answer, Err(DbError::Connect(message.clone()))))
            .collect(),
    }
}

/// Each write of a group that was stopped because one of them took too long (most often
/// one waiting on a lock): each runs again alone on a connection of its own, all at once,
/// and is answered as soon as it is done, so the others do not wait for the slow one.
async fn apart(pool: &Pool, group: Vec<Pending>) {
    let runs = group.into_iter().map(|pending| async move {
        let result = match pg::acquire(pool).await {
            Ok(client) => pg::query(&client, &pending.stmt, false).await,
            Err(e) => Err(e),
        };
        let _ = pending.answer.send(result);
    });
    futures_util::future::join_all(runs).await;
}

/// Each write as its own statement, committing by itself, one after the other.
async fn alone(client: &Object, group: Vec<Pending>) -> Answers {
    let mut answers = Vec::with_capacity(group.len());
    for pending in group {
        let result = pg::query(client, &pending.stmt, false).await;
        answers.push((pending.answer, result));
    }
    answers
}

enum Together {
    /// Every write's rows, in the group's order.
    Committed(Vec<Vec<Row>>),
    /// The database refused something and nothing was written.
    RolledBack,
    /// The connection failed; whether the transaction committed is unknown.
    Lost(String),
}

type Step<'a> = Pin<
    Box<dyn Future<Output = Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> + Send + 'a>,
>;

/// The group as one transaction, in one round trip, and whether it was cancelled: a group
/// still running after [`SLOW`] is stopped (a write waiting on a lock would otherwise hold
/// every write of its group until the lock is let go), and its writes run again apart.
async fn together(client: &Object, group: &[Pending]) -> (Together, bool) {
    // Each statement prepared first (a cache hit after the first time), so that the
    // pipeline below sends nothing but BEGIN, the executions and COMMIT, in that order.
    let mut prepared = Vec::with_capacity(group.len());
    for pending in group {
        match prepare(client, &pending.stmt.sql).await {
            Ok(statement) => prepared.push(statement),
            Err(DbError::Query { .. }) => return (Together::RolledBack, false),
            Err(e) => return (Together::Lost(e.to_string()), false),
        }
    }
    let params: Vec<Vec<PgParam>> = group
        .iter()
        .map(|p| p.stmt.values.iter().map(PgParam).collect())
        .collect();
    let refs: Vec<Vec<&(dyn ToSql + Sync)>> = params
        .iter()
        .map(|ps| ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect())
        .collect();
    let mut steps: Vec<Step<'_>> = Vec::with_capacity(group.len() + 2);
    steps.push(Box::pin(async {
        client.batch_execute("BEGIN").await.map(|()| Vec::new())
    }));
    for (statement, refs) in prepared.iter().zip(&refs) {
        steps.push(Box::pin(client.query(statement, refs)));
    }
    steps.push(Box::pin(async {
        client.batch_execute("COMMIT").await.map(|()| Vec::new())
    }));
    let all = futures_util::future::join_all(steps);
    tokio::pin!(all);
    let mut cancelled = false;
    let results = tokio::select! {
        results = &mut all => results,
        () = tokio::time::sleep(SLOW) => {
            cancelled = true;
            if let Err(e) = client.cancel_token().cancel_query(tokio_postgres::NoTls).await {
                tracing::warn!(error = %describe(&e), "could not stop a slow write group");
            }
            all.await
        }
    };
    (settled(&prepared, results, group.len()), cancelled)
}

/// What the results of a group's pipeline (`BEGIN`, the statements, `COMMIT`) say happened.
fn settled(
    prepared: &[tokio_postgres::Statement],
    results: Vec<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>>,
    writes: usize,
) -> Together {
    let lost = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .find(|e| e.as_db_error().is_none());
    if let Some(e) = lost {
        return Together::Lost(describe(e));
    }
    // Without the transaction, each statement may have committed by itself: running them
    // again could write twice, so their outcome is unknown.
    if let Some(Err(e)) = results.first() {
        return Together::Lost(describe(e));
    }
    // A refused statement turns the COMMIT into a rollback, which PostgreSQL answers
    // without an error: the statements' own results say whether the group committed.
    let Ok(results) = results.into_iter().collect::<Result<Vec<_>, _>>() else {
        return Together::RolledBack;
    };
    let mut answers = Vec::with_capacity(writes);
    for (statement, rows) in prepared.iter().zip(&results[1..=writes]) {
        match rows_of(statement, rows) {
            Ok(rows) => answers.push(rows),
            // Committed, but an answer could not be read: as a lone write's would be.
            Err(e) => return Together::Lost(e.to_string()),
        }
    }
    Together::Committed(answers)
}

/// The error of taking a connection, once for each write of the group: no connection free
/// in time stays a timeout.
fn same_error(e: &DbError) -> DbError {
    match e {
        DbError::Timeout => DbError::Timeout,
        DbError::Connect(message) => DbError::Connect(message.clone()),
        other => DbError::Connect(other.to_string()),
    }
}

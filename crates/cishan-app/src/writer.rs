//! Group commit for donations. Each donation must be durable before its response, and one fsync
//! costs 0.3 to 3 ms on this machine, so committing each alone caps a SQLite database at a few
//! hundred to 3,000 a second. Requests instead queue to one writer, which takes everything
//! waiting (up to [`MAX_BATCH`]), applies it in one transaction and commits once; every caller
//! then gets its own result, only after that commit is on disk.
//!
//! The transaction stages its writes (`WriteTx::stage_writes`): rows, journal entries, log
//! leaves and receipt numbers are built in memory and written with one multi-row INSERT per
//! table at the commit, and the batch's idempotency keys are looked up in one statement.
//!
//! If any request in a batch fails (a bad reference, a closed project), the batch is rolled back
//! and each request is re-run in a transaction of its own, so one bad request never fails or
//! half-writes another.
//!
//! The writer does not wait for the disk: it commits a batch with
//! `WriteTx::commit_before_sync` and passes the batch's answers to a second task, which syncs the
//! write-ahead log (`Store::sync_log`) and only then answers, while the writer goes on with the
//! next batch. One sync answers every batch committed before it began; a failed sync answers
//! each of its requests with an internal error. A replay (a retried key) is answered the same
//! way, so a retry can never see a first result that is not yet on disk. On PostgreSQL a commit
//! is durable when it returns and the sync does nothing.
//!
//! The writer runs on a thread of its own (with a single-threaded runtime), so that between its
//! database statements it does not wait in the server's run queue behind the HTTP tasks; it
//! stops when the runtime that started it shuts down. It takes whatever has arrived without
//! waiting for more: while it commits one batch the next one gathers by itself, and clients of
//! the last batch come back only after its sync. Measured with `cishan bench donations`
//! (64 clients, same machine, back to back): waiting up to 2 ms for the answered clients, as the
//! writer did while it synced inside the commit, was 8-15% slower than not waiting.

use cishan_store::StagedCarry;
use tokio::sync::{mpsc, oneshot};

use crate::donations::{DonationRecorded, IdempotencyKey, Outcome, ValidDonation};
use crate::{Actor, App, AppError, Result};

/// The most requests committed together.
pub const MAX_BATCH: usize = 256;
/// Requests that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

type Reply = oneshot::Sender<Result<Outcome<DonationRecorded>>>;
/// Answers of a committed batch, waiting for the sync that makes them durable.
type Answers = Vec<(Reply, Result<Outcome<DonationRecorded>>)>;

#[derive(Debug)]
pub(crate) struct Job {
    actor: Actor,
    key: IdempotencyKey,
    hash: String,
    valid: ValidDonation,
    reply: Reply,
}

/// The queue in front of the writer. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct DonationWriter {
    queue: mpsc::Sender<Job>,
}

impl DonationWriter {
    /// Starts the writer for `app` on a thread of its own, and the task that syncs and answers
    /// on the current runtime. Both end when that runtime shuts down.
    pub(crate) fn start(app: App) -> DonationWriter {
        let (queue, rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let (committed, to_sync) = mpsc::unbounded_channel::<Answers>();
        tokio::spawn(answer_after_sync(app.clone(), to_sync));
        // Dropped with the current runtime's tasks, which tells the writer to stop.
        let (alive, runtime_gone) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        });
        // SQLite's connections talk to their own threads over channels, so the writer's runtime
        // needs no I/O driver, and without one a wake-up while the writer is busy costs no
        // system call (with one, each result SQLite's thread sends writes to an eventfd).
        // PostgreSQL's connections are sockets, which need it.
        let needs_io = app.store().backend() == cishan_store::Backend::Postgres;
        let work = async move {
            tokio::select! {
                _ = runtime_gone => {}
                () = write_batches(app, rx, committed) => {}
            }
        };
        let started = std::thread::Builder::new()
            .name("donation-writer".into())
            .spawn(move || {
                let mut builder = tokio::runtime::Builder::new_current_thread();
                builder.enable_time();
                if needs_io {
                    builder.enable_io();
                }
                match builder.build() {
                    Ok(runtime) => runtime.block_on(work),
                    Err(error) => {
                        tracing::error!(%error, "cannot start the donation writer's runtime");
                    }
                }
            });
        if let Err(error) = started {
            // Every submission then fails with "donation writer stopped".
            tracing::error!(%error, "cannot start the donation writer's thread");
        }
        DonationWriter { queue }
    }

    pub(crate) async fn submit(
        &self,
        actor: Actor,
        key: IdempotencyKey,
        hash: String,
        valid: ValidDonation,
    ) -> Result<Outcome<DonationRecorded>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            actor,
            key,
            hash,
            valid,
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| AppError::internal(std::io::Error::other("donation writer stopped")))?;
        answer.await.map_err(|_| {
            AppError::internal(std::io::Error::other("donation writer dropped a request"))
        })?
    }
}

/// The writer's loop: commit what has arrived, hand the answers on to be synced, repeat.
async fn write_batches(
    app: App,
    mut rx: mpsc::Receiver<Job>,
    committed: mpsc::UnboundedSender<Answers>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut carry = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let answers = run_batch(&app, std::mem::take(&mut batch), &mut carry).await;
        if committed.send(answers).is_err() {
            return;
        }
    }
}

/// Syncs the log once for every group of answers that arrived while the last sync ran, then
/// answers them.
async fn answer_after_sync(app: App, mut committed: mpsc::UnboundedReceiver<Answers>) {
    let mut groups = Vec::new();
    while committed.recv_many(&mut groups, usize::MAX).await > 0 {
        let synced = app.store().sync_log().await;
        if let Err(e) = &synced {
            tracing::error!(error = %e, "donations committed but not synced; answering with errors");
        }
        for (reply, result) in groups.drain(..).flatten() {
            let _ = reply.send(match &synced {
                Ok(()) => result,
                Err(e) => Err(AppError::internal(std::io::Error::other(e.to_string()))),
            });
        }
    }
}

/// Commits `jobs` (together when they all succeed) and returns their answers, not yet synced.
/// `carry` is what the last batch knew ([`StagedCarry`]); it is replaced by this batch's, or
/// dropped when the batch fails.
async fn run_batch(app: &App, mut jobs: Vec<Job>, carry: &mut Option<StagedCarry>) -> Answers {
    let error = match try_together(app, &jobs, carry.take()).await {
        Ok((results, next)) => {
            *carry = next;
            return jobs
                .into_iter()
                .zip(results)
                .map(|(job, result)| (job.reply, Ok(result)))
                .collect();
        }
        Err(e) => e,
    };
    if jobs.len() == 1 {
        // Alone already: that is its answer.
        let job = jobs.pop().expect("one job");
        return vec![(job.reply, Err(error))];
    }
    tracing::debug!(error = %error, jobs = jobs.len(), "group commit fell back to one transaction per request");
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = run_alone(app, &job).await;
        answers.push((job.reply, result));
    }
    answers
}

/// Applies every job in one transaction; any failure rolls all of them back.
async fn try_together(
    app: &App,
    jobs: &[Job],
    carry: Option<StagedCarry>,
) -> Result<(Vec<Outcome<DonationRecorded>>, Option<StagedCarry>)> {
    let mut tx = app.store().begin().await?;
    tx.lock_writes().await?;
    tx.stage_writes_after(carry).await?;
    let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    tx.prefetch_idempotency("donation", &keys).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(
            app.apply_donation(&mut tx, &job.actor, &job.key, &job.hash, &job.valid)
                .await?,
        );
    }
    let carry = tx.commit_carrying().await?;
    Ok((results, carry))
}

async fn run_alone(app: &App, job: &Job) -> Result<Outcome<DonationRecorded>> {
    let mut tx = app.store().begin().await?;
    tx.lock_writes().await?;
    tx.stage_writes();
    let result = app
        .apply_donation(&mut tx, &job.actor, &job.key, &job.hash, &job.valid)
        .await?;
    tx.commit_before_sync().await?;
    Ok(result)
}

//! Running extractions: the blocking worker pool, the per-document time budget, the lease
//! kept alive while a job runs, the queue loop that takes work from the database, and the
//! sweep that gives up on jobs that never finish.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use a2v2_extract::{ExtractError, Extraction, Limits, Options, Schema};
use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;

use super::service::Documents;
use crate::{
    contacts::{service::Created, validation},
    error::DomainError,
    model::{
        audit::{ActorRef, By, Origin},
        document::{DocumentError, Extracted, Job, PageText},
        new_id, now_ms,
    },
    store::{self, jobs::Claim},
};

/// A job started this often without finishing is given up (its document fails): a file that
/// brings down every node that tries it must not be tried for ever.
pub const MAX_ATTEMPTS: i64 = 3;
/// How often an idle queue loop looks for work queued by other nodes.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often the queue loop looks for jobs to give up.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How often a stopping node looks whether its running extractions have ended.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Upper bounds of the extraction duration buckets, in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Extraction counters for `/metrics`.
#[derive(Default)]
pub struct ExtractionMetrics {
    running: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    /// Finished here after another node had taken the job over: the result was dropped.
    superseded: AtomicU64,
    abandoned: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl ExtractionMetrics {
    fn observe(&self, seconds: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP a2v2_extraction_jobs_running Extractions running on this node.\n\
             # TYPE a2v2_extraction_jobs_running gauge\n\
             a2v2_extraction_jobs_running {}\n\
             # HELP a2v2_extraction_jobs_total Extraction jobs ended on this node, by outcome.\n\
             # TYPE a2v2_extraction_jobs_total counter\n\
             a2v2_extraction_jobs_total{{outcome=\"succeeded\"}} {}\n\
             a2v2_extraction_jobs_total{{outcome=\"failed\"}} {}\n\
             a2v2_extraction_jobs_total{{outcome=\"timeout\"}} {}\n\
             a2v2_extraction_jobs_total{{outcome=\"superseded\"}} {}\n\
             a2v2_extraction_jobs_total{{outcome=\"abandoned\"}} {}\n\
             # HELP a2v2_extraction_duration_seconds Time one document's extraction took.\n\
             # TYPE a2v2_extraction_duration_seconds histogram\n",
            read(&self.running),
            read(&self.succeeded),
            read(&self.failed),
            read(&self.timed_out),
            read(&self.superseded),
            read(&self.abandoned),
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += read(bucket);
            let _ = writeln!(
                out,
                "a2v2_extraction_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = read(&self.count);
        let _ = writeln!(
            out,
            "a2v2_extraction_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             a2v2_extraction_duration_seconds_sum {}\n\
             a2v2_extraction_duration_seconds_count {count}",
            read(&self.sum_micros) as f64 / 1e6
        );
    }
}

/// Counts a running extraction for as long as it lives.
struct Running<'a>(&'a AtomicU64);

impl<'a> Running<'a> {
    fn start(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lists a job's lease among the node's held leases for as long as the job runs here.
struct Held<'a> {
    held: &'a Mutex<HashMap<String, String>>,
    job_id: String,
}

impl<'a> Held<'a> {
    fn start(held: &'a Mutex<HashMap<String, String>>, job: &Job) -> Self {
        held.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.id.clone(), job.lease_token.clone());
        Self {
            held,
            job_id: job.id.clone(),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.job_id);
    }
}

/// A sentence from an extraction error: "The document is encrypted or password-protected."
fn sentence(err: &ExtractError) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.extend(chars);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn failure(code: &str, message: &str) -> DocumentError {
    DocumentError {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// What the store keeps of an extraction.
fn extracted(extraction: Extraction) -> Extracted {
    let object = |value: Result<Value, serde_json::Error>| match value {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Extracted {
        page_count: Some(i64::try_from(extraction.pages.len()).unwrap_or(i64::MAX)),
        ocr: extraction.ocr,
        pages: extraction
            .pages
            .into_iter()
            .map(|page| PageText {
                number: page.number,
                ocr: page.ocr,
                text: page.text,
            })
            .collect(),
        text: Some(extraction.text),
        fields: object(serde_json::to_value(&extraction.fields)),
        contacts: extraction
            .contacts
            .iter()
            .filter_map(|contact| serde_json::to_value(contact).ok())
            .collect(),
        schema_fields: extraction.schema_fields,
    }
}

impl Documents {
    /// The extraction counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.0.metrics.render(out);
    }

    /// Runs a job whose lease this node holds, to its end: extraction on the blocking pool
    /// (holding `permit` until the extraction's thread is done, even past the time budget),
    /// the lease renewed meanwhile, and the outcome stored only if the lease is still ours.
    pub(super) async fn run_job(&self, job: Job, permit: OwnedSemaphorePermit) {
        let inner = &self.0;
        let _running = Running::start(&inner.metrics.running);
        let _held = Held::start(&inner.held, &job);
        let loaded = async {
            let mut conn = inner.store.conn().await?;
            let doc = store::documents::get(&mut conn, &job.agent_id, &job.document_id).await?;
            let bytes = store::documents::bytes(&mut conn, &job.agent_id, &job.document_id).await?;
            Ok::<_, store::StoreError>((doc, bytes))
        }
        .await;
        let (doc, bytes) = match loaded {
            Ok(found) => found,
            Err(store::StoreError::NotFound) => {
                // Deleted meanwhile; its job went with it.
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, job = %job.id, "loading a document to extract failed; the job is retried when its lease ends");
                return;
            }
        };
        let schema = doc
            .schema
            .as_ref()
            .and_then(|value| serde_json::to_vec(value).ok())
            .and_then(|json| Schema::parse(&json).ok());
        let options = Options {
            ocr: inner.ocr.clone(),
            schema,
            filename: doc.filename.clone(),
            // The library checks its own clock between units of work, so most slow files
            // stop and free their worker at the budget rather than only being reported late.
            limits: Limits {
                max_duration: inner.settings.timeout,
                ..Limits::default()
            },
            ..Options::default()
        };
        let heartbeat = tokio::spawn(keep_lease(
            inner.store.clone(),
            job.id.clone(),
            job.lease_token.clone(),
            inner.settings.lease,
        ));
        let started = Instant::now();
        let extraction = on_background_thread(move || {
            let _permit = permit;
            a2v2_extract::extract(&bytes, &options)
        });
        let outcome = match tokio::time::timeout(inner.settings.timeout, extraction).await {
            Ok(Ok(Ok(extraction))) => Ok(extracted(extraction)),
            Ok(Ok(Err(err))) => Err(failure(err.code(), &sentence(&err))),
            Ok(Err(_)) => Err(failure(
                "extraction_failed",
                "The document could not be read: the extractor stopped unexpectedly.",
            )),
            Err(_) => Err(failure(
                "timeout",
                &format!(
                    "Extracting the document took longer than the limit of {} seconds.",
                    inner.settings.timeout.as_secs()
                ),
            )),
        };
        let seconds = started.elapsed().as_secs_f64();
        heartbeat.abort();
        inner.metrics.observe(seconds);
        match self.finish(&job, outcome.as_ref()).await {
            Ok(true) => {}
            Ok(false) => {
                inner.metrics.superseded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job = %job.id, "another node took this extraction over; its result stands");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, job = %job.id, "storing an extraction failed; the job is retried when its lease ends");
                return;
            }
        }
        let counter = match &outcome {
            Ok(_) => &inner.metrics.succeeded,
            Err(err) if err.code == "timeout" => &inner.metrics.timed_out,
            Err(_) => &inner.metrics.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let (true, Ok(extracted)) = (job.create_contacts, &outcome) {
            self.write_contacts(&job, &extracted.contacts).await;
        }
    }

    /// Stores the outcome and removes the job, if the lease is still ours: false when another
    /// node has taken the job (or the document is gone), and nothing was written.
    async fn finish(
        &self,
        job: &Job,
        outcome: Result<&Extracted, &DocumentError>,
    ) -> Result<bool, store::StoreError> {
        let mut tx = self.0.store.begin().await?;
        if !store::jobs::finish(&mut tx, &job.id, &job.lease_token).await? {
            return Ok(false);
        }
        store::documents::set_outcome(&mut tx, &job.agent_id, &job.document_id, outcome, now_ms())
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes the contacts a document names into its agent's CRM through the contacts
    /// service, as the actor who asked: one per email (an email the CRM already has is
    /// skipped), fields that do not pass the contact rules left out.
    async fn write_contacts(&self, job: &Job, found: &[Value]) {
        let by = By {
            actor: ActorRef {
                kind: job.actor.kind.clone().into(),
                id: job.actor.id.clone(),
                label: job.actor.label.clone(),
            },
            origin: Origin {
                ip: job.actor.ip.clone(),
                user_agent: job.actor.user_agent.clone(),
            },
        };
        for contact in found {
            let Value::Object(map) = contact else {
                continue;
            };
            let mut body: Map<String, Value> = map
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            let fields = match validation::new_fields(&body) {
                Ok(fields) => fields,
                Err(errors) => {
                    body.retain(|key, _| !errors.contains_key(key));
                    match validation::new_fields(&body) {
                        Ok(fields) => fields,
                        Err(_) => continue,
                    }
                }
            };
            match self
                .0
                .contacts
                .create(&by, &job.agent_id, fields, None, &|id: &str| {
                    format!("/v1/contacts/{id}")
                })
                .await
            {
                Ok(Created::New(_) | Created::Replayed(_))
                | Err(DomainError::ContactExists { .. }) => {}
                Err(err) => {
                    tracing::warn!(error = %err, document = %job.document_id, "writing a contact found in a document failed");
                }
            }
        }
    }

    /// This node's queue loop: while a worker is free, claims the oldest free job and runs
    /// it; otherwise waits for a wake-up or the next poll. Also gives up on jobs that never
    /// finish.
    pub async fn work(self) {
        let mut last_sweep = Instant::now();
        loop {
            let Ok(permit) = Arc::clone(&self.0.permits).acquire_owned().await else {
                return;
            };
            match self.claim_next().await {
                Ok(Some(job)) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.run_job(job, permit).await });
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "looking for extraction jobs failed"),
            }
            drop(permit);
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                if let Err(err) = self.sweep().await {
                    tracing::warn!(error = %err, "giving up on stuck extraction jobs failed");
                }
            }
            tokio::select! {
                () = self.0.wake.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    /// Lets this node's jobs go when it stops (its queue loop already ended): the running
    /// extractions get up to `grace` to finish and store their results; the leases of those
    /// still running are released, so another node (or this one, restarted) takes them at
    /// once instead of when the lease would have run out. A result that arrives after its
    /// lease was released is dropped, so no document is completed twice.
    pub async fn stop(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.0.metrics.running.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(STOP_POLL).await;
        }
        let held: Vec<(String, String)> = self
            .0
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        if held.is_empty() {
            return;
        }
        let released = async {
            let mut conn = self.0.store.conn().await?;
            for (job_id, token) in &held {
                store::jobs::release(&mut conn, job_id, token).await?;
            }
            Ok::<_, store::StoreError>(())
        }
        .await;
        match released {
            Ok(()) => tracing::info!(
                jobs = held.len(),
                "released the extraction jobs still running, for other nodes to take"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "releasing extraction jobs at shutdown failed; they are retaken when their leases end")
            }
        }
    }

    async fn claim_next(&self) -> Result<Option<Job>, store::StoreError> {
        let now = now_ms();
        {
            let mut conn = self.0.store.conn().await?;
            if !store::jobs::any_free(&mut conn, now, MAX_ATTEMPTS).await? {
                return Ok(None);
            }
        }
        let token = new_id("lease");
        let mut tx = self.0.store.begin().await?;
        let job = store::jobs::claim_next(
            &mut tx,
            &Claim {
                token: &token,
                now,
                lease_until: now + self.lease_ms(),
                max_attempts: MAX_ATTEMPTS,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Fails the documents of jobs that were started [`MAX_ATTEMPTS`] times and never
    /// finished.
    async fn sweep(&self) -> Result<(), store::StoreError> {
        let now = now_ms();
        let mut tx = self.0.store.begin().await?;
        let jobs = store::jobs::take_abandoned(&mut tx, now, MAX_ATTEMPTS, 100).await?;
        let error = failure(
            "extraction_abandoned",
            &format!(
                "Extraction was started {MAX_ATTEMPTS} times and never finished; the file may be \
                 too demanding to extract. Run the extraction again or upload a smaller file."
            ),
        );
        for job in &jobs {
            store::documents::set_outcome(
                &mut tx,
                &job.agent_id,
                &job.document_id,
                Err(&error),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        if !jobs.is_empty() {
            self.0
                .metrics
                .abandoned
                .fetch_add(jobs.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                jobs = jobs.len(),
                "gave up on extraction jobs that never finished"
            );
        }
        Ok(())
    }
}

/// Renews a job's lease every third of its length until aborted or the lease is lost.
async fn keep_lease(store: store::Store, job_id: String, token: String, lease: Duration) {
    let every = lease / 3;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(every).await;
        let renewed = async {
            let mut conn = store.conn().await?;
            store::jobs::renew(&mut conn, &job_id, &token, now_ms() + lease_ms).await
        }
        .await;
        match renewed {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(error = %err, job = %job_id, "renewing an extraction lease failed")
            }
        }
    }
}

/// Runs `work` on a thread in the idle scheduling class, so that a busy extraction pool slows
/// extraction, not the API: request handling and key verification win the cores. Threads that
/// OCR starts inherit the class. The receiver fails if `work` panicked.
fn on_background_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    IDLE_THREADS.run(Box::new(move || {
        let _ = sender.send(work());
    }));
    receiver
}

type Task = Box<dyn FnOnce() + Send>;

/// Idle-class threads kept for the next document. A thread per document cost the cores
/// kernel work at normal priority (its stack mapped and unmapped, its class changed) which
/// requests then waited behind. Threads are started when none is free, so a document that
/// never finishes holds up no other, and end after [`KEEP_IDLE`] without work.
static IDLE_THREADS: IdleThreads = IdleThreads {
    state: Mutex::new(Waiting {
        tasks: std::collections::VecDeque::new(),
        idle: 0,
    }),
    ready: std::sync::Condvar::new(),
};
const KEEP_IDLE: Duration = Duration::from_secs(60);

struct IdleThreads {
    state: Mutex<Waiting>,
    ready: std::sync::Condvar,
}

struct Waiting {
    tasks: std::collections::VecDeque<Task>,
    /// Threads waiting for a task. A task is queued only while more threads wait than tasks
    /// are queued, so every queued task has a thread that will take it.
    idle: usize,
}

impl IdleThreads {
    fn run(&'static self, task: Task) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.idle > state.tasks.len() {
                state.tasks.push_back(task);
                self.ready.notify_one();
                return;
            }
        }
        let spawned = std::thread::Builder::new()
            .name("a2v2-extract".into())
            .spawn(move || {
                lower_priority();
                run_task(task);
                self.serve();
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start an extraction thread");
        }
    }

    /// Takes queued tasks until none came for [`KEEP_IDLE`].
    fn serve(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(task) = state.tasks.pop_front() {
                drop(state);
                run_task(task);
                state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.idle += 1;
            let (next, waited) = self
                .ready
                .wait_timeout(state, KEEP_IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.tasks.is_empty() {
                return;
            }
        }
    }
}

/// A panicking task drops its result's sender (its caller sees the failure); the thread
/// lives on for the next one.
fn run_task(task: Task) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
}

/// `SCHED_IDLE` rather than a nice value: a thread of normal priority that wakes up (a request
/// arriving) takes the core from an idle-class thread at once, where a niced one would first
/// finish its time slice, a millisecond or more of latency for the request. Falls back to the
/// lowest nice value where the idle class is refused.
#[allow(unsafe_code)]
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: the call only reads `param`, which outlives it; pid 0 is the calling thread.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if idle == 0 {
        // A thread that changes its own class keeps the core until its time slice ends
        // (several milliseconds): requests that woke up meanwhile would wait that long.
        std::thread::yield_now();
        return;
    }
    let me = Some(rustix::thread::gettid());
    if let Err(err) = rustix::process::setpriority_process(me, 19) {
        tracing::debug!(error = %err, "cannot lower the priority of an extraction thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn extraction_runs_in_the_idle_scheduling_class() {
        // SAFETY: reads the calling thread's policy; no pointers involved.
        let policy = on_background_thread(|| unsafe { libc::sched_getscheduler(0) })
            .blocking_recv()
            .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        // The caller's own thread keeps its class.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    }

    #[test]
    fn a_panicking_extraction_fails_alone() {
        let panicked = on_background_thread(|| -> u8 { panic!("a parser bug") });
        assert!(panicked.blocking_recv().is_err());
        let next = on_background_thread(|| 7_u8);
        assert_eq!(next.blocking_recv().unwrap(), 7);
    }

    #[test]
    fn errors_become_sentences() {
        assert_eq!(
            sentence(&ExtractError::Encrypted),
            "The document is encrypted or password-protected."
        );
    }

    #[test]
    fn metrics_render_outcomes_and_buckets() {
        let metrics = ExtractionMetrics::default();
        metrics.observe(0.02);
        metrics.observe(3.0);
        metrics.succeeded.fetch_add(2, Ordering::Relaxed);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("a2v2_extraction_jobs_total{outcome=\"succeeded\"} 2\n"));
        assert!(out.contains("a2v2_extraction_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(out.contains("a2v2_extraction_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(out.contains("a2v2_extraction_duration_seconds_count 2"));
    }
}

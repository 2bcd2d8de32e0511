//! The service's durable truth: jobs, their events and idempotency keys, in SQLite under
//! `dataDir`. What was imported is not here: the import journal in the staging store stays the
//! truth of that, so a resumed job imports nothing twice.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelling,
    Cancelled,
    /// It was running when the service stopped; `resume` continues it.
    Interrupted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelling => "cancelling",
            State::Cancelled => "cancelled",
            State::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "queued" => State::Queued,
            "running" => State::Running,
            "succeeded" => State::Succeeded,
            "cancelling" => State::Cancelling,
            "cancelled" => State::Cancelled,
            "interrupted" => State::Interrupted,
            _ => State::Failed,
        }
    }

    /// Ended: nothing runs it and nothing will unless it is resumed.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled | State::Interrupted)
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    #[serde(skip)]
    pub tenant: String,
    pub kind: String,
    pub state: State,
    pub attempt: i64,
    pub request: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: i64,
    #[serde(rename = "updatedAt")]
    pub updated_at: i64,
    #[serde(rename = "idempotencyKey", skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip)]
    pub report: Option<String>,
    /// The latest progress: phase, rows, bytes, totalBytes, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
}

#[derive(Clone)]
pub struct JobStore {
    pool: SqlitePool,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

const COLUMNS: &str = "id, tenant, kind, state, attempt, request, error, created_at, updated_at, idempotency_key, report, progress";

fn record(r: &sqlx::sqlite::SqliteRow) -> JobRecord {
    JobRecord {
        id: r.get("id"),
        tenant: r.get("tenant"),
        kind: r.get("kind"),
        state: State::parse(r.get::<String, _>("state").as_str()),
        attempt: r.get("attempt"),
        request: serde_json::from_str(r.get::<String, _>("request").as_str()).unwrap_or(serde_json::Value::Null),
        error: r.get("error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        idempotency_key: r.get("idempotency_key"),
        report: r.get("report"),
        progress: r.get::<Option<String>, _>("progress").and_then(|p| serde_json::from_str(&p).ok()),
    }
}

impl JobStore {
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| anyhow::anyhow!("dataDir {}: {e}", data_dir.display()))?;
        let path = data_dir.join("jobs.sqlite");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY, tenant TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
                attempt INTEGER NOT NULL, request TEXT NOT NULL, error TEXT, created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL, idempotency_key TEXT, report TEXT, progress TEXT,
                UNIQUE (tenant, idempotency_key))",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS events (
                job_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (job_id, seq))",
        )
        .execute(&pool)
        .await?;
        Ok(JobStore { pool })
    }

    /// At start-up: no job may show `running` without an owner. Running and cancelling jobs
    /// become `interrupted`; those that were running go back to the queue (next attempt) when
    /// `auto_resume` says their tenant allows it. Returns the ids of queued jobs, to run again.
    pub async fn recover(&self, auto_resume: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query("SELECT id, tenant, state FROM jobs WHERE state IN ('running', 'cancelling')").fetch_all(&self.pool).await?;
        for r in &rows {
            let (id, tenant, state): (String, String, String) = (r.get("id"), r.get("tenant"), r.get("state"));
            self.set_state(&id, State::Interrupted, Some("the service stopped while the job ran; resume continues it")).await?;
            if state == "running" && auto_resume(&tenant) {
                self.requeue(&id).await?;
            }
        }
        let queued = sqlx::query("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at").fetch_all(&self.pool).await?;
        Ok(queued.iter().map(|r| r.get("id")).collect())
    }

    /// Inserts a queued job, or returns the job the same tenant submitted earlier with the same
    /// idempotency key (`Err` with it when its request differs).
    pub async fn insert(&self, tenant: &str, kind: &str, request: &serde_json::Value, key: Option<&str>) -> anyhow::Result<Result<(JobRecord, bool), JobRecord>> {
        let id = new_id();
        let t = now();
        let text = request.to_string();
        let r = sqlx::query(
            "INSERT INTO jobs (id, tenant, kind, state, attempt, request, created_at, updated_at, idempotency_key)
             VALUES (?, ?, ?, 'queued', 1, ?, ?, ?, ?) ON CONFLICT (tenant, idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(tenant)
        .bind(kind)
        .bind(&text)
        .bind(t)
        .bind(t)
        .bind(key)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            self.event(&id, "state", &serde_json::json!({"state": "queued", "attempt": 1})).await?;
            return Ok(Ok((self.get(tenant, &id).await?.expect("just inserted"), true)));
        }
        let q = format!("SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND idempotency_key = ?");
        let earlier = record(&sqlx::query(&q).bind(tenant).bind(key).fetch_one(&self.pool).await?);
        if earlier.request.to_string() == text {
            Ok(Ok((earlier, false)))
        } else {
            Ok(Err(earlier))
        }
    }

    /// A job of `tenant` (another tenant's id is as good as missing).
    pub async fn get(&self, tenant: &str, id: &str) -> anyhow::Result<Option<JobRecord>> {
        let q = format!("SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND id = ?");
        Ok(sqlx::query(&q).bind(tenant).bind(id).fetch_optional(&self.pool).await?.as_ref().map(record))
    }

    pub async fn get_any(&self, id: &str) -> anyhow::Result<Option<JobRecord>> {
        let q = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?");
        Ok(sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?.as_ref().map(record))
    }

    /// The tenant's jobs, newest first.
    pub async fn list(&self, tenant: &str, limit: i64, offset: i64) -> anyhow::Result<Vec<JobRecord>> {
        let q = format!("SELECT {COLUMNS} FROM jobs WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?");
        Ok(sqlx::query(&q).bind(tenant).bind(limit).bind(offset).fetch_all(&self.pool).await?.iter().map(record).collect())
    }

    /// Jobs of the tenant in these states.
    pub async fn count(&self, tenant: &str, states: &[State]) -> anyhow::Result<usize> {
        let list = states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
        let q = format!("SELECT COUNT(*) AS n FROM jobs WHERE tenant = ? AND state IN ({list})");
        Ok(sqlx::query(&q).bind(tenant).fetch_one(&self.pool).await?.get::<i64, _>("n") as usize)
    }

    pub async fn set_state(&self, id: &str, state: State, error: Option<&str>) -> anyhow::Result<()> {
        sqlx::query("UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        let mut data = serde_json::json!({"state": state.as_str()});
        if let Some(e) = error {
            data["error"] = e.into();
        }
        self.event(id, "state", &data).await?;
        if state.is_terminal() {
            // The attempt's last event: a client following the stream may stop here.
            self.event(id, "end", &data).await?;
        }
        Ok(())
    }

    /// The job's latest progress (shown by GET /v1/jobs/{id}).
    pub async fn set_progress(&self, id: &str, progress: &serde_json::Value) -> anyhow::Result<()> {
        sqlx::query("UPDATE jobs SET progress = ? WHERE id = ?").bind(progress.to_string()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// The job's log lines, oldest first: (sequence, level, message).
    pub async fn logs(&self, id: &str) -> anyhow::Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query("SELECT seq, data FROM events WHERE job_id = ? AND kind IN ('log', 'warning') ORDER BY seq").bind(id).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let d: serde_json::Value = serde_json::from_str(r.get::<String, _>("data").as_str()).unwrap_or_default();
                let field = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                (r.get("seq"), field("level"), field("message"))
            })
            .collect())
    }

    /// Moves an ended job back to `queued` for its next attempt; false when it is not ended.
    pub async fn requeue(&self, id: &str) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', error = NULL, attempt = attempt + 1, updated_at = ?
             WHERE id = ? AND state IN ('failed', 'cancelled', 'interrupted')",
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            self.event(id, "state", &serde_json::json!({"state": "queued"})).await?;
        }
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_report(&self, id: &str, report: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE jobs SET report = ? WHERE id = ?").bind(report).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Appends an event; its sequence number is its SSE id.
    pub async fn event(&self, id: &str, kind: &str, data: &serde_json::Value) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO events (job_id, seq, kind, data) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ? FROM events WHERE job_id = ?")
            .bind(id)
            .bind(kind)
            .bind(data.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events after `after`, in order.
    pub async fn events(&self, id: &str, after: i64) -> anyhow::Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query("SELECT seq, kind, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq").bind(id).bind(after).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get("seq"), r.get("kind"), r.get("data"))).collect())
    }
}

/// A job id: time-ordered and unguessable enough for a handle (ids are checked per tenant).
fn new_id() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let h = Sha256::digest(format!("{t}/{n}/{}", std::process::id()).as_bytes());
    format!("j{:x}{}", t / 1_000_000, h.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
}

//! The HTTP API (axum): jobs by tenant, bearer tokens, errors as RFC 9457 problem documents
//! with a stable `code`. Another tenant's job is answered exactly like a missing one (404).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;

use super::config::Tenant;
use super::request::{JobRequest, Refusal};
use super::runner::Runner;
use super::store::{JobRecord, State as JobState};

/// An error answer: `application/problem+json` with a stable code.
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, code, detail: detail.into(), retry_after: None }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("https://milvus-migration/problems/{}", self.code),
            "title": self.status.canonical_reason().unwrap_or(""),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("service error: {e:#}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the service failed; see its log")
    }
}

type Shared = Arc<Runner>;

/// The caller's tenant, from `Authorization: Bearer <token>`.
fn tenant<'a>(runner: &'a Runner, headers: &HeaderMap) -> Result<&'a Tenant, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Authorization: Bearer <token> is required"))?;
    runner.config.tenant_of(token.trim()).ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "unknown token"))
}

fn not_found(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "job-not-found", format!("no job {id}"))
}

fn job_response(status: StatusCode, job: &JobRecord) -> Response {
    let mut r = (status, Json(job)).into_response();
    if status == StatusCode::ACCEPTED {
        if let Ok(v) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    r
}

pub fn router(runner: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/v1/tenant", get(tenant_info))
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/resume", post(resume))
        .route("/v1/jobs/{id}/report", get(report))
        .route("/v1/jobs/{id}/logs", get(logs))
        .route("/v1/jobs/{id}/events", get(events))
        .with_state(runner)
}

/// The service's OpenAPI document (tests compare it with the committed copy).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn submit(State(runner): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let request: JobRequest = serde_json::from_slice(&body).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-request", format!("the job request: {e}")))?;
    // Check everything before a record exists: names granted, paths, options, limits.
    request.resolve(t).map_err(|r| match r {
        Refusal::Forbidden(m) => Problem::new(StatusCode::FORBIDDEN, "not-granted", m),
        Refusal::Invalid(m) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-job", m),
    })?;
    let active = runner.store.count(&t.id, &[JobState::Queued, JobState::Running, JobState::Cancelling]).await?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let over_quota = || {
        let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "quota", format!("{active} active job(s): the tenant's quota is {}", t.quotas.active_jobs));
        p.retry_after = Some(10);
        p
    };
    if active >= t.quotas.active_jobs && key.is_none() {
        return Err(over_quota());
    }
    let value = serde_json::to_value(&request).map_err(anyhow::Error::from)?;
    let kind = format!("{:?}", request.kind).to_lowercase();
    match runner.store.insert(&t.id, &kind, &value, key).await? {
        Ok((job, true)) => {
            if active >= t.quotas.active_jobs {
                runner.store.set_state(&job.id, JobState::Failed, Some("refused: the tenant's active-job quota")).await?;
                return Err(over_quota());
            }
            runner.start(job.id.clone());
            Ok(job_response(StatusCode::ACCEPTED, &job))
        }
        // The same key and body: the job submitted the first time.
        Ok((job, false)) => Ok(job_response(StatusCode::ACCEPTED, &job)),
        Err(earlier) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            format!("Idempotency-Key already used for job {} with another request", earlier.id),
        )),
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(State(runner): State<Shared>, headers: HeaderMap, Query(p): Query<Page>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let jobs = runner.store.list(&t.id, p.limit.unwrap_or(50).clamp(1, 500), p.offset.unwrap_or(0).max(0)).await?;
    Ok(Json(serde_json::json!({ "jobs": jobs })).into_response())
}

async fn get_job(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    let mut v = serde_json::to_value(&job).map_err(anyhow::Error::from)?;
    if let Some(r) = &job.report {
        v["report"] = serde_json::from_str(r).unwrap_or(serde_json::Value::Null);
    }
    Ok(Json(v).into_response())
}

async fn cancel(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    if job.state.is_terminal() || !runner.cancel(&id).await? {
        return Err(Problem::new(StatusCode::CONFLICT, "job-ended", format!("job {id} is {}: nothing to cancel", job.state.as_str())));
    }
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(job_response(StatusCode::ACCEPTED, &job))
}

async fn resume(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    if !runner.store.requeue(&id).await? {
        return Err(Problem::new(StatusCode::CONFLICT, "job-not-resumable", format!("job {id} is {}: only failed, cancelled or interrupted jobs resume", job.state.as_str())));
    }
    runner.start(id.clone());
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(job_response(StatusCode::ACCEPTED, &job))
}

async fn report(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let job = runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    let r = job.report.ok_or_else(|| Problem::new(StatusCode::CONFLICT, "no-report", format!("job {id} has no report yet ({})", job.state.as_str())))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], r).into_response())
}

/// The job's log lines as text, one per line: `<sequence> <level> <message>`.
async fn logs(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    let lines: String = runner.store.logs(&id).await?.into_iter().map(|(seq, level, msg)| format!("{seq} {level} {msg}\n")).collect();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines).into_response())
}

async fn tenant_info(State(runner): State<Shared>, headers: HeaderMap) -> Result<Response, Problem> {
    let t = tenant(&runner, &headers)?;
    let q = t.quotas;
    let running = runner.store.count(&t.id, &[JobState::Running, JobState::Cancelling]).await?;
    let active = runner.store.count(&t.id, &[JobState::Queued, JobState::Running, JobState::Cancelling]).await?;
    Ok(Json(serde_json::json!({
        "id": t.id,
        "quotas": {"runningJobs": q.running_jobs, "activeJobs": q.active_jobs, "concurrentUnits": q.concurrent_units,
                   "memoryMiBPerUnit": q.memory_mib_per_unit, "fuelPerUnit": q.fuel_per_unit,
                   "wallClockSecondsPerUnit": q.wall_clock_seconds_per_unit, "autoResume": q.auto_resume},
        "usage": {"runningJobs": running, "activeJobs": active, "runningUnits": runner.units_running(&t.id)},
        "stores": t.stores.keys().collect::<Vec<_>>(),
        "milvus": t.milvus.keys().collect::<Vec<_>>(),
        "mysql": t.mysql.keys().collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Server-sent events of a job, from after `Last-Event-ID` (or the start), until it ends.
async fn events(State(runner): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, Problem> {
    let t = tenant(&runner, &headers)?;
    runner.store.get(&t.id, &id).await?.ok_or_else(|| not_found(&id))?;
    let after: i64 = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stream = futures::stream::unfold((runner, id, after, false), |(runner, id, mut after, done)| async move {
        if done {
            return None;
        }
        let ended = |runner: Shared, id: String| async move { runner.store.get_any(&id).await.ok().flatten().is_none_or(|j| j.state.is_terminal()) };
        loop {
            let batch = runner.store.events(&id, after).await.unwrap_or_default();
            if let Some((last, kind, _)) = batch.last() {
                after = *last;
                // An attempt's `end` closes the stream when the job stays ended (no resume yet).
                let last = kind == "end" && ended(runner.clone(), id.clone()).await;
                let events: Vec<Result<Event, std::convert::Infallible>> =
                    batch.into_iter().map(|(seq, kind, data)| Ok(Event::default().id(seq.to_string()).event(kind).data(data))).collect();
                return Some((futures::stream::iter(events), (runner, id, after, last)));
            }
            if ended(runner.clone(), id.clone()).await {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    use futures::StreamExt;
    Ok(Sse::new(stream.flatten()).keep_alive(KeepAlive::default()))
}

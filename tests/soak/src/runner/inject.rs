//! Faults injected through the emulator's control handle (and the manager swapped for a restart), each on the
//! backend the schedule runs on: the sidecar's faults on the sidecar, the REST API's on the REST API.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use snowpipe_api::{Backend as _, ChannelRef, OpenOptions, RetryConfig, TableRef};
use snowpipe_emulator::{BodyShape, Control, DropMode, Endpoint, Failure, RestChannelName, demo};
use snowpipe_rest::{Credentials, RestClient, RestConfig};

use super::{DISCARDS, Run, TimePasses};
use crate::schedule::{At, Backend, BatchPlan, Ep, Fault, Shape, TABLES, Target};

/// What the soak must remember of faults that take rows or counters away with them.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Rows of tables replaced by `CREATE OR REPLACE TABLE`, by table, then by marker: they were committed
    /// once, and the checks count them with the rows the tables hold now.
    pub(super) replaced: HashMap<&'static str, HashMap<String, usize>>,
    /// Rows rejected at commit by REST channels of the event tables that are gone since (dropped by hand or
    /// with their table), as sent: the channels' records went with them.
    pub(super) rejected_gone: Vec<String>,
    /// REST channels an append was held in transit on (their request logs say how many rows).
    pub(super) held: Vec<RestChannelName>,
    /// Faults that could not be injected (their channel did not exist yet, an open by hand failed).
    pub(super) missed: usize,
}

/// Injects faults into one run's emulator, from the soak's task or from a task waiting on the call log.
#[derive(Clone)]
pub(super) struct Injector {
    pub(super) control: Control,
    pub(super) backend: Backend,
    /// REST: a client of its own, for opens by hand (another opener of the manager's channels).
    hand: Option<Arc<RestClient>>,
    pub(super) ledger: Arc<Mutex<Ledger>>,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The destination id and instance the soak's managers write as (see `World::destination`).
const DESTINATION_ID: &str = "dest-e2e";
const INSTANCE: &str = "1";

impl Injector {
    pub(super) fn new(
        control: Control,
        backend: Backend,
        base_url: &str,
        sleep: Arc<TimePasses>,
    ) -> Self {
        let hand = (backend == Backend::Rest).then(|| {
            let mut config = RestConfig::new(
                demo::ACCOUNT,
                demo::USER,
                Credentials::key_pair(demo::PRIVATE_KEY_PEM, ""),
            );
            config.role = Some(demo::ROLE.to_owned());
            config.account_url = Some(base_url.to_owned());
            config.timeout = super::HTTP_TIMEOUT;
            config.uncommitted_wait = Duration::from_secs(2);
            config.retry = RetryConfig {
                max_retries: 3,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
                jitter: false,
                ..RetryConfig::default()
            };
            config.sleep = sleep;
            Arc::new(RestClient::new(config).expect("the soak's REST settings are valid"))
        });
        Self {
            control,
            backend,
            hand,
            ledger: Arc::default(),
        }
    }

    pub(super) fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn missed(&self) {
        self.ledger().missed += 1;
    }

    /// The emulator endpoint of a call on this run's backend.
    fn endpoint(&self, ep: Ep) -> Endpoint {
        match (self.backend, ep) {
            (Backend::Sidecar, Ep::CreateChannel) => Endpoint::CreateChannel,
            (Backend::Sidecar, Ep::DeleteChannel) => Endpoint::DeleteChannel,
            (Backend::Sidecar, Ep::Insert) => Endpoint::Insert,
            (Backend::Sidecar, Ep::Status) => Endpoint::Status,
            (Backend::Sidecar, Ep::BulkStatus) => Endpoint::BulkStatus,
            (_, Ep::Statements) => Endpoint::Statements,
            (Backend::Rest, Ep::CreateChannel) => Endpoint::RestOpenChannel,
            (Backend::Rest, Ep::DeleteChannel) => Endpoint::RestDropChannel,
            (Backend::Rest, Ep::Insert) => Endpoint::RestAppend,
            // The REST API has no single-channel status: the client asks bulk status for one.
            (Backend::Rest, Ep::Status | Ep::BulkStatus) => Endpoint::RestBulkStatus,
            (_, Ep::TokenExchange) => Endpoint::RestToken,
        }
    }

    /// Injects a fault.
    pub(super) async fn apply(&self, fault: Fault) {
        match self.backend {
            Backend::Sidecar => apply_sidecar(&self.control, fault, |ep| self.endpoint(ep)),
            Backend::Rest => self.apply_rest(fault).await,
        }
    }

    async fn apply_rest(&self, fault: Fault) {
        let control = &self.control;
        let on = |target: Target, f: &dyn Fn(&RestChannelName) -> bool| match rest_channel(
            control, target,
        ) {
            Some(name) if f(&name) => {}
            _ => self.missed(),
        };
        match fault {
            Fault::Invalidate(target) => on(target, &|n| control.invalidate_rest_channel(n)),
            Fault::Stall(Some(target)) => on(target, &|n| control.stall_rest_commits(n)),
            Fault::Stall(None) => {
                control.stall_commits(None);
            }
            Fault::Resume => {
                control.resume_commits(None);
            }
            Fault::ServerErrors { ep, count, status } => {
                control.fail_next(self.endpoint(ep), count.into(), Failure::Status { status });
            }
            Fault::RestErrors {
                ep,
                count,
                status,
                shape,
            } => control.fail_next(
                self.endpoint(ep),
                count.into(),
                Failure::Shaped {
                    status,
                    code: "ERR_GENERAL_EXCEPTION_RETRY_REQUEST".into(),
                    shape: body_shape(shape),
                },
            ),
            Fault::DropResponse { ep, count, applied } => {
                control.drop_next(self.endpoint(ep), count.into(), drop_mode(applied));
            }
            Fault::AuthDdl(count) => control.fail_next(
                Endpoint::Statements,
                count.into(),
                Failure::Status { status: 401 },
            ),
            // A role that lost its grants: the ingest host answers 403 (auth-kind, never reopened).
            Fault::AuthChannel(count) => control.fail_next(
                Endpoint::RestOpenChannel,
                count.into(),
                Failure::Status { status: 403 },
            ),
            Fault::RefuseChannel => control.fail_next(
                Endpoint::RestOpenChannel,
                1,
                Failure::ChannelCode {
                    code: "ERR_TABLE_NAME_INVALID".into(),
                    http_code: 400,
                },
            ),
            Fault::RefuseAppend => control.fail_next(
                Endpoint::RestAppend,
                1,
                Failure::ChannelCode {
                    code: "ERR_INVALID_ROW_FORMAT".into(),
                    http_code: 400,
                },
            ),
            Fault::OpenInProgress(count) => control.fail_next(
                Endpoint::RestOpenChannel,
                count.into(),
                Failure::ChannelCode {
                    code: "ERR_OPEN_CHANNEL_IN_PROGRESS".into(),
                    http_code: 409,
                },
            ),
            Fault::InvalidSql => {
                control.fail_next(Endpoint::Statements, 1, Failure::Status { status: 422 });
            }
            Fault::Latency { ep, millis } => {
                control.set_latency(self.endpoint(ep), Duration::from_millis(millis.into()));
            }
            Fault::Clear => clear_rest(control),
            Fault::RewriteToken(target) => on(target, &|n| {
                control.set_rest_committed_token(n, Some("rewritten-by-hand"))
            }),
            Fault::DropChannelName(target) => on(target, &|n| {
                self.remember_errors(n);
                control.drop_rest_channel(n)
            }),
            Fault::HandReopen { target, discard } => self.open_by_hand(target, discard).await,
            Fault::ExpireTokens => control.expire_scoped_tokens(),
            Fault::Throttle { target, count } => {
                on(target, &|n| control.throttle_appends(n, count.into()));
            }
            Fault::HoldAppend(target) => on(target, &|n| {
                let held = control.hold_next_appends(n, 1);
                if held {
                    self.ledger().held.push(n.clone());
                }
                held
            }),
            Fault::RejectRows {
                target,
                first,
                count,
            } => {
                let rows: Vec<usize> =
                    (usize::from(first)..usize::from(first) + usize::from(count)).collect();
                on(target, &|n| control.reject_rows_at_commit(n, &rows));
            }
            Fault::CountersLag(on_off) => control.set_counters_lag(on_off),
            Fault::ReplaceTable(t) => self.replace_table(TABLES[usize::from(t) % TABLES.len()]),
            // The soak plays these itself (see `Run::inject` and `Run::batch`).
            Fault::RestartManager | Fault::OverlappingUpload | Fault::KillMidUpload => {}
            // The sidecar's own faults mean nothing on the REST API.
            Fault::Restart
            | Fault::BulkStatusLie(_)
            | Fault::SupersededFlush(_)
            | Fault::InTransit { .. } => self.missed(),
        }
    }

    /// Another opener of the manager's channel: a client of its own opens it (no token written).
    async fn open_by_hand(&self, target: Target, discard: bool) {
        let Some(hand) = &self.hand else {
            return self.missed();
        };
        let channel = ChannelRef {
            table: TableRef {
                database: demo::DATABASE.to_owned(),
                schema: snowpipe_e2e::SCHEMA.to_owned(),
                table: target_table(target).to_owned(),
                enable_iceberg: false,
            },
            destination: DESTINATION_ID.to_owned(),
            instance: INSTANCE.to_owned(),
        };
        let options = if discard {
            OpenOptions::discard()
        } else {
            OpenOptions::wait()
        };
        if let Err(error) = hand.open_channel(&channel, &options).await {
            tracing_missed(&error.to_string());
            self.missed();
        }
    }

    /// Remembers the rows a REST channel rejected before it goes away with its counters.
    fn remember_errors(&self, name: &RestChannelName) {
        if name.pipe == format!("{DISCARDS}-STREAMING") {
            return;
        }
        if let Some(info) = self.control.rest_channel(name) {
            self.ledger().rejected_gone.extend(on_time(&info));
        }
    }

    /// `CREATE OR REPLACE TABLE` with the table's columns as they are: rows and channels gone, nothing else
    /// changed. The rows are kept in the ledger first (no call is under way: never injected after a call).
    fn replace_table(&self, table: &'static str) {
        let control = &self.control;
        let Some(info) = control.table(demo::DATABASE, snowpipe_e2e::SCHEMA, table) else {
            return self.missed();
        };
        for channel in control.rest_channels() {
            if channel.table == table {
                self.ledger().rejected_gone.extend(on_time(&channel));
            }
        }
        let rows = control
            .rows(demo::DATABASE, snowpipe_e2e::SCHEMA, table)
            .unwrap_or_default();
        {
            let mut ledger = self.ledger();
            let kept = ledger.replaced.entry(table).or_default();
            for row in rows {
                let mark = row["MARK"].as_str().unwrap_or("<no MARK>").to_owned();
                *kept.entry(mark).or_default() += 1;
            }
        }
        let columns: Vec<String> = info
            .columns
            .iter()
            .map(|c| {
                format!(
                    "\"{}\" {}{}",
                    c.name.replace('"', "\"\""),
                    c.ty,
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        let statement = format!(
            "CREATE OR REPLACE TABLE \"{}\".\"{}\".\"{table}\" ({})",
            demo::DATABASE,
            snowpipe_e2e::SCHEMA,
            columns.join(", ")
        );
        if control.execute_sql(&statement, None, None).is_err() {
            self.missed();
        }
    }

    /// Rows held in transit on REST channels so far (each may land twice: once late, once resent).
    pub(super) fn held_rows(&self) -> usize {
        let held = self.ledger().held.clone();
        let mut seen = std::collections::HashSet::new();
        held.iter()
            .filter(|n| seen.insert((*n).clone()))
            .flat_map(|n| self.control.rest_requests(n))
            .filter(|r| r.fault.as_deref().is_some_and(|f| f.contains("held")))
            .map(|r| r.rows.unwrap_or(0))
            .sum()
    }

    /// Rows rejected in appends that landed late (held in transit past an open), on the channels there now.
    pub(super) fn rejected_late_rows(&self) -> u64 {
        self.control
            .rest_channels()
            .iter()
            .map(|c| c.rows_rejected_late)
            .sum()
    }

    /// Rows REST channels of the event tables rejected at commit, as sent, those of channels gone since
    /// included. Rows of an append held in transit past the reopen that settled it are left out: its jobs
    /// were judged from that reopen (lost, so resent), and the copy that landed late being rejected takes
    /// nothing from them.
    pub(super) fn rejected_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> = self
            .control
            .rest_channels()
            .iter()
            .filter(|c| c.table != DISCARDS)
            .flat_map(on_time)
            .collect();
        rows.extend(self.ledger().rejected_gone.iter().cloned());
        rows
    }
}

/// The rows a channel rejected at commit in requests that did not land late.
fn on_time(info: &snowpipe_emulator::RestChannelInfo) -> Vec<String> {
    info.rejected_rows
        .iter()
        .filter(|r| !r.late)
        .map(|r| r.row.clone())
        .collect()
}

#[allow(clippy::print_stderr)]
fn tracing_missed(why: &str) {
    if std::env::var_os("SOAK_TRACE").is_some() {
        eprintln!("soak: a fault could not be injected: {why}");
    }
}

/// Lifts every REST fault scripted per channel (throttles, holds not yet used, rejections not yet used) and
/// the counters' lag, with the scripted failures, drops and latencies. Stalls stay.
pub(super) fn clear_rest(control: &Control) {
    control.clear_faults();
    control.set_counters_lag(false);
    for channel in control.rest_channels() {
        let name = name_of(&channel);
        control.throttle_appends(&name, 0);
        control.hold_next_appends(&name, 0);
        control.reject_rows_at_commit(&name, &[]);
    }
}

impl Run {
    pub(super) async fn inject(&mut self, fault: Fault) {
        self.trace(|| format!("inject: {fault}"));
        if fault == Fault::RestartManager {
            self.manager = self.connect();
        }
        self.injector.apply(fault).await;
        self.injected(fault);
    }

    pub(super) fn injected(&mut self, fault: Fault) {
        if fault.is_abort_kind() {
            self.abort_faults = true;
        }
        if matches!(fault, Fault::RejectRows { .. }) {
            self.rejection_faults = true;
        }
        if let Some(window) = super::window(self.backend, fault) {
            self.windows.insert(window);
        }
        self.count(fault.label());
        self.outcome.faults += 1;
    }

    pub(super) async fn inject_at(&mut self, batch: &BatchPlan, at: At) {
        for timed in batch.faults.iter().filter(|t| t.at == at) {
            if matches!(timed.fault, Fault::KillMidUpload) {
                // Only ever right after a call, in the middle of the upload (see `Run::batch`).
                continue;
            }
            self.inject(timed.fault).await;
        }
    }
}

fn drop_mode(applied: bool) -> DropMode {
    if applied {
        DropMode::Applied
    } else {
        DropMode::NotApplied
    }
}

fn body_shape(shape: Shape) -> BodyShape {
    match shape {
        Shape::Documented => BodyShape::Documented,
        Shape::ErrorCode => BodyShape::ErrorCode,
        Shape::BareString => BodyShape::BareString,
        Shape::Empty => BodyShape::Empty,
        Shape::Html => BodyShape::Html,
    }
}

/// Injects a sidecar fault through the control handle.
fn apply_sidecar(control: &Control, fault: Fault, endpoint: impl Fn(Ep) -> Endpoint) {
    match fault {
        Fault::Restart => control.restart(),
        Fault::Invalidate(target) => {
            if let Some(id) = current_channel(control, target) {
                control.invalidate_channel(&id);
            }
        }
        Fault::BulkStatusLie(on) => control.set_bulk_status_lie(on),
        Fault::Stall(Some(target)) => {
            if let Some(id) = current_channel(control, target) {
                control.stall_commits(Some(&id));
            }
        }
        Fault::Stall(None) => {
            control.stall_commits(None);
        }
        Fault::Resume => {
            control.resume_commits(None);
        }
        Fault::ServerErrors { ep, count, status } => {
            control.fail_next(endpoint(ep), count.into(), Failure::Status { status });
        }
        Fault::DropResponse { ep, count, applied } => {
            control.drop_next(endpoint(ep), count.into(), drop_mode(applied));
        }
        Fault::AuthDdl(count) => {
            control.fail_next(
                Endpoint::Statements,
                count.into(),
                Failure::Status { status: 401 },
            );
        }
        Fault::AuthChannel(count) => control.fail_next(
            Endpoint::CreateChannel,
            count.into(),
            Failure::ChannelCode {
                code: "ERR_AUTHENTICATION_FAILED".into(),
                http_code: 401,
            },
        ),
        Fault::RefuseChannel => control.fail_next(
            Endpoint::CreateChannel,
            1,
            Failure::ChannelCode {
                code: "ERR_TABLE_NAME_INVALID".into(),
                http_code: 400,
            },
        ),
        Fault::InvalidSql => {
            control.fail_next(Endpoint::Statements, 1, Failure::Status { status: 422 });
        }
        Fault::Latency { ep, millis } => {
            control.set_latency(endpoint(ep), Duration::from_millis(millis.into()));
        }
        Fault::Clear => control.clear_faults(),
        // The soak swaps the manager itself (see `Run::inject`), and plays overlapping uploads itself.
        Fault::RestartManager | Fault::OverlappingUpload | Fault::KillMidUpload => {}
        Fault::SupersededFlush(on) => control.set_superseded_flush(on),
        Fault::InTransit { millis } => {
            control.delay_next_insert(1, Duration::from_millis(millis.into()));
        }
        Fault::RewriteToken(target) => {
            if let Some(id) = current_channel(control, target) {
                control.set_committed_offset(&id, "rewritten-by-hand");
            }
        }
        Fault::DropChannelName(target) => {
            if let Some(id) = current_channel(control, target) {
                control.drop_channel_name(&id);
            }
        }
        // The REST API's own faults mean nothing on the sidecar.
        Fault::HandReopen { .. }
        | Fault::ExpireTokens
        | Fault::Throttle { .. }
        | Fault::RestErrors { .. }
        | Fault::OpenInProgress(_)
        | Fault::RefuseAppend
        | Fault::HoldAppend(_)
        | Fault::RejectRows { .. }
        | Fault::CountersLag(_)
        | Fault::ReplaceTable(_) => {}
    }
}

fn target_table(target: Target) -> &'static str {
    match target {
        Target::Table(t) => TABLES[usize::from(t) % TABLES.len()],
        Target::Discards => DISCARDS,
    }
}

/// The newest valid channel of the target's table.
fn current_channel(control: &Control, target: Target) -> Option<String> {
    let table = target_table(target);
    control
        .channels()
        .into_iter()
        .filter(|c| c.table == table && c.valid && !c.deleted)
        .map(|c| c.channel_id)
        .max()
}

fn name_of(channel: &snowpipe_emulator::RestChannelInfo) -> RestChannelName {
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    RestChannelName::new(
        &quoted(&channel.database),
        &quoted(&channel.schema),
        &quoted(&channel.pipe),
        &quoted(&channel.channel),
    )
}

/// The target table's REST channel (one per table: one destination, one instance).
fn rest_channel(control: &Control, target: Target) -> Option<RestChannelName> {
    let table = target_table(target);
    control
        .rest_channels()
        .iter()
        .find(|c| c.table == table)
        .map(name_of)
}

//! Faults injected through the emulator's control handle (and the manager swapped for a restart).

use std::time::Duration;

use snowpipe_emulator::{Control, DropMode, Endpoint, Failure};

use super::{DISCARDS, Run};
use crate::schedule::{At, BatchPlan, Ep, Fault, TABLES, Target};

impl Run {
    pub(super) fn inject(&mut self, fault: Fault) {
        self.trace(|| format!("inject: {fault}"));
        if fault == Fault::RestartManager {
            self.manager = self.connect();
        }
        apply(&self.world.control, fault);
        self.injected(fault);
    }

    pub(super) fn injected(&mut self, fault: Fault) {
        if fault.is_abort_kind() {
            self.abort_faults = true;
        }
        if fault.hides_commits() {
            self.hidden_commits = true;
        }
        self.outcome.faults += 1;
    }

    pub(super) fn inject_at(&mut self, batch: &BatchPlan, at: At) {
        for timed in batch.faults.iter().filter(|t| t.at == at) {
            self.inject(timed.fault);
        }
    }
}

pub(super) fn endpoint(ep: Ep) -> Endpoint {
    match ep {
        Ep::CreateChannel => Endpoint::CreateChannel,
        Ep::DeleteChannel => Endpoint::DeleteChannel,
        Ep::Insert => Endpoint::Insert,
        Ep::Status => Endpoint::Status,
        Ep::BulkStatus => Endpoint::BulkStatus,
        Ep::Statements => Endpoint::Statements,
    }
}

/// Injects a fault through the control handle.
pub(super) fn apply(control: &Control, fault: Fault) {
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
            let mode = if applied {
                DropMode::Applied
            } else {
                DropMode::NotApplied
            };
            control.drop_next(endpoint(ep), count.into(), mode);
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
        Fault::RestartManager | Fault::OverlappingUpload => {}
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
    }
}

/// The newest valid channel of the target's table.
fn current_channel(control: &Control, target: Target) -> Option<String> {
    let table = match target {
        Target::Table(t) => TABLES[usize::from(t) % TABLES.len()],
        Target::Discards => DISCARDS,
    };
    control
        .channels()
        .into_iter()
        .filter(|c| c.table == table && c.valid && !c.deleted)
        .map(|c| c.channel_id)
        .max()
}

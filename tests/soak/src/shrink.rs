//! Greedy shrinking of a failing schedule, after proptest's own: one simplification at a time (drop a batch,
//! a fault or an event; plainer settings; smaller counts), kept whenever the schedule still fails.

use crate::schedule::{At, BatchPlan, CommitMode, EventKind, Fault, Schedule};

/// Every schedule one step simpler than `schedule`, the biggest steps first.
pub(crate) fn candidates(schedule: &Schedule) -> Vec<Schedule> {
    let mut out = Vec::new();
    let with = |change: &dyn Fn(&mut Schedule)| {
        let mut next = schedule.clone();
        change(&mut next);
        next
    };
    for i in (0..schedule.batches.len()).rev() {
        out.push(with(&|s| {
            s.batches.remove(i);
        }));
    }
    if schedule.table_concurrency != 1 {
        out.push(with(&|s| s.table_concurrency = 1));
    }
    if schedule.bulk_status_batch != 100 {
        out.push(with(&|s| s.bulk_status_batch = 100));
    }
    if schedule.commit != CommitMode::Immediate {
        out.push(with(&|s| s.commit = CommitMode::Immediate));
    }
    for (b, batch) in schedule.batches.iter().enumerate() {
        for f in (0..batch.faults.len()).rev() {
            out.push(with(&|s| {
                s.batches[b].faults.remove(f);
            }));
        }
        for e in (0..batch.events.len()).rev() {
            out.push(with(&|s| {
                s.batches[b].events.remove(e);
            }));
        }
        out.extend(plainer_batch(batch).into_iter().map(|plain| {
            let mut next = schedule.clone();
            next.batches[b] = plain;
            next
        }));
    }
    out
}

/// The batch with one of its settings, events or faults made plainer.
fn plainer_batch(batch: &BatchPlan) -> Vec<BatchPlan> {
    let mut out = Vec::new();
    let mut push = |change: &dyn Fn(&mut BatchPlan)| {
        let mut next = batch.clone();
        change(&mut next);
        if next != *batch {
            out.push(next);
        }
    };
    push(&|b| b.bad_line = None);
    push(&|b| b.defer_retries = false);
    push(&|b| b.missing_line = false);
    push(&|b| b.wait_secs = 0);
    push(&|b| b.flush_at = 0);
    for i in 0..batch.events.len() {
        push(&|b| b.events[i].kind = EventKind::Plain);
        push(&|b| b.events[i].table = 0);
        push(&|b| b.events[i].id = 0);
    }
    for i in 0..batch.faults.len() {
        // A death mid-upload happens only right after a call.
        if batch.faults[i].fault != Fault::KillMidUpload {
            push(&|b| b.faults[i].at = At::BeforeUpload);
        }
        if let At::AfterCall(n) | At::BeforePoll(n) = batch.faults[i].at
            && n > 1
        {
            let at = match batch.faults[i].at {
                At::AfterCall(_) => At::AfterCall(n - 1),
                _ => At::BeforePoll(n - 1),
            };
            push(&|b| b.faults[i].at = at);
        }
        let smaller = match batch.faults[i].fault {
            Fault::ServerErrors { ep, count, status } if count > 1 => Some(Fault::ServerErrors {
                ep,
                count: count - 1,
                status,
            }),
            Fault::DropResponse { ep, count, applied } if count > 1 => Some(Fault::DropResponse {
                ep,
                count: count - 1,
                applied,
            }),
            Fault::AuthDdl(n) if n > 1 => Some(Fault::AuthDdl(n - 1)),
            Fault::AuthChannel(n) if n > 1 => Some(Fault::AuthChannel(n - 1)),
            Fault::OpenInProgress(n) if n > 1 => Some(Fault::OpenInProgress(n - 1)),
            Fault::RestErrors {
                ep,
                count,
                status,
                shape,
            } if count > 1 => Some(Fault::RestErrors {
                ep,
                count: count - 1,
                status,
                shape,
            }),
            Fault::Throttle { target, count } if count > 1 => Some(Fault::Throttle {
                target,
                count: count - 1,
            }),
            Fault::RejectRows {
                target,
                first,
                count,
            } if count > 1 || first > 0 => Some(Fault::RejectRows {
                target,
                first: 0,
                count: 1,
            }),
            _ => None,
        };
        if let Some(fault) = smaller {
            push(&|b| b.faults[i].fault = fault);
        }
    }
    out
}

//! The size split's rules with exact sizes: the limit itself, one byte over, oversized events first and in
//! the overflow remainder, and mixed sequences.

mod common;

use common::{job_ids, sized};
use snowpipe_grouping::{Batch, Event, rows_array_size, split_by_size};

/// Splits events of the given row sizes (job ids 1, 2, …) and returns the job ids of the three parts.
fn check(sizes: &[usize], limit: usize) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let events: Vec<Event> = sizes
        .iter()
        .zip(1..)
        .map(|(&size, job)| sized(job, "T", size))
        .collect();
    let split = split_by_size(events, limit);
    (
        job_ids(&split.included),
        job_ids(&split.overflowed),
        job_ids(&split.oversized),
    )
}

#[test]
fn rows_array_counts_brackets_and_commas() {
    assert_eq!(rows_array_size([]), 2);
    assert_eq!(rows_array_size([10]), 12);
    assert_eq!(rows_array_size([10, 10]), 23);
    assert_eq!(rows_array_size([10, 10, 1]), 25);
}

#[test]
fn exactly_at_the_limit_fits() {
    // [r1,r2] = 1 + 10 + 1 + 10 + 1 = 23 bytes.
    assert_eq!(check(&[10, 10], 23), (vec![1, 2], vec![], vec![]));
}

#[test]
fn one_byte_over_the_limit_overflows() {
    assert_eq!(check(&[10, 10], 22), (vec![1], vec![2], vec![]));
}

#[test]
fn a_row_alone_at_the_limit_fits_and_one_byte_more_is_oversized() {
    // [r] = 12 bytes.
    assert_eq!(check(&[10], 12), (vec![1], vec![], vec![]));
    assert_eq!(check(&[10], 11), (vec![], vec![], vec![1]));
}

#[test]
fn an_oversized_first_event_is_skipped_and_the_rest_fill_in() {
    // [r2,r3] = 1 + 8 + 1 + 8 + 1 = 19.
    assert_eq!(check(&[30, 8, 8], 19), (vec![2, 3], vec![], vec![1]));
}

#[test]
fn oversized_events_in_the_overflow_remainder_stay_oversized() {
    // [r1,r2] = 19; r3 would make 28 > 20 so the overflow starts; r4 alone is 32 > 20; r5 is after the start.
    assert_eq!(
        check(&[8, 8, 8, 30, 8], 20),
        (vec![1, 2], vec![3, 5], vec![4])
    );
}

#[test]
fn once_overflowing_even_small_events_wait_to_keep_order() {
    // r2 does not fit (10 + 1 + 20 + 1 > 25), r3 would (10 + 1 + 8 + 1 = 20) but must not jump ahead.
    assert_eq!(check(&[8, 20, 8], 25), (vec![1], vec![2, 3], vec![]));
}

#[test]
fn mixed_sequence() {
    // limit 30: r1 (8) → 10; r2 (40) oversized; r3 (9) → 20; r4 (9) → 30 exactly; r5 (8) → 39 overflow;
    // r6 (29) alone 31 oversized; r7 (8) overflowed.
    assert_eq!(
        check(&[8, 40, 9, 9, 8, 29, 8], 30),
        (vec![1, 3, 4], vec![5, 7], vec![2, 6])
    );
}

#[test]
fn nothing_in_nothing_out() {
    assert_eq!(check(&[], 10), (vec![], vec![], vec![]));
}

#[test]
fn partition_recomputes_offsets_reorders_tables_and_drops_empty_ones() {
    // With a limit of 19, two rows of 8 fit ([r,r] = 19), a third does not, and a row of 30 never does.
    let batch = Batch::from_events([
        sized(9, "A", 8),
        sized(1, "B", 8),
        sized(5, "A", 30),
        sized(7, "B", 8),
        sized(8, "B", 8),
        sized(3, "C", 30),
        sized(10, "A", 8),
    ]);
    assert_eq!(
        batch
            .tables()
            .iter()
            .map(|t| (t.name(), t.offset()))
            .collect::<Vec<_>>(),
        [("C", 3), ("B", 8), ("A", 10)]
    );
    let partition = batch.partition(19);
    let included: Vec<_> = partition
        .included
        .iter()
        .map(|t| (t.name(), t.offset(), t.job_ids(), t.min_job_id()))
        .collect();
    // B's offset drops from 8 to 7 because job 8 overflowed; C uploads nothing and disappears.
    assert_eq!(
        included,
        [("B", 7, vec![1, 7], 1), ("A", 10, vec![9, 10], 9)]
    );
    assert_eq!(job_ids(&partition.overflowed), [8]);
    assert_eq!(job_ids(&partition.oversized), [3, 5]);
}

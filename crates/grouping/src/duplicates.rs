//! Counting duplicate events in a table's batch: ids that repeat.
//!
//! (Job ids at or below the channel's committed offset were counted too while offsets were job ids; offset
//! tokens no longer say anything of job ids, so that count is gone.)

use std::collections::{HashMap, HashSet};

use crate::Event;

/// The table exempt from duplicate counting: `USERS` rows are updates of one user, so repeated ids are
/// expected.
pub const DUPLICATE_EXEMPT_TABLE: &str = "USERS";

/// Whether duplicates are counted for `table` (every table but [`DUPLICATE_EXEMPT_TABLE`]).
#[must_use]
pub fn counts_duplicates(table: &str) -> bool {
    table != DUPLICATE_EXEMPT_TABLE
}

/// Duplicate events in a table's batch, reported as a metric and a warning; nothing is dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Events whose `ID` was already seen earlier in the batch (an id seen three times counts two).
    pub repeated_ids: usize,
}

/// Counts the duplicates among one table's `events`.
///
/// Ids compare as text: a string's contents, any other value's JSON text (so `"1"` and `1` are the same id).
/// Events without `ID` are not counted. Whether to count at all is the caller's call: see
/// [`counts_duplicates`].
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_grouping::{Duplicates, Event, Schema, UploadTime, count_duplicates};
/// use time::macros::datetime;
///
/// let time = UploadTime::new(datetime!(2024-01-02 03:04:05 UTC));
/// let event = |job, id: &str| {
///     let data = RawValue::from_string(format!(r#"{{"ID":"{id}"}}"#)).unwrap();
///     Event::new(job, "T", Schema::new(), &data, &time).unwrap()
/// };
/// let events = [event(-1, "a"), event(5, "b"), event(6, "a"), event(7, "c")];
/// assert_eq!(count_duplicates(&events), Duplicates { repeated_ids: 1 });
/// ```
#[must_use]
pub fn count_duplicates(events: &[Event]) -> Duplicates {
    count_by_hash(events, Event::id_hash).unwrap_or_else(|| count_by_key(events))
}

/// Counts by the hash each event's id got when it was read (`hash`), confirming every repeat on the ids
/// themselves; `None` when two different ids share a hash, for [`count_by_key`] to count instead.
///
/// Reading every id again would fetch one cache line per event from rows spread over the whole batch; the
/// hashes sit in the events, one after another.
fn count_by_hash(events: &[Event], hash: impl Fn(&Event) -> Option<u64>) -> Option<Duplicates> {
    use std::collections::hash_map::Entry;
    // The keys are hashes already: any fast hasher spreads them.
    let mut first_with: HashMap<u64, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    let mut duplicates = Duplicates::default();
    for (index, event) in events.iter().enumerate() {
        let Some(hash) = hash(event) else {
            continue;
        };
        match first_with.entry(hash) {
            Entry::Vacant(vacant) => {
                vacant.insert(index);
            }
            Entry::Occupied(first) if events[*first.get()].id_key() == event.id_key() => {
                duplicates.repeated_ids += 1;
            }
            Entry::Occupied(_) => return None,
        }
    }
    Some(duplicates)
}

/// Counts by the ids' keys themselves.
fn count_by_key(events: &[Event]) -> Duplicates {
    // Every event's id is hashed: a fast hasher, as for the columns cache.
    let mut seen =
        HashSet::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    let mut duplicates = Duplicates::default();
    for event in events {
        if let Some(id) = event.id_key()
            && !seen.insert(id)
        {
            duplicates.repeated_ids += 1;
        }
    }
    duplicates
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;
    use time::macros::datetime;

    use super::{Duplicates, count_by_hash, count_by_key, count_duplicates, counts_duplicates};
    use crate::{Event, Schema, UploadTime};

    fn event(job: i64, data: &str) -> Event {
        let time = UploadTime::new(datetime!(2024-01-02 03:04:05 UTC));
        Event::new(
            job,
            "T",
            Schema::new(),
            &RawValue::from_string(data.to_owned()).unwrap(),
            &time,
        )
        .unwrap()
    }

    #[test]
    fn users_is_the_only_exempt_table() {
        assert!(!counts_duplicates("USERS"));
        assert!(counts_duplicates("users"));
        assert!(counts_duplicates("TRACKS"));
    }

    #[test]
    fn repeated_ids_count_every_repeat_and_compare_as_text() {
        let events = [
            event(1, r#"{"ID":"a"}"#),
            event(2, r#"{"ID":"a"}"#),
            event(3, r#"{"ID":"\u0061"}"#),
            event(4, r#"{"ID":1}"#),
            event(5, r#"{"ID":"1"}"#),
            event(6, r#"{}"#),
            event(7, r#"{}"#),
        ];
        assert_eq!(count_duplicates(&events), Duplicates { repeated_ids: 3 });
    }

    #[test]
    fn ids_that_share_a_hash_are_told_apart() {
        let events = [
            event(1, r#"{"ID":"a"}"#),
            event(2, r#"{"ID":"b"}"#),
            event(3, r#"{"ID":"a"}"#),
            event(4, r#"{"ID":"\u0062"}"#),
            event(5, r#"{}"#),
        ];
        // Every id hashing alike: the hash alone would count three repeats.
        assert_eq!(count_by_hash(&events, |e| e.id_hash().map(|_| 7)), None);
        assert_eq!(count_duplicates(&events), Duplicates { repeated_ids: 2 });
        assert_eq!(count_by_key(&events), Duplicates { repeated_ids: 2 });
    }

    #[test]
    fn the_hash_taken_at_reading_is_the_hash_of_the_key() {
        for data in [
            r#"{"ID":"a\u0031"}"#,
            r#"{"ID":"a1"}"#,
            r#"{"ID":12}"#,
            r#"{"X":1}"#,
        ] {
            let e = event(1, data);
            assert_eq!(
                e.id_hash(),
                e.id_key().map(|key| crate::event::hash_id_key(&key)),
                "{data}"
            );
        }
    }
}

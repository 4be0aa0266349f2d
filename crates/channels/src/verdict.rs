//! The verdict on a segment of rows (positions `first..=last` of one epoch) from the best token known of
//! its channel: which of its rows committed, and what became of the rest. Pure: the one table
//! `docs/ARCHITECTURE.md` gives, in code.

use std::fmt;

use crate::token::{Epoch, Token};

/// Why a verdict cannot be reached. Each is counted apart, and the rows' jobs fail (they are retried): never
/// "succeeded" without proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Undecidable {
    /// Another epoch with the same ordered part: two writers opened the channel at once.
    TwoWriters,
    /// The segment's epoch is older than the token's list reaches (more openings since than it holds).
    ListTooShort,
    /// The committed token is not one this layer writes, nor a job id (written by hand, or by another
    /// writer).
    UnreadableToken,
    /// The committed token went back before an epoch this layer opened with a fence, or the channel was
    /// dropped and created anew since.
    TokenWentBack,
    /// An import entry of the scheme before tokens (offsets were job ids), judged against a token of this
    /// scheme: the old rule no longer means anything.
    LegacyEntry,
    /// The channel could not be reopened to settle rows in flight, for twice the stuck threshold.
    ReopenImpossible,
    /// A channel superseded by a reopen still committed rows after it (the sidecar's SDK may): the
    /// reopen's token is not final for the superseded epoch.
    SupersededFlushing,
}

impl Undecidable {
    /// A short label, for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TwoWriters => "two_writers",
            Self::ListTooShort => "list_too_short",
            Self::UnreadableToken => "unreadable_token",
            Self::TokenWentBack => "token_went_back",
            Self::LegacyEntry => "legacy_entry",
            Self::ReopenImpossible => "reopen_impossible",
            Self::SupersededFlushing => "superseded_flushing",
        }
    }
}

impl Undecidable {
    /// Reads a label [`Undecidable::as_str`] wrote.
    pub fn from_label(label: &str) -> Option<Self> {
        [
            Self::TwoWriters,
            Self::ListTooShort,
            Self::UnreadableToken,
            Self::TokenWentBack,
            Self::LegacyEntry,
            Self::ReopenImpossible,
            Self::SupersededFlushing,
        ]
        .into_iter()
        .find(|cause| cause.as_str() == label)
    }
}

impl fmt::Display for Undecidable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TwoWriters => "another writer opened the channel at the same time",
            Self::ListTooShort => {
                "the channel was opened more times since than its committed token remembers"
            }
            Self::UnreadableToken => "the channel's committed token is not one this manager wrote",
            Self::TokenWentBack => {
                "the channel's committed token went back (rewritten, or the channel dropped and created anew)"
            }
            Self::LegacyEntry => {
                "the import id is of the old scheme (offsets were job ids) and the channel has moved to tokens since"
            }
            Self::ReopenImpossible => {
                "the channel could not be reopened to settle its rows for twice the stuck threshold"
            }
            Self::SupersededFlushing => {
                "the channel's superseded writer still committed rows after the reopen"
            }
        })
    }
}

/// What became of the rows of a segment above those that committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Nothing: every row committed.
    Nothing,
    /// Not committed yet, and may still commit: ask again later.
    InFlight,
    /// Will never commit: the epoch ended before them.
    Lost,
    /// Cannot be told.
    Undecidable(Undecidable),
}

/// The verdict on one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentVerdict {
    /// Rows up to this position committed (`first - 1` when none did).
    pub committed_through: u64,
    /// What became of the rows after it.
    pub rest: Rest,
}

/// How far a token can be trusted for epochs newer than its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// Every opening writes a token at once (Snowflake's REST API): once an epoch opened, the committed
    /// token is of that epoch or a later one, so a token of an older epoch means it went back.
    Fenced,
    /// Openings write nothing (the sidecar): the committed token stays in an older epoch until the new
    /// one's first request commits, so rows of a newer epoch are simply not committed yet.
    Unfenced,
}

/// The verdict on positions `first..=last` of `epoch`, from `view`: the newest token known of the channel
/// (its committed token, or the opening token of a later epoch this layer opened itself).
pub fn judge(
    epoch: Epoch,
    first: u64,
    last: u64,
    view: &Token,
    fencing: Fencing,
) -> SegmentVerdict {
    judge_within(epoch, first, last, view, fencing, Undecidable::ListTooShort)
}

/// [`judge`], where an epoch older than the view's `known_since` is undecidable for `horizon`: why the view
/// knows nothing before it (its list ran out, or the opening that wrote it found a token that went back,
/// or a superseded writer still committing).
pub fn judge_within(
    epoch: Epoch,
    first: u64,
    last: u64,
    view: &Token,
    fencing: Fencing,
    horizon: Undecidable,
) -> SegmentVerdict {
    let none = first.saturating_sub(1);
    let verdict = |committed_through: u64, rest: Rest| SegmentVerdict {
        committed_through,
        rest,
    };
    let settled = |final_position: u64| {
        if final_position >= last {
            verdict(last, Rest::Nothing)
        } else {
            verdict(final_position.max(none), Rest::Lost)
        }
    };
    if view.epoch == epoch {
        return if view.position >= last {
            verdict(last, Rest::Nothing)
        } else {
            verdict(view.position.max(none), Rest::InFlight)
        };
    }
    if view.epoch.ordered == epoch.ordered {
        return verdict(none, Rest::Undecidable(Undecidable::TwoWriters));
    }
    if epoch.ordered > view.epoch.ordered {
        return match fencing {
            Fencing::Unfenced => verdict(none, Rest::InFlight),
            Fencing::Fenced => verdict(none, Rest::Undecidable(Undecidable::TokenWentBack)),
        };
    }
    match view
        .finals
        .iter()
        .find(|f| f.epoch.ordered == epoch.ordered)
    {
        Some(done) if done.epoch == epoch => settled(done.position),
        Some(_) => verdict(none, Rest::Undecidable(Undecidable::TwoWriters)),
        None if epoch.ordered >= view.known_since => verdict(none, Rest::Lost),
        None => verdict(none, Rest::Undecidable(horizon)),
    }
}

/// The rest, read at the end of the road: rows still in flight after the channel was reopened (which
/// supersedes every earlier writer) will never commit.
pub fn after_reopen(verdict: SegmentVerdict) -> SegmentVerdict {
    match verdict.rest {
        Rest::InFlight => SegmentVerdict {
            rest: Rest::Lost,
            ..verdict
        },
        _ => verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Committed, Final};

    fn epoch(ordered: u64) -> Epoch {
        Epoch { ordered, nonce: 1 }
    }

    fn token(ordered: u64, position: u64, known_since: u64, finals: &[(u64, u64)]) -> Token {
        Token {
            epoch: epoch(ordered),
            position,
            known_since,
            finals: finals
                .iter()
                .map(|&(o, p)| Final {
                    epoch: epoch(o),
                    position: p,
                })
                .collect(),
        }
    }

    /// `(segment epoch, first, last, view, fencing) → (committed through, rest)`: the verdict table.
    #[test]
    fn the_verdict_table() {
        use Rest::{InFlight, Lost, Nothing};
        let check = |e: u64, first: u64, last: u64, view: &Token, fencing, expect: (u64, Rest)| {
            let got = judge(epoch(e), first, last, view, fencing);
            assert_eq!(
                (got.committed_through, got.rest),
                expect,
                "segment {e}:{first}..={last} against {view}"
            );
        };
        let un = Fencing::Unfenced;
        // Same epoch: the position decides; the rest is in flight.
        check(5, 11, 20, &token(5, 20, 0, &[]), un, (20, Nothing));
        check(5, 11, 20, &token(5, 30, 0, &[]), un, (20, Nothing));
        check(5, 11, 20, &token(5, 15, 0, &[]), un, (15, InFlight));
        check(5, 11, 20, &token(5, 4, 0, &[]), un, (10, InFlight));
        // An earlier epoch the token lists: its final decides; the rest is lost.
        check(5, 11, 20, &token(9, 3, 0, &[(5, 20)]), un, (20, Nothing));
        check(5, 11, 20, &token(9, 3, 0, &[(5, 14)]), un, (14, Lost));
        check(5, 11, 20, &token(9, 3, 0, &[(5, 8)]), un, (10, Lost));
        // Not listed, and the list reaches it: that epoch committed nothing.
        check(5, 11, 20, &token(9, 3, 2, &[(3, 8)]), un, (10, Lost));
        // Older than the list reaches.
        check(
            5,
            11,
            20,
            &token(9, 3, 6, &[]),
            un,
            (10, Rest::Undecidable(Undecidable::ListTooShort)),
        );
        // Newer than the token: not committed yet (sidecar), or the token went back (fenced).
        check(9, 1, 4, &token(5, 20, 0, &[]), un, (0, InFlight));
        check(
            9,
            1,
            4,
            &token(5, 20, 0, &[]),
            Fencing::Fenced,
            (0, Rest::Undecidable(Undecidable::TokenWentBack)),
        );
    }

    #[test]
    fn two_writers_with_one_ordered_part_cannot_be_told_apart() {
        let other = Epoch {
            ordered: 5,
            nonce: 2,
        };
        let view = Token {
            epoch: other,
            position: 30,
            known_since: 0,
            finals: Vec::new(),
        };
        let got = judge(epoch(5), 1, 3, &view, Fencing::Unfenced);
        assert_eq!(got.rest, Rest::Undecidable(Undecidable::TwoWriters));
        let listed = Token {
            epoch: epoch(9),
            position: 1,
            known_since: 0,
            finals: vec![Final {
                epoch: other,
                position: 30,
            }],
        };
        let got = judge(epoch(5), 1, 3, &listed, Fencing::Unfenced);
        assert_eq!(got.rest, Rest::Undecidable(Undecidable::TwoWriters));
    }

    #[test]
    fn after_a_reopen_rows_in_flight_are_lost() {
        // The opening of epoch 9 read epoch 5's token at position 12: its final.
        let opening = Token::opening(epoch(9), &Committed::Token(token(5, 12, 0, &[])));
        let before = judge(epoch(5), 11, 20, &token(5, 12, 0, &[]), Fencing::Unfenced);
        assert_eq!(
            (before.committed_through, before.rest),
            (12, Rest::InFlight)
        );
        let after = judge(epoch(5), 11, 20, &opening, Fencing::Unfenced);
        assert_eq!((after.committed_through, after.rest), (12, Rest::Lost));
        assert_eq!(after_reopen(before), after);
    }
}

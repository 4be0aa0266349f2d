//! The offset tokens the channel layer writes, and how it reads the committed token back.
//!
//! Snowflake compares nothing: a channel's committed token is the end token of the last request that
//! committed, whatever it says. So the tokens say everything a later reader needs to tell which rows
//! committed, in any process, from that one token:
//!
//! - an **epoch**: one opening of the channel, named by an ordered part (microseconds since the epoch,
//!   above every epoch this writer knew of) and a random nonce, so that two writers that opened at once are
//!   told apart;
//! - a **position**: every row of an epoch has one, counted from 1; a request's token carries the
//!   position of its last row (0 for a token that labels no row, such as the one written by an open);
//! - the **finals** of earlier epochs that committed rows (their last committed position, as the opening
//!   of a later epoch found it), newest first, and **known since**: the list names every epoch from that
//!   ordered part on that committed a row, so an epoch from there on that is not listed committed nothing.
//!
//! Written as `v2.<ordered>-<nonce>.<position>.<known since>[.<ordered>-<nonce>-<final>]*`, numbers in
//! base 36: URL-safe, and never read as an integer (a rolled-back release, which took tokens for job ids,
//! cannot mistake one for a huge job id).

use std::fmt;

/// The prefix that marks this scheme's tokens.
pub const PREFIX: &str = "v2";

/// Most earlier epochs a token lists. Each costs about 25 bytes; Snowflake's limit on a token's length is
/// far above what this makes (see the closing note of the "Exact outcomes" issue).
pub const MAX_FINALS: usize = 16;

/// One opening of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch {
    /// Orders epochs: microseconds since the Unix epoch when it opened, above every epoch known then.
    pub ordered: u64,
    /// Tells apart two epochs with the same ordered part (two writers).
    pub nonce: u32,
}

impl Epoch {
    fn parse(text: &str) -> Option<Self> {
        let (ordered, nonce) = text.split_once('-')?;
        Some(Self {
            ordered: from_base36(ordered)?,
            nonce: u32::try_from(from_base36(nonce)?).ok()?,
        })
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            Base36(self.ordered),
            Base36(u64::from(self.nonce))
        )
    }
}

impl std::str::FromStr for Epoch {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| TokenError(text.to_owned()))
    }
}

impl serde::Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An earlier epoch that committed rows, and its last committed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Final {
    /// The epoch.
    pub epoch: Epoch,
    /// Its last committed position (at least 1).
    pub position: u64,
}

/// A token of this scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The epoch it was written in.
    pub epoch: Epoch,
    /// The position of the last row of the request it labels; 0 for a token that labels no row.
    pub position: u64,
    /// Every epoch with an ordered part from this one on that committed rows is in `finals`.
    pub known_since: u64,
    /// Earlier epochs that committed rows, newest first.
    pub finals: Vec<Final>,
}

/// A token that is not this scheme's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an offset token of this scheme")]
pub struct TokenError(String);

impl Token {
    /// The token an open of `epoch` writes (or would write), from the channel's committed token read in the
    /// open's own answer (or, where the backend cannot say, right after it): final for every earlier epoch,
    /// since an open supersedes every earlier writer.
    ///
    /// - nothing committed ever: every earlier epoch committed nothing, the list is complete from the start;
    /// - a token of this scheme: its epoch's final is its position (when it labels rows), then its own list;
    /// - anything else (a job id of the old scheme, a token written by hand): nothing is known of earlier
    ///   epochs, the list is complete only from this epoch on.
    ///
    /// At most [`MAX_FINALS`] are listed; dropping older ones moves `known_since` past them.
    pub fn opening(epoch: Epoch, committed: &Committed) -> Self {
        let (mut finals, mut known_since) = match committed {
            Committed::None => (Vec::new(), 0),
            Committed::Token(c) => {
                let mut finals = Vec::with_capacity(c.finals.len() + 1);
                if c.position > 0 {
                    finals.push(Final {
                        epoch: c.epoch,
                        position: c.position,
                    });
                }
                finals.extend(c.finals.iter().copied());
                (finals, c.known_since)
            }
            Committed::Legacy(_) | Committed::Unreadable(_) => (Vec::new(), epoch.ordered),
        };
        if finals.len() > MAX_FINALS {
            let newest_dropped = finals[MAX_FINALS].epoch.ordered;
            known_since = known_since.max(newest_dropped.saturating_add(1));
            finals.truncate(MAX_FINALS);
        }
        Self {
            epoch,
            position: 0,
            known_since,
            finals,
        }
    }

    /// The same token for a request whose last row has `position`.
    #[must_use]
    pub fn at(&self, position: u64) -> Self {
        Self {
            position,
            ..self.clone()
        }
    }

    /// The same knowledge, without the final of `epoch` and with nothing known of epochs up to it: what an
    /// opening may claim when `epoch` (superseded by it) may still commit rows after it.
    #[must_use]
    pub fn without_final_of(&self, epoch: Epoch) -> Self {
        let mut token = self.clone();
        token.finals.retain(|f| f.epoch != epoch);
        token.known_since = token.known_since.max(epoch.ordered.saturating_add(1));
        token
    }

    /// Reads a token of this scheme.
    ///
    /// # Errors
    /// [`TokenError`] when `text` is not one.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let error = || TokenError(text.to_owned());
        let mut parts = text.split('.');
        if parts.next() != Some(PREFIX) {
            return Err(error());
        }
        let epoch = parts.next().and_then(Epoch::parse).ok_or_else(error)?;
        let position = parts.next().and_then(from_base36).ok_or_else(error)?;
        let known_since = parts.next().and_then(from_base36).ok_or_else(error)?;
        let finals = parts
            .map(|part| {
                let (epoch, position) = part.rsplit_once('-')?;
                Some(Final {
                    epoch: Epoch::parse(epoch)?,
                    position: from_base36(position)?,
                })
            })
            .collect::<Option<Vec<Final>>>()
            .ok_or_else(error)?;
        Ok(Self {
            epoch,
            position,
            known_since,
            finals,
        })
    }

    /// The final position of `epoch` as this token lists it.
    pub fn final_of(&self, epoch: Epoch) -> Option<u64> {
        self.finals
            .iter()
            .find(|f| f.epoch == epoch)
            .map(|f| f.position)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}",
            self.epoch,
            Base36(self.position),
            Base36(self.known_since)
        )?;
        for done in &self.finals {
            write!(f, ".{}-{}", done.epoch, Base36(done.position))?;
        }
        Ok(())
    }
}

/// A channel's committed token as this layer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Nothing was ever committed.
    None,
    /// A token of this scheme.
    Token(Token),
    /// An integer: a job id, from the scheme before this one.
    Legacy(i64),
    /// Anything else: written by hand, or by some other writer.
    Unreadable(String),
}

impl Committed {
    /// Reads a committed token as a backend reports it.
    pub fn read(token: Option<&str>) -> Self {
        match token {
            None | Some("") => Self::None,
            Some(text) => match Token::parse(text) {
                Ok(token) => Self::Token(token),
                Err(_) => match text.parse::<i64>() {
                    Ok(job_id) => Self::Legacy(job_id),
                    Err(_) => Self::Unreadable(text.to_owned()),
                },
            },
        }
    }

    /// The token, when it is one of this scheme.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Self::Token(token) => Some(token),
            _ => None,
        }
    }
}

/// Writes a number in base 36 (digits then lower-case letters), without allocating.
struct Base36(u64);

impl fmt::Display for Base36 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut buffer = [0u8; 13];
        let mut at = buffer.len();
        let mut n = self.0;
        loop {
            at -= 1;
            // `n % 36` is below 36: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (n % 36) as usize;
            buffer[at] = DIGITS[digit];
            n /= 36;
            if n == 0 {
                break;
            }
        }
        // Only ASCII digits and letters were written.
        f.write_str(std::str::from_utf8(&buffer[at..]).map_err(|_| fmt::Error)?)
    }
}

fn from_base36(text: &str) -> Option<u64> {
    if text.is_empty()
        || text.len() > 13
        || !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    u64::from_str_radix(text, 36).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn epoch(ordered: u64, nonce: u32) -> Epoch {
        Epoch { ordered, nonce }
    }

    #[test]
    fn tokens_read_back_and_never_look_like_job_ids() {
        let token = Token {
            epoch: epoch(1_764_754_000_123_456, 0xbeef),
            position: 1234,
            known_since: 1_764_000_000_000_000,
            finals: vec![
                Final {
                    epoch: epoch(1_764_700_000_000_000, 7),
                    position: 99,
                },
                Final {
                    epoch: epoch(1_764_600_000_000_000, u32::MAX),
                    position: 1,
                },
            ],
        };
        let text = token.to_string();
        assert!(text.starts_with("v2."), "{text}");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "URL-safe: {text}"
        );
        assert!(text.parse::<i64>().is_err());
        assert_eq!(Token::parse(&text), Ok(token.clone()));
        assert_eq!(Committed::read(Some(&text)), Committed::Token(token));
        assert_eq!(Committed::read(Some("1017")), Committed::Legacy(1017));
        assert_eq!(Committed::read(Some("")), Committed::None);
        assert_eq!(Committed::read(None), Committed::None);
        for bad in [
            "v2",
            "v2.x",
            "v2.1-2.3",
            "v1.1-2.3.4",
            "v2.1-2.3.4.5",
            "v2.A-2.3.4",
            "v2.1-2.3.4.5-6",
        ] {
            assert!(Token::parse(bad).is_err(), "{bad}");
            assert!(
                matches!(Committed::read(Some(bad)), Committed::Unreadable(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_opening_lists_the_final_of_what_it_supersedes() {
        let e1 = epoch(10, 1);
        let e2 = epoch(20, 2);
        let first = Token::opening(e1, &Committed::None);
        assert_eq!((first.known_since, first.finals.len()), (0, 0));
        // e1 committed through position 5, then e2 opened.
        let second = Token::opening(e2, &Committed::Token(first.at(5)));
        assert_eq!(second.final_of(e1), Some(5));
        assert_eq!(second.known_since, 0);
        // e3 opened while e2 had committed nothing: e2 is not listed, e1 still is.
        let e3 = epoch(30, 3);
        let third = Token::opening(e3, &Committed::Token(second));
        assert_eq!(third.final_of(e2), None);
        assert_eq!(third.final_of(e1), Some(5));
        // A job id or a token written by hand tells nothing of earlier epochs.
        assert_eq!(Token::opening(e3, &Committed::Legacy(7)).known_since, 30);
        assert_eq!(
            Token::opening(e3, &Committed::Unreadable("x".into())).known_since,
            30
        );
    }

    #[test]
    fn the_list_is_bounded_and_known_since_moves_past_what_it_drops() {
        let mut token = Token::opening(epoch(1, 0), &Committed::None);
        for n in 2..=(MAX_FINALS as u64 + 5) {
            token = Token::opening(epoch(n, 0), &Committed::Token(token.at(n)));
        }
        assert_eq!(token.finals.len(), MAX_FINALS);
        let oldest_kept = token.finals.last().unwrap().epoch.ordered;
        assert_eq!(token.known_since, oldest_kept);
        assert_eq!(token.finals[0].epoch.ordered, MAX_FINALS as u64 + 4);
    }

    #[test]
    fn without_a_final_nothing_up_to_that_epoch_is_claimed() {
        let old = Final {
            epoch: epoch(5, 0),
            position: 3,
        };
        let superseded = Final {
            epoch: epoch(9, 0),
            position: 8,
        };
        let token = Token {
            epoch: epoch(12, 0),
            position: 0,
            known_since: 0,
            finals: vec![superseded, old],
        };
        let cautious = token.without_final_of(superseded.epoch);
        assert_eq!(cautious.final_of(superseded.epoch), None);
        assert_eq!(cautious.final_of(old.epoch), Some(3));
        assert_eq!(cautious.known_since, 10);
    }

    proptest! {
        #[test]
        fn any_token_reads_back(
            ordered in any::<u64>(), nonce in any::<u32>(), position in any::<u64>(), known in any::<u64>(),
            finals in proptest::collection::vec((any::<u64>(), any::<u32>(), 1..u64::MAX), 0..20),
        ) {
            let token = Token {
                epoch: epoch(ordered, nonce),
                position,
                known_since: known,
                finals: finals.into_iter().map(|(o, n, p)| Final { epoch: epoch(o, n), position: p }).collect(),
            };
            prop_assert_eq!(Token::parse(&token.to_string()), Ok(token));
        }
    }
}

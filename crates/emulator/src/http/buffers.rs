//! Buffers for decompressed request bodies, reused from one request to the next. A fresh buffer of a
//! few megabytes per insert cost a page fault per 4 KiB page and a pass zeroing it (std's readers
//! initialise what they read into), a good part of the emulator's time in benchmarks; a buffer kept
//! from an earlier request costs neither.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Buffers kept idle: about as many as inserts decoded at the same time.
const KEPT: usize = 4;
/// Larger buffers are freed rather than kept, so one huge body does not pin its memory for good.
const MAX_KEPT_LEN: usize = 16 << 20;

/// Idle buffers. Each is wholly initialised: its length is the room it offers; the bytes are stale.
#[derive(Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An idle buffer (the largest), or an empty one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn put(&self, buf: Vec<u8>) {
        if buf.is_empty() || buf.len() > MAX_KEPT_LEN {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(buf);
            // Largest last, so `take` hands out the one least likely to need growing.
            idle.sort_by_key(Vec::len);
        }
    }
}

/// The first `len` bytes of `buf` as `Bytes`; `buf` goes back to `pool` when they are dropped.
pub(crate) fn lend(buf: Vec<u8>, len: usize, pool: &Arc<BufferPool>) -> Bytes {
    Bytes::from_owner(Lent {
        len: len.min(buf.len()),
        buf,
        pool: Arc::clone(pool),
    })
}

struct Lent {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_buffers_come_back_when_dropped() {
        let pool = Arc::new(BufferPool::default());
        assert!(pool.take().is_empty());
        let body = lend(b"hello, world".to_vec(), 5, &pool);
        let copy = body.clone();
        drop(body);
        assert_eq!(&copy[..], b"hello");
        assert!(pool.take().is_empty(), "still lent while a copy lives");
        drop(copy);
        assert_eq!(pool.take(), b"hello, world");
        // A length past the end is cut to the buffer.
        assert_eq!(&lend(vec![1, 2], 9, &pool)[..], [1, 2]);
    }

    #[test]
    fn keeps_a_few_buffers_not_too_large_the_largest_first() {
        let pool = Arc::new(BufferPool::default());
        for n in [3, 1, 2, 5, 4] {
            drop(lend(vec![0; n], n, &pool));
        }
        drop(lend(vec![0; MAX_KEPT_LEN + 1], 1, &pool));
        drop(lend(Vec::new(), 0, &pool));
        let lens: Vec<usize> = (0..KEPT + 1).map(|_| pool.take().len()).collect();
        assert_eq!(lens, [5, 3, 2, 1, 0]);
    }
}

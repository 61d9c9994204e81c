//! The hand-over between a capture thread and the pipeline: the thread publishes every complete
//! raw frame; the pipeline always takes the newest, so it never works on a stale frame while the
//! camera keeps running, and the frames it had no time for are counted as dropped.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slot {
    frame: Vec<u8>,
    /// Frames published so far; 0: none yet.
    sequence: u64,
    /// Why the capture thread stopped.
    ended: Option<String>,
    /// What keeps frames from coming while the capture thread recovers (cleared by a frame).
    trouble: Option<String>,
    /// The consumer is gone: the capture thread should stop.
    closed: bool,
}

type Shared = Arc<(Mutex<Slot>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Slot> {
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// The capture thread's end.
pub struct Publisher(Shared);

/// The pipeline's end.
pub struct Newest {
    shared: Shared,
    /// The frame taken last (swapped with the slot's buffer, so no copy and no allocation).
    frame: Vec<u8>,
    consumed: u64,
    dropped: u64,
}

pub fn channel() -> (Publisher, Newest) {
    let shared: Shared = Arc::default();
    (Publisher(Arc::clone(&shared)), Newest { shared, frame: Vec::new(), consumed: 0, dropped: 0 })
}

impl Publisher {
    /// Publish the frame in `buf`, taking the slot's old buffer in exchange.
    pub fn publish_swap(&self, buf: &mut Vec<u8>) {
        let mut slot = lock(&self.0);
        std::mem::swap(&mut slot.frame, buf);
        slot.sequence += 1;
        slot.trouble = None;
        self.0.1.notify_all();
    }

    /// Publish a copy of `data` (a driver buffer that must be handed back).
    pub fn publish_copy(&self, data: &[u8]) {
        let mut slot = lock(&self.0);
        slot.frame.clear();
        slot.frame.extend_from_slice(data);
        slot.sequence += 1;
        slot.trouble = None;
        self.0.1.notify_all();
    }

    /// The stream is over; the consumer's next wait reports `why`.
    pub fn end(&self, why: String) {
        lock(&self.0).ended = Some(why);
        self.0.1.notify_all();
    }

    /// Frames stopped for `why` and the thread is recovering; a consumer that times out says so.
    pub fn report(&self, why: String) {
        lock(&self.0).trouble = Some(why);
    }

    /// Whether the consumer has gone (the thread should stop).
    pub fn closed(&self) -> bool {
        lock(&self.0).closed
    }
}

impl Newest {
    /// Block until a frame newer than the last one taken is published (at most `timeout`), and
    /// take it. `Err` says why there is none: the stream ended, or the timeout passed.
    pub fn wait(&mut self, timeout: Duration) -> Result<&[u8], String> {
        let deadline = Instant::now() + timeout;
        let mut slot = lock(&self.shared);
        while slot.sequence == self.consumed {
            if let Some(why) = &slot.ended {
                return Err(format!("{why} (after {} frames)", slot.sequence));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let trouble = slot.trouble.as_deref().map(|t| format!(": {t}")).unwrap_or_default();
                return Err(format!("no frame within {} ms{trouble}", timeout.as_millis()));
            }
            slot = self.shared.1.wait_timeout(slot, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        self.dropped += slot.sequence - self.consumed - 1;
        self.consumed = slot.sequence;
        std::mem::swap(&mut self.frame, &mut slot.frame);
        Ok(&self.frame)
    }

    /// Frames published that were never taken.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn reset_dropped(&mut self) {
        self.dropped = 0;
    }
}

impl Drop for Newest {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_gets_the_newest_frame_and_counts_the_rest_as_dropped() {
        let (publisher, mut newest) = channel();
        for i in 1..=3u8 {
            publisher.publish_copy(&[i; 4]);
        }
        assert_eq!(newest.wait(Duration::from_millis(10)).unwrap(), &[3; 4]);
        assert_eq!(newest.dropped(), 2);
        assert!(newest.wait(Duration::from_millis(10)).unwrap_err().contains("no frame within"));
        publisher.report("the helper died".into());
        assert!(newest.wait(Duration::from_millis(10)).unwrap_err().ends_with("ms: the helper died"));
        publisher.publish_swap(&mut vec![9; 2]);
        publisher.end("unplugged".into());
        assert_eq!(newest.wait(Duration::from_millis(10)).unwrap(), &[9; 2]);
        assert!(newest.wait(Duration::from_millis(10)).unwrap_err().starts_with("unplugged (after 4 frames)"));
        drop(newest);
        assert!(publisher.closed());
    }
}

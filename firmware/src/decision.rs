//! From embeddings to a decision: best cosine similarity per enrolled person, K-of-N voting
//! over the frames of one attempt, and a lockout with growing back-off after repeated failures.

use crate::embed::cosine;
use crate::templates::Person;
use serde::{Deserialize, Serialize};

/// Most frames a vote window may span.
pub const MAX_WINDOW: usize = 16;

#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Index of the best person in the template store.
    pub person: usize,
    pub score: f32,
}

/// The enrolled person most similar to `embedding` (max over their templates).
pub fn best_match(people: &[Person], embedding: &[f32]) -> Option<Match> {
    people
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.templates.iter().map(|t| cosine(t, embedding)).reduce(f32::max).map(|s| Match { person: i, score: s }))
        .max_by(|a, b| a.score.total_cmp(&b.score))
}

/// Per-frame outcome fed to the voter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrameVote {
    /// The frame's face matched this person above the threshold.
    Accept(usize),
    /// A face was seen but matched nobody.
    Reject,
}

/// K-of-N voting over the most recent frames of one attempt.
pub struct Voter {
    votes: usize,
    window: usize,
    recent: heapless::Deque<FrameVote, MAX_WINDOW>,
}

impl Voter {
    pub fn new(votes: usize, window: usize) -> Self {
        Self { votes, window: window.clamp(1, MAX_WINDOW), recent: heapless::Deque::new() }
    }

    pub fn reset(&mut self) {
        self.recent.clear();
    }

    /// Record a frame; returns the person once `votes` of the last `window` frames agree.
    pub fn push(&mut self, vote: FrameVote) -> Option<usize> {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        let _ = self.recent.push_back(vote);
        let FrameVote::Accept(person) = vote else { return None };
        let agreeing = self.recent.iter().filter(|v| **v == FrameVote::Accept(person)).count();
        (agreeing >= self.votes).then_some(person)
    }

    pub fn frames(&self) -> usize {
        self.recent.len()
    }
}

/// Failed-attempt counter with exponential back-off, persisted so a restart does not reset it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lockout {
    pub consecutive_failures: u32,
    /// How many lockouts in a row have been imposed (each doubles the next).
    pub lockouts: u32,
    /// Unix seconds until which attempts are refused.
    pub locked_until: u64,
}

impl Lockout {
    pub fn is_locked(&self, now: u64) -> bool {
        now < self.locked_until
    }

    /// Seconds left, 0 when not locked.
    pub fn remaining(&self, now: u64) -> u64 {
        self.locked_until.saturating_sub(now)
    }

    pub fn record_success(&mut self) {
        *self = Self::default();
    }

    /// Count a failed attempt; returns the lockout length when this failure triggers one.
    pub fn record_failure(&mut self, now: u64, cfg: &crate::config::LockoutConfig) -> Option<u64> {
        self.consecutive_failures += 1;
        if self.consecutive_failures < cfg.max_failures {
            return None;
        }
        let seconds = cfg.base_seconds.saturating_mul(1u64 << self.lockouts.min(20)).min(cfg.max_seconds);
        self.lockouts += 1;
        self.consecutive_failures = 0;
        self.locked_until = now + seconds;
        Some(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LockoutConfig;

    #[test]
    fn best_match_takes_the_best_template_of_the_best_person() {
        let people = vec![
            Person { name: "a".into(), templates: vec![vec![1.0, 0.0], vec![0.0, 1.0]], enrolled_at: 0 },
            Person { name: "b".into(), templates: vec![vec![0.6, 0.8]], enrolled_at: 0 },
        ];
        let m = best_match(&people, &[0.0, 1.0]).unwrap();
        assert_eq!(m, Match { person: 0, score: 1.0 });
        assert_eq!(best_match(&[], &[1.0]), None);
    }

    #[test]
    fn two_of_three_frames_must_agree_on_the_same_person() {
        let mut v = Voter::new(2, 3);
        assert_eq!(v.push(FrameVote::Accept(1)), None);
        assert_eq!(v.push(FrameVote::Accept(2)), None);
        assert_eq!(v.push(FrameVote::Reject), None);
        // The first Accept(1) has left the window: one vote is not enough.
        assert_eq!(v.push(FrameVote::Accept(1)), None);
        assert_eq!(v.push(FrameVote::Accept(1)), Some(1));
    }

    #[test]
    fn five_failures_lock_out_with_doubling_capped_back_off() {
        let cfg = LockoutConfig { max_failures: 5, base_seconds: 30, max_seconds: 100 };
        let mut l = Lockout::default();
        for _ in 0..4 {
            assert_eq!(l.record_failure(1000, &cfg), None);
        }
        assert_eq!(l.record_failure(1000, &cfg), Some(30));
        assert!(l.is_locked(1029) && !l.is_locked(1030));
        for _ in 0..4 {
            l.record_failure(2000, &cfg);
        }
        assert_eq!(l.record_failure(2000, &cfg), Some(60));
        for _ in 0..5 {
            l.record_failure(3000, &cfg);
        }
        assert_eq!(l.locked_until, 3100, "capped at max_seconds");
        l.record_success();
        assert_eq!(l, Lockout::default());
    }
}

//! The presentation-attack evaluation behind `faceunlock liveness-eval`: generated live attempts
//! (a head turning as prompted) and attacks (a print or a screen of the same person, moved and
//! tilted or held still) go through the detector and the liveness check; an attempt passes the
//! check when its verdict is [`Verdict::Live`].

use crate::config::LivenessConfig;
use crate::liveness::{Assessment, Track, Verdict};
use crate::pipeline::{FaceOutcome, Pipeline, PipelineError, StageCosts};
use faceunlock_data::synth::Generator;
use faceunlock_data::synth::attack::{Attempt, Presentation};
use serde::Serialize;
use std::ops::Range;

#[derive(Clone, Debug, Serialize)]
pub struct ScoredAttempt {
    pub person: u32,
    pub presentation: Presentation,
    pub still: bool,
    /// Degrees the head or the picture turned.
    pub turn: f32,
    /// One per embedded face, in frame order.
    pub assessments: Vec<Assessment>,
}

impl ScoredAttempt {
    /// The verdict a verification reaches: the first face judged live or flat decides.
    pub fn verdict(&self, cfg: &LivenessConfig) -> Verdict {
        self.assessments.iter().fold(Verdict::default(), |judged, a| judged.or(a.verdict(cfg)))
    }

    pub fn passes(&self, cfg: &LivenessConfig) -> bool {
        self.verdict(cfg) == Verdict::Live
    }

    /// The row of the results table this attempt counts in.
    pub fn kind(&self) -> &'static str {
        match (self.presentation, self.still) {
            (Presentation::Live, _) => "live, head turning",
            (Presentation::Print, false) => "print, moved and tilted",
            (Presentation::Print, true) => "print, held still",
            (Presentation::Screen, false) => "screen, moved and tilted",
            (Presentation::Screen, true) => "screen, held still",
        }
    }
}

/// Run `attempt` through the pipeline as a verification would, putting each embedded face into
/// the liveness track and keeping every assessment.
pub fn score(pipeline: &mut Pipeline, person: u32, attempt: &Attempt) -> Result<ScoredAttempt, PipelineError> {
    let mut track = Track::default();
    let mut assessments = Vec::with_capacity(attempt.frames.len());
    for frame in &attempt.frames {
        if let FaceOutcome::Embedded { .. } = pipeline.process(&frame.image, &mut StageCosts::default())? {
            assessments.push(track.push(pipeline.last_crop()));
        }
    }
    Ok(ScoredAttempt { person, presentation: attempt.presentation, still: attempt.still, turn: attempt.turn, assessments })
}

/// One live attempt and one attack for each person of `people`.
pub fn score_people(pipeline: &mut Pipeline, g: &Generator, people: Range<u32>, mut progress: impl FnMut(u32)) -> Result<Vec<ScoredAttempt>, PipelineError> {
    let mut out = Vec::with_capacity(2 * people.len());
    for person in people {
        out.push(score(pipeline, person, &g.live_attempt(person))?);
        out.push(score(pipeline, person, &g.attack_attempt(person))?);
        progress(person);
    }
    Ok(out)
}

/// How many attempts of one kind there were and how many passed the check.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Count {
    pub kind: &'static str,
    pub attempts: usize,
    pub passed: usize,
    /// Attempts with a face in fewer than two frames (they cannot pass).
    pub undetected: usize,
}

impl Count {
    pub fn rate(&self) -> f64 {
        self.passed as f64 / self.attempts.max(1) as f64
    }
}

/// Counts per kind (live first, then each attack), and all attacks together.
pub fn counts(scored: &[ScoredAttempt], cfg: &LivenessConfig) -> (Vec<Count>, Count) {
    let mut kinds: Vec<Count> = Vec::new();
    let mut attacks = Count { kind: "all attacks", ..Count::default() };
    for s in scored {
        let i = kinds.iter().position(|c| c.kind == s.kind()).unwrap_or_else(|| {
            kinds.push(Count { kind: s.kind(), ..Count::default() });
            kinds.len() - 1
        });
        for c in [Some(&mut kinds[i]), (s.presentation != Presentation::Live).then_some(&mut attacks)].into_iter().flatten() {
            c.attempts += 1;
            c.passed += usize::from(s.passes(cfg));
            c.undetected += usize::from(s.assessments.len() < 2);
        }
    }
    kinds.sort_by_key(|c| (c.kind != "live, head turning", c.kind));
    (kinds, attacks)
}

/// The results as a Markdown table: live rejection and attack acceptance, over all attempts and
/// over those that reached the check (a face embedded in at least two frames).
pub fn table(scored: &[ScoredAttempt], cfg: &LivenessConfig) -> String {
    let (kinds, attacks) = counts(scored, cfg);
    let mut s = String::from("| attempts | n | reached the check | passed | rate, all | rate, reached |\n|---|---:|---:|---:|---:|---:|\n");
    for c in kinds.iter().chain([&attacks]) {
        let live = c.kind.starts_with("live");
        let reached = c.attempts - c.undetected;
        let rate = |n: usize| {
            let passed = c.passed as f64 / n.max(1) as f64;
            100.0 * if live { 1.0 - passed } else { passed }
        };
        let what = if live { "rejected" } else { "accepted" };
        s += &format!("| {} | {} | {reached} | {} | {what} {:.1} % | {what} {:.1} % |\n", c.kind, c.attempts, c.passed, rate(c.attempts), rate(reached));
    }
    s
}

/// Live rejection and attack acceptance at each `min_parallax` of `thresholds`.
pub fn sweep(scored: &[ScoredAttempt], cfg: &LivenessConfig, thresholds: &[f32]) -> String {
    let mut s = String::from("| min_parallax | live rejected | attacks accepted |\n|---:|---:|---:|\n");
    for &t in thresholds {
        let at = LivenessConfig { min_parallax: t, ..cfg.clone() };
        let (kinds, attacks) = counts(scored, &at);
        let live = kinds.iter().find(|c| c.kind.starts_with("live")).cloned().unwrap_or_default();
        s += &format!("| {t:.4} | {:.1} % | {:.1} % |\n", 100.0 * (1.0 - live.rate()), 100.0 * attacks.rate());
    }
    s
}

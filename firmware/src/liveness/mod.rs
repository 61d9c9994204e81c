//! Presentation-attack check over the frames of one attempt: a real head turning moves its
//! surface in a way no flat object can, while a photo or a screen, however it is held and tilted,
//! moves from frame to frame by one plane homography.
//!
//! Each face is first aligned to the canonical crop by the similarity of its 5 landmarks (which
//! keeps a plane a plane). Points on a grid over the inner face are then tracked ([`flow`]) from
//! the attempt's first crop to its latest, and two models are fitted to the tracks: a similarity
//! (the face only slid, turned in the image plane or changed size: nothing to judge) and a
//! homography (a plane seen from two viewpoints). The part of the homography's residual that a
//! face's relief explains is the *parallax*: the nose and cheeks leaving the plane of the eyes and
//! mouth. A head shows it once it turns a few degrees; a picture does not. Both numbers are in
//! inter-ocular distances.

pub mod flow;

use crate::config::LivenessConfig;
use faceunlock_core::geometry::{CropSpec, Landmarks5, Similarity};
use faceunlock_core::homography::Homography;
use flow::Pyramid;
use image::RgbImage;
use serde::Serialize;

/// Fewest tracked points a judgement needs.
pub const MIN_TRACKED: usize = 16;
/// Grid spacing of the tracked points, in inter-ocular distances.
const GRID_STEP: f32 = 1.0 / 8.0;

/// What the first and the latest face of an attempt show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Assessment {
    /// Faces seen so far in the attempt.
    pub frames: usize,
    /// Points tracked from the first face to the latest.
    pub tracked: usize,
    /// RMS deformation beyond a similarity, inter-ocular distances.
    pub motion: f32,
    /// RMS of the best homography's residual explained by a face's relief, inter-ocular
    /// distances.
    pub parallax: f32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The face left every plane: a head.
    Live,
    /// The face moved enough, yet stayed on one plane: a picture.
    Flat,
    /// Too little motion, or too few tracked points, to tell: ask for a head turn.
    #[default]
    Undecided,
}

impl Verdict {
    /// The judgement of a sequence of faces: the first decisive verdict stands, later faces
    /// only decide while it is still undecided.
    pub fn or(self, next: Verdict) -> Verdict {
        if self == Verdict::Undecided { next } else { self }
    }
}

impl Assessment {
    pub fn verdict(&self, cfg: &LivenessConfig) -> Verdict {
        if self.tracked < MIN_TRACKED {
            Verdict::Undecided
        } else if self.parallax >= cfg.min_parallax {
            Verdict::Live
        } else if self.motion >= cfg.min_motion {
            Verdict::Flat
        } else {
            Verdict::Undecided
        }
    }
}

/// A grid over the inner face of a crop whose landmarks sit at `template`, into `points`: from a
/// little outside the eyes to just below the mouth.
fn face_points(template: &Landmarks5, points: &mut Vec<[f32; 2]>) {
    let [le, re, _, lm, rm] = template.0;
    let iod = template.inter_ocular();
    let (x0, x1) = (le[0] - 0.35 * iod, re[0] + 0.35 * iod);
    let (y0, y1) = ((le[1] + re[1]) / 2.0 - 0.35 * iod, (lm[1] + rm[1]) / 2.0 + 0.2 * iod);
    let step = GRID_STEP * iod;
    let columns = ((x1 - x0) / step) as usize + 1;
    let rows = ((y1 - y0) / step) as usize + 1;
    points.clear();
    points.extend((0..rows).flat_map(|r| (0..columns).map(move |c| [x0 + c as f32 * step, y0 + r as f32 * step])));
}

/// How far a face's surface stands out of its plane at `p` (crop pixels), in inter-ocular
/// distances: the nose ridge and tip in front, the cheeks curving back towards the sides.
fn face_relief(template: &Landmarks5, p: [f32; 2]) -> f32 {
    let [le, re, nose, ..] = template.0;
    let iod = template.inter_ocular();
    let u = (p[0] - nose[0]) / iod;
    let eyes_y = (le[1] + re[1]) / 2.0;
    // Along the ridge, 0 at (and above) the eyes and 1 at (and below) the tip.
    let along = ((p[1] - eyes_y) / (nose[1] - eyes_y)).clamp(0.0, 1.0);
    let below_tip = ((p[1] - nose[1]) / iod).max(0.0);
    let nose_height = 0.45 * along * (-(below_tip / 0.15).powi(2)).exp();
    nose_height * (-(u / (0.12 + 0.1 * along)).powi(2)).exp() - 0.6 * u * u
}

/// The parallax a head's relief explains: the residual field `r(p)` regressed on the relief
/// `d(p)` (with its planar part, which the homography absorbs, taken out of `relief` in place),
/// `r ≈ v·d`, reported as the RMS of `v·d`. Tracking noise and glare do not follow a face's relief
/// and average out.
fn relief_parallax(points: &[[f32; 2]], relief: &mut [f32], residuals: &[[f32; 2]]) -> f32 {
    // Remove the affine part of d: least squares on [1, x, y].
    let Some(plane) = affine_fit(points, relief) else { return 0.0 };
    relief.iter_mut().zip(points).for_each(|(r, p)| *r -= plane[0] + plane[1] * p[0] + plane[2] * p[1]);
    let d = &*relief;
    let dd: f32 = d.iter().map(|v| v * v).sum();
    if dd <= 1e-9 {
        return 0.0;
    }
    let v = [0, 1].map(|k| d.iter().zip(residuals).map(|(di, r)| di * r[k]).sum::<f32>() / dd);
    v[0].hypot(v[1]) * (dd / d.len() as f32).sqrt()
}

/// Least-squares `[a, b, c]` with `values ≈ a + b·x + c·y`.
fn affine_fit(points: &[[f32; 2]], values: &[f32]) -> Option<[f32; 3]> {
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for (p, v) in points.iter().zip(values) {
        let row = [1.0, f64::from(p[0]), f64::from(p[1])];
        for i in 0..3 {
            atb[i] += row[i] * f64::from(*v);
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
        }
    }
    faceunlock_core::homography::solve(ata, atb).map(|x| x.map(|v| v as f32))
}

/// Root-mean-square distance between `map(from)` and `to`.
fn rms(from: &[[f32; 2]], to: &[[f32; 2]], map: impl Fn([f32; 2]) -> [f32; 2]) -> f32 {
    let sum: f32 = from.iter().zip(to).map(|(p, q)| {
        let m = map(*p);
        (m[0] - q[0]).powi(2) + (m[1] - q[1]).powi(2)
    }).sum();
    (sum / from.len().max(1) as f32).sqrt()
}

/// The buffers an assessment works in, kept from frame to frame: a warm track allocates nothing.
#[derive(Default)]
struct Workspace {
    points: Vec<[f32; 2]>,
    coarse: Vec<[f32; 2]>,
    /// Where the tracked points started, and where they ended.
    from: Vec<[f32; 2]>,
    to: Vec<[f32; 2]>,
    residuals: Vec<[f32; 2]>,
    relief: Vec<f32>,
    /// The latest face with the first pass's plane motion taken out.
    warped: Pyramid,
}

impl Workspace {
    /// Track the inner face from `first` to `last` (aligned crops of the same size) and fit both
    /// models to the tracks.
    fn assess(&mut self, first: &Pyramid, last: &Pyramid, frames: usize) -> Assessment {
        let template = CropSpec::arcface(first.size()[0] as u32).template;
        let scale = template.inter_ocular();
        face_points(&template, &mut self.points);
        self.make_room(self.points.len());
        let unjudged = |tracked| Assessment { frames, tracked, ..Assessment::default() };
        // First pass, on every third point: the plane that best explains the motion.
        self.coarse.clear();
        self.coarse.extend(self.points.iter().step_by(3));
        flow::track(first, last, &self.coarse, true, &mut self.from, &mut self.to);
        let Some(plane) = (self.from.len() >= MIN_TRACKED / 2).then(|| Homography::fit(&self.from, &self.to)).flatten() else { return unjudged(self.from.len()) };
        // Second pass on the latest face with that plane's motion taken out: what is left is
        // small, so the windows are compared undistorted and only the parallax remains.
        self.warped.fill_warped(last, &plane);
        flow::track(first, &self.warped, &self.points, true, &mut self.from, &mut self.to);
        self.to.iter_mut().for_each(|p| *p = plane.apply(*p));
        let (from, to) = (&self.from, &self.to);
        if from.len() < MIN_TRACKED {
            return unjudged(from.len());
        }
        let (Some(similarity), Some(plane)) = (Similarity::fit(from, to), Homography::fit(from, to)) else { return unjudged(from.len()) };
        self.residuals.clear();
        self.residuals.extend(from.iter().zip(to).map(|(p, q)| {
            let m = plane.apply(*p);
            [q[0] - m[0], q[1] - m[1]]
        }));
        self.relief.clear();
        self.relief.extend(from.iter().map(|p| face_relief(&template, *p)));
        Assessment {
            motion: rms(from, to, |p| similarity.apply(p)) / scale,
            parallax: relief_parallax(from, &mut self.relief, &self.residuals) / scale,
            ..unjudged(from.len())
        }
    }

    /// Empty buffers with room for `points` tracks each, so no later frame grows one.
    fn make_room(&mut self, points: usize) {
        for v in [&mut self.coarse, &mut self.from, &mut self.to, &mut self.residuals] {
            v.clear();
            v.reserve(points);
        }
        self.relief.clear();
        self.relief.reserve(points);
    }
}

/// The faces of one attempt: the first one's pyramid, compared with each later face. Its buffers
/// are kept across faces and attempts, so once warm it allocates nothing.
#[derive(Default)]
pub struct Track {
    first: Pyramid,
    latest: Pyramid,
    /// Faces in the attempt so far (0: none yet, `first` is stale).
    frames: usize,
    work: Workspace,
}

impl Track {
    /// Add the aligned crop of the attempt's latest face and compare it with the first.
    pub fn push(&mut self, crop: &RgbImage) -> Assessment {
        self.frames += 1;
        if self.frames > 1 && self.first.size() == [crop.width() as usize, crop.height() as usize] {
            self.latest.fill(crop);
            return self.work.assess(&self.first, &self.latest, self.frames);
        }
        self.first.fill(crop);
        self.frames = 1;
        Assessment { frames: 1, ..Assessment::default() }
    }

    /// Start a new attempt (the buffers stay).
    pub fn clear(&mut self) {
        self.frames = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_core::align::Aligner;
    use faceunlock_data::synth::Generator;
    use faceunlock_data::synth::attack::Attempt;

    /// The attempt's verdict: its faces aligned on their true landmarks, pushed in order until
    /// one is judged.
    fn judge(attempt: &Attempt) -> (Verdict, Assessment) {
        let cfg = LivenessConfig::default();
        let mut aligner = Aligner::new(CropSpec::arcface(128));
        let mut track = Track::default();
        let mut last = (Verdict::Undecided, Assessment::default());
        for frame in &attempt.frames {
            let a = track.push(aligner.align(&frame.image, &frame.landmarks).unwrap());
            last = (a.verdict(&cfg), a);
            if last.0 != Verdict::Undecided {
                break;
            }
        }
        last
    }

    #[test]
    fn a_turning_head_is_live_and_a_picture_is_not() {
        let g = Generator::new(21);
        for person in 0..4 {
            let live = judge(&g.live_attempt(person));
            assert_eq!(live.0, Verdict::Live, "person {person}: {live:?}");
            let attack = g.attack_attempt(person);
            let judged = judge(&attack);
            assert_ne!(judged.0, Verdict::Live, "person {person}, {:?} still {}: {judged:?}", attack.presentation, attack.still);
        }
    }

    #[test]
    fn one_face_or_a_blank_crop_cannot_be_judged() {
        let cfg = LivenessConfig::default();
        let mut track = Track::default();
        let g = Generator::new(3);
        let frame = &g.live_attempt(0).frames[0];
        let crop = Aligner::new(CropSpec::arcface(128)).align(&frame.image, &frame.landmarks).unwrap().clone();
        assert_eq!(track.push(&crop).verdict(&cfg), Verdict::Undecided);
        // The same face again: tracked, but it has not moved.
        let same = track.push(&crop);
        assert_eq!(same.verdict(&cfg), Verdict::Undecided, "{same:?}");
        assert!(same.tracked >= MIN_TRACKED && same.motion < 1e-3, "{same:?}");
        let blank = RgbImage::from_pixel(128, 128, image::Rgb([100, 100, 100]));
        let none = track.push(&blank);
        assert_eq!((none.verdict(&cfg), none.tracked), (Verdict::Undecided, 0));
        track.clear();
        assert_eq!(track.push(&blank).frames, 1);
    }

    #[test]
    fn config_problems_name_the_key() {
        let mut cfg = crate::config::Config::default();
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        cfg.liveness.min_parallax = 0.0;
        assert!(cfg.problems().iter().any(|p| p.starts_with("liveness.min_parallax = 0")), "{:?}", cfg.problems());
    }
}

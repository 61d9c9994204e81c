//! The synthetic face generator: identities and views drawn deterministically from a seed,
//! rendered by ray casting with occlusion-correct 14-class labels, face boxes and 5 landmarks.

pub mod attack;
mod identity;
mod math;
mod render;
mod scene;
mod view;
pub mod writer;

pub use identity::{FacialHairStyle, HairStyle, Identity};
pub use render::Rendered;
pub use view::{Occluder, View};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Bumped whenever the same seed would render different pixels.
pub const GENERATOR_VERSION: u32 = 1;

/// Images are square, this many pixels on a side.
pub const DEFAULT_SIZE: u32 = 256;

/// Deterministic source of people and views: `(seed, person, view)` always gives the same image.
#[derive(Clone, Copy, Debug)]
pub struct Generator {
    pub seed: u64,
    pub size: u32,
    /// Fraction of sampled views that carry an occluder.
    pub occlusion_rate: f64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self { seed, size: DEFAULT_SIZE, occlusion_rate: 0.15 }
    }

    fn rng(&self, stream: u64, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        rng.set_word_pos(index as u128 * 1024);
        rng
    }

    pub fn identity(&self, person: u32) -> Identity {
        Identity::sample(&mut self.rng(1, person as u64))
    }

    /// The `index`-th random view of `person`.
    pub fn view(&self, person: u32, index: u32) -> View {
        View::sample(&mut self.rng(2 + person as u64, index as u64), self.occlusion_rate)
    }

    pub fn render(&self, identity: &Identity, view: &View) -> Rendered {
        render::render(identity, view, &scene::Scene::build(identity, view), self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::FaceClass;

    fn present(r: &Rendered, c: FaceClass) -> bool {
        r.mask.pixels().any(|p| p.0[0] == c as u8)
    }

    #[test]
    fn a_frontal_face_shows_both_eyes_and_its_landmarks_are_ordered() {
        let g = Generator::new(3);
        let r = g.render(&g.identity(0), &View::frontal());
        for c in [FaceClass::Skin, FaceClass::LeftEye, FaceClass::RightEye, FaceClass::Nose, FaceClass::Lips] {
            assert!(present(&r, c), "{c:?} missing in a frontal view");
        }
        let [le, re, nose, lm, rm] = r.landmarks.0;
        assert!(le[0] < nose[0] && nose[0] < re[0] && lm[0] < rm[0]);
        assert!(le[1] < nose[1] && nose[1] < lm[1]);
        assert_eq!(r.visible, [true; 5]);
        let mask_at = |p: [f32; 2]| r.mask.get_pixel(p[0] as u32, p[1] as u32).0[0];
        assert_eq!(mask_at(le), FaceClass::LeftEye as u8);
        assert_eq!(mask_at(re), FaceClass::RightEye as u8);
    }

    #[test]
    fn a_profile_labels_only_one_eye_and_one_ear() {
        let g = Generator::new(3);
        for person in 0..4 {
            let id = g.identity(person);
            for yaw in [-90.0, 90.0] {
                let r = g.render(&id, &View::posed(yaw, 0.0, 0.0));
                let eyes = [FaceClass::LeftEye, FaceClass::RightEye].map(|c| present(&r, c));
                let ears = [FaceClass::LeftEar, FaceClass::RightEar].map(|c| present(&r, c));
                assert!(eyes[0] != eyes[1], "person {person} yaw {yaw}: eyes visible {eyes:?}");
                assert!(!(ears[0] && ears[1]), "person {person} yaw {yaw}: both ears {ears:?}");
                // The visible eye and the visible ear sit on the same side of the head.
                if ears[0] || ears[1] {
                    assert_eq!(eyes, ears, "person {person} yaw {yaw}");
                }
            }
        }
    }

    #[test]
    fn a_mask_hides_the_lips() {
        let g = Generator::new(3);
        let id = g.identity(1);
        let bare = g.render(&id, &View::frontal());
        let masked = g.render(&id, &View { occluder: Some(Occluder::Mask), ..View::frontal() });
        assert!(present(&bare, FaceClass::Lips));
        assert!(!present(&masked, FaceClass::Lips));
        assert!(!masked.visible[3] && !masked.visible[4], "mouth corners are hidden: {:?}", masked.visible);
    }

    #[test]
    fn the_same_seed_gives_the_same_pixels_and_another_seed_does_not() {
        let a = Generator::new(11);
        let b = Generator::new(11);
        let c = Generator::new(12);
        let ra = a.render(&a.identity(5), &a.view(5, 7));
        let rb = b.render(&b.identity(5), &b.view(5, 7));
        let rc = c.render(&c.identity(5), &c.view(5, 7));
        assert_eq!(ra.image, rb.image);
        assert_eq!(ra.mask, rb.mask);
        assert_ne!(ra.image, rc.image);
    }
}

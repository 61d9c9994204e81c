//! A view: everything about one picture of an identity that is not the identity itself: head
//! pose, light, background, framing, expression and occluders.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Occluder {
    /// A cloth mask over nose and mouth.
    Mask,
    /// A hand held in front of part of the face.
    Hand,
    /// A peaked cap over the forehead.
    Cap,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// Degrees; positive yaw turns the face towards the image's right.
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    /// Unit vector towards the light, camera frame (x right, y up, z towards the camera).
    pub light: [f32; 3],
    pub light_intensity: f32,
    pub ambient: f32,
    /// Face height as a fraction of the image height.
    pub scale: f32,
    /// Head centre offset from the image centre, as a fraction of the image size.
    pub offset: [f32; 2],
    pub mouth_open: f32,
    pub occluder: Option<Occluder>,
    pub occluder_colour: [f32; 3],
    /// Where a hand sits on the face (head units).
    pub hand_at: [f32; 2],
    pub background_seed: u32,
}

impl View {
    /// A frontal, evenly lit, centred, unoccluded view: what enrolment asks for.
    pub fn frontal() -> Self {
        Self {
            yaw: 0.0,
            pitch: 0.0,
            roll: 0.0,
            light: [0.2, 0.3, 0.93],
            light_intensity: 0.8,
            ambient: 0.35,
            scale: 0.5,
            offset: [0.0, 0.0],
            mouth_open: 0.0,
            occluder: None,
            occluder_colour: [0.3, 0.5, 0.8],
            hand_at: [0.3, -0.5],
            background_seed: 1,
        }
    }

    /// The frontal view turned to a pose.
    pub fn posed(yaw: f32, pitch: f32, roll: f32) -> Self {
        Self { yaw, pitch, roll, ..Self::frontal() }
    }

    /// A random view over the full pose range: yaw ±90°, pitch ±45°, roll ±20°.
    pub fn sample<R: Rng>(rng: &mut R, occlusion_rate: f64) -> Self {
        let occluder = rng
            .random_bool(occlusion_rate)
            .then(|| [Occluder::Mask, Occluder::Hand, Occluder::Cap][rng.random_range(0..3)]);
        let az = rng.random_range(-1.2f32..1.2);
        let el = rng.random_range(-0.5f32..0.9);
        Self {
            yaw: rng.random_range(-90.0..=90.0),
            pitch: rng.random_range(-45.0..=45.0),
            roll: rng.random_range(-20.0..=20.0),
            light: [az.sin() * el.cos(), el.sin(), az.cos() * el.cos()],
            light_intensity: rng.random_range(0.5..1.1),
            ambient: rng.random_range(0.2..0.5),
            scale: rng.random_range(0.35..0.6),
            offset: [rng.random_range(-0.12..0.12), rng.random_range(-0.1..0.1)],
            mouth_open: if rng.random_bool(0.35) { rng.random_range(0.02..0.12) } else { 0.0 },
            occluder,
            occluder_colour: [rng.random(), rng.random(), rng.random()],
            hand_at: [rng.random_range(-0.5..0.5), rng.random_range(-0.8..0.0)],
            background_seed: rng.random(),
        }
    }
}

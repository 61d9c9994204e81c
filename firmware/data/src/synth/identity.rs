//! An identity: the parameter vector that makes one synthetic person look like themselves in
//! every view (head and jaw shape, skin tone, feature geometry, hair, facial hair, spectacles).

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HairStyle {
    Bald,
    Short,
    Medium,
    Long,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FacialHairStyle {
    None,
    Moustache,
    Goatee,
    FullBeard,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Cranium half-extents (x, y, z) in head units (~8 cm).
    pub head: [f32; 3],
    /// Jaw half-width, half-height and forward offset.
    pub jaw: [f32; 3],
    pub skin: [f32; 3],
    pub eye_half_spacing: f32,
    pub eye_height: f32,
    pub eye_size: [f32; 2],
    pub iris: [f32; 3],
    pub brow_lift: f32,
    pub brow_thickness: f32,
    pub nose_size: [f32; 3],
    pub nose_drop: f32,
    pub mouth_height: f32,
    pub mouth_half_width: f32,
    pub lip_thickness: f32,
    pub lip_colour: [f32; 3],
    pub ear_size: [f32; 2],
    pub hair_style: HairStyle,
    pub hairline: f32,
    pub hair_colour: [f32; 3],
    pub facial_hair: FacialHairStyle,
    pub spectacles: Option<[f32; 3]>,
    /// Seed of this person's skin and hair texture.
    pub texture_seed: u32,
}

fn pick<R: Rng, T: Copy>(rng: &mut R, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn jitter<R: Rng>(rng: &mut R, base: [f32; 3], amount: f32) -> [f32; 3] {
    base.map(|c| (c + rng.random_range(-amount..amount)).clamp(0.0, 1.0))
}

impl Identity {
    pub fn sample<R: Rng>(rng: &mut R) -> Self {
        const SKINS: [[f32; 3]; 6] = [
            [0.96, 0.80, 0.69],
            [0.90, 0.70, 0.55],
            [0.80, 0.58, 0.42],
            [0.62, 0.43, 0.30],
            [0.45, 0.30, 0.20],
            [0.32, 0.21, 0.15],
        ];
        const HAIRS: [[f32; 3]; 6] = [
            [0.08, 0.06, 0.05],
            [0.25, 0.15, 0.08],
            [0.45, 0.30, 0.15],
            [0.80, 0.65, 0.35],
            [0.55, 0.20, 0.08],
            [0.70, 0.70, 0.70],
        ];
        const IRISES: [[f32; 3]; 4] = [[0.25, 0.15, 0.08], [0.20, 0.35, 0.55], [0.30, 0.40, 0.20], [0.10, 0.08, 0.06]];
        let hair_style = pick(rng, &[HairStyle::Bald, HairStyle::Short, HairStyle::Short, HairStyle::Medium, HairStyle::Long]);
        let facial_hair = if rng.random_bool(0.35) {
            pick(rng, &[FacialHairStyle::Moustache, FacialHairStyle::Goatee, FacialHairStyle::FullBeard])
        } else {
            FacialHairStyle::None
        };
        let spectacles = rng
            .random_bool(0.25)
            .then(|| pick(rng, &[[0.05, 0.05, 0.05], [0.45, 0.25, 0.1], [0.7, 0.7, 0.75], [0.5, 0.1, 0.1]]));
        let base_skin = pick(rng, &SKINS);
        let skin = jitter(rng, base_skin, 0.04);
        Self {
            head: [rng.random_range(0.88..1.05), rng.random_range(1.22..1.42), rng.random_range(1.05..1.2)],
            jaw: [rng.random_range(0.68..0.92), rng.random_range(0.62..0.82), rng.random_range(0.05..0.2)],
            skin,
            eye_half_spacing: rng.random_range(0.30..0.40),
            eye_height: rng.random_range(0.12..0.26),
            eye_size: [rng.random_range(0.13..0.19), rng.random_range(0.06..0.10)],
            iris: { let base = pick(rng, &IRISES); jitter(rng, base, 0.05) },
            brow_lift: rng.random_range(0.15..0.24),
            brow_thickness: rng.random_range(0.03..0.06),
            nose_size: [rng.random_range(0.09..0.15), rng.random_range(0.22..0.34), rng.random_range(0.16..0.26)],
            nose_drop: rng.random_range(0.26..0.36),
            mouth_height: rng.random_range(-0.72..-0.58),
            mouth_half_width: rng.random_range(0.18..0.28),
            lip_thickness: rng.random_range(0.03..0.055),
            lip_colour: jitter(rng, [skin[0] * 0.85, skin[1] * 0.5, skin[2] * 0.5], 0.05),
            ear_size: [rng.random_range(0.2..0.3), rng.random_range(0.13..0.2)],
            hair_style,
            hairline: rng.random_range(0.55..0.8),
            hair_colour: { let base = pick(rng, &HAIRS); jitter(rng, base, 0.04) },
            facial_hair,
            spectacles,
            texture_seed: rng.random(),
        }
    }
}

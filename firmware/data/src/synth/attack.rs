//! Verification attempts for the liveness check: the same identity as a live head turning in
//! front of the camera, or as a flat picture of that head (a print or a screen) held up, moved and
//! tilted, or held still. An attempt is a short frame sequence with ground-truth landmarks.
//!
//! A picture is a plane, so each of its frames is the photo warped by one homography (the
//! pinhole camera's image of the tilted plane), with what a print or a screen adds: reduced
//! dynamic range, paper shading or a screen's black level, moiré, glare and a visible border.

use super::math::Rot;
use super::render::background;
use super::{Generator, View};
use faceunlock_core::geometry::Landmarks5;
use faceunlock_core::homography::Homography;
use image::{Rgb, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Frames one attempt spans: about 0.4 s at 15 frames per second.
pub const ATTEMPT_FRAMES: usize = 6;

/// Smallest and largest turn (degrees) of a live head over an attempt, after the device's
/// "turn your head slightly" prompt; attackers tilt their picture by as much.
pub const TURN_RANGE: (f32, f32) = (6.0, 20.0);

/// Camera focal length in units of the frame size (a webcam's ~45° field of view).
const FOCAL: f32 = 1.2;
/// Side of the photo an attack presents, pixels.
const PHOTO_SIZE: u32 = 256;
/// Sensor noise, standard deviation in 8-bit levels.
const SENSOR_NOISE: f32 = 2.0;
/// RNG streams of attempts: far above the identity (1) and view (2 + person) streams.
const LIVE_STREAM: u64 = 1 << 40;
const ATTACK_STREAM: u64 = 1 << 41;

/// What is in front of the camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presentation {
    /// The person's own head.
    Live,
    /// A printed photo of the person.
    Print,
    /// A phone or tablet screen showing a photo of the person.
    Screen,
}

/// One frame of an attempt and where the person's 5 landmarks truly are in it.
pub struct AttemptFrame {
    pub image: RgbImage,
    pub landmarks: Landmarks5,
}

pub struct Attempt {
    pub presentation: Presentation,
    /// Whether the object is held still over the attempt (a replay that does not try to move).
    pub still: bool,
    /// Degrees the head, or the picture, turns over the attempt.
    pub turn: f32,
    pub frames: Vec<AttemptFrame>,
}

impl Generator {
    /// A live attempt of `person`: the head turns by [`TURN_RANGE`] degrees (mostly yaw, some
    /// pitch and roll) and drifts a little, under one light in front of one background.
    pub fn live_attempt(&self, person: u32) -> Attempt {
        let mut rng = self.rng(LIVE_STREAM, u64::from(person));
        let id = self.identity(person);
        let start = View {
            yaw: rng.random_range(-20.0..20.0),
            pitch: rng.random_range(-10.0..10.0),
            roll: rng.random_range(-8.0..8.0),
            scale: rng.random_range(0.38..0.55),
            occluder: None,
            ..View::sample(&mut rng, 0.0)
        };
        let (turn, [yaw, pitch]) = sample_turn(&mut rng);
        let roll = rng.random_range(-3.0..3.0);
        let drift = [rng.random_range(-0.03..0.03), rng.random_range(-0.03..0.03)];
        let frames = (0..ATTEMPT_FRAMES)
            .map(|k| {
                let t = k as f32 / (ATTEMPT_FRAMES - 1) as f32;
                let view = View {
                    yaw: start.yaw + yaw * t,
                    pitch: start.pitch + pitch * t,
                    roll: start.roll + roll * t,
                    offset: [start.offset[0] + drift[0] * t, start.offset[1] + drift[1] * t],
                    ..start.clone()
                };
                let r = self.render(&id, &view);
                let mut image = r.image;
                add_sensor_noise(&mut image, &mut rng);
                AttemptFrame { image, landmarks: r.landmarks }
            })
            .collect();
        Attempt { presentation: Presentation::Live, still: false, turn, frames }
    }

    /// An attack on `person`: a photo of them, printed or on a screen, held up in front of the
    /// camera and tilted like a turning head (one in four is held still).
    pub fn attack_attempt(&self, person: u32) -> Attempt {
        let mut rng = self.rng(ATTACK_STREAM, u64::from(person));
        let presentation = if rng.random_bool(0.5) { Presentation::Print } else { Presentation::Screen };
        let still = rng.random_bool(0.25);
        let portrait = View {
            yaw: rng.random_range(-15.0..15.0),
            pitch: rng.random_range(-8.0..8.0),
            roll: rng.random_range(-5.0..5.0),
            scale: rng.random_range(0.45..0.6),
            offset: [rng.random_range(-0.05..0.05), rng.random_range(-0.05..0.05)],
            occluder: None,
            ..View::sample(&mut rng, 0.0)
        };
        let photo = Generator { size: PHOTO_SIZE, ..*self }.render(&self.identity(person), &portrait);
        let look = Look::sample(presentation, &mut rng);
        let size = self.size as f32;
        // Place the picture so its face is as large in the frame as a live face.
        let face_in_frame = rng.random_range(0.32..0.5);
        let distance = FOCAL * portrait.scale / face_in_frame;
        let tilt = [rng.random_range(-15.0..15.0), rng.random_range(-15.0..15.0), rng.random_range(-10.0..10.0)];
        let (turn, [turn_yaw, turn_pitch]) = if still { (0.0, [rng.random_range(-0.4..0.4), rng.random_range(-0.4..0.4)]) } else { sample_turn(&mut rng) };
        let centre = [rng.random_range(-0.08..0.08) * distance, rng.random_range(-0.06..0.06) * distance];
        let shake = if still { 0.002 } else { 0.03 };
        let drift = [rng.random_range(-shake..shake) * distance, rng.random_range(-shake..shake) * distance];
        let background_seed: u32 = rng.random();
        let frames = (0..ATTEMPT_FRAMES)
            .map(|k| {
                let t = k as f32 / (ATTEMPT_FRAMES - 1) as f32;
                let pose = Rot::from_pose(tilt[0] + turn_yaw * t, tilt[1] + turn_pitch * t, tilt[2]);
                let plane = Plane { pose, centre: [centre[0] + drift[0] * t, centre[1] + drift[1] * t], distance };
                let to_frame = plane.photo_to_frame(size);
                let mut image = look.render(&photo.image, &plane, &to_frame, self.size, background_seed);
                add_sensor_noise(&mut image, &mut rng);
                AttemptFrame { image, landmarks: Landmarks5(photo.landmarks.0.map(|p| to_frame.apply(p))) }
            })
            .collect();
        Attempt { presentation, still, turn, frames }
    }
}

/// A turn within [`TURN_RANGE`]: its size and its split into yaw and pitch (degrees).
fn sample_turn(rng: &mut ChaCha8Rng) -> (f32, [f32; 2]) {
    let turn = rng.random_range(TURN_RANGE.0..TURN_RANGE.1);
    // Mostly sideways, sometimes up or down, in either direction.
    let angle = rng.random_range(-0.6f32..0.6) + if rng.random_bool(0.5) { 0.0 } else { std::f32::consts::PI };
    (turn, [turn * angle.cos(), turn * angle.sin()])
}

/// Gaussian sensor noise (sum of three uniforms), independent per pixel, channel and frame.
fn add_sensor_noise(image: &mut RgbImage, rng: &mut ChaCha8Rng) {
    let spread = SENSOR_NOISE * 2.0;
    for v in image.iter_mut() {
        let n: f32 = (0..3).map(|_| rng.random::<f32>()).sum::<f32>() - 1.5;
        *v = (f32::from(*v) + n * spread).round().clamp(0.0, 255.0) as u8;
    }
}

/// The picture's plane in the camera frame: unit width, its centre `distance` in front of the
/// camera, offset by `centre`, turned by `pose`.
struct Plane {
    pose: Rot,
    centre: [f32; 2],
    distance: f32,
}

impl Plane {
    /// Photo pixel → frame pixel: the pinhole camera's image of the tilted plane.
    fn photo_to_frame(&self, frame_size: f32) -> Homography {
        let r = self.pose.0.map(|row| row.map(f64::from));
        let f = f64::from(FOCAL * frame_size);
        let half = f64::from(frame_size) / 2.0;
        let (tx, ty, z) = (f64::from(self.centre[0]), f64::from(self.centre[1]), f64::from(self.distance));
        // Plane point (a, b) (b down) sits at R·[a, −b, 0] + [tx, ty, −z]; w is its depth.
        let w = [-r[2][0], r[2][1], z];
        let x = [r[0][0], -r[0][1], tx];
        let y = [r[1][0], -r[1][1], ty];
        let plane_to_frame = Homography(std::array::from_fn(|i| {
            std::array::from_fn(|j| match i {
                0 => f * x[j] + half * w[j],
                1 => -f * y[j] + half * w[j],
                _ => w[j],
            })
        }));
        let p = f64::from(PHOTO_SIZE);
        let photo_to_plane = Homography([[1.0 / p, 0.0, -0.5], [0.0, 1.0 / p, -0.5], [0.0, 0.0, 1.0]]);
        plane_to_frame.after(&photo_to_plane)
    }

    fn normal(&self) -> [f32; 3] {
        self.pose.apply([0.0, 0.0, 1.0])
    }

    /// How brightly a light from the upper front lights the plane (prints only).
    fn lit(&self) -> f32 {
        let light = [0.3f32, 0.5, 0.81];
        self.normal().iter().zip(light).map(|(n, l)| n * l).sum::<f32>().max(0.0)
    }
}

/// How one print or screen renders the photo.
struct Look {
    presentation: Presentation,
    /// Border width around the photo, in photo widths (paper margin or screen bezel).
    border: f32,
    /// Darkest and brightest level the medium shows, 0..1.
    black: f32,
    white: f32,
    saturation: f32,
    /// Moiré stripes (screens): amplitude, and frequency in cycles per photo width.
    moire: f32,
    moire_frequency: [f32; 2],
    /// Specular glare: peak, centre (photo units), radius.
    glare: f32,
    glare_at: [f32; 2],
    glare_radius: f32,
}

impl Look {
    fn sample(presentation: Presentation, rng: &mut ChaCha8Rng) -> Self {
        let screen = presentation == Presentation::Screen;
        let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let cycles = rng.random_range(6.0..24.0);
        Self {
            presentation,
            border: rng.random_range(0.03..0.09),
            black: if screen { rng.random_range(0.02..0.08) } else { rng.random_range(0.06..0.16) },
            white: if screen { rng.random_range(0.8..0.97) } else { rng.random_range(0.78..0.9) },
            saturation: rng.random_range(0.7..0.95),
            moire: if screen { rng.random_range(0.04..0.14) } else { 0.0 },
            moire_frequency: [cycles * angle.cos(), cycles * angle.sin()],
            glare: rng.random_range(0.0..0.5),
            glare_at: [rng.random_range(0.1..0.9), rng.random_range(0.1..0.9)],
            glare_radius: rng.random_range(0.08..0.25),
        }
    }

    fn border_colour(&self) -> [f32; 3] {
        match self.presentation {
            Presentation::Screen => [0.04, 0.04, 0.05],
            _ => [0.93, 0.92, 0.88],
        }
    }

    /// The medium's colour at photo coordinates `(x, y)` in photo widths (0..1 inside the photo),
    /// lit by `light`, with the glare moved by `glare_shift` as the medium tilts.
    fn colour(&self, photo: &RgbImage, x: f32, y: f32, light: f32, glare_shift: [f32; 2]) -> [f32; 3] {
        let inside = (0.0..1.0).contains(&x) && (0.0..1.0).contains(&y);
        let base = if inside {
            let c = bilinear(photo, x * photo.width() as f32 - 0.5, y * photo.height() as f32 - 0.5);
            let grey = (c[0] + c[1] + c[2]) / 3.0;
            let stripes = 1.0 + self.moire * (std::f32::consts::TAU * (self.moire_frequency[0] * x + self.moire_frequency[1] * y)).sin();
            c.map(|v| (self.black + (self.white - self.black) * (grey + self.saturation * (v - grey))) * stripes)
        } else {
            self.border_colour()
        };
        let d2 = (x - self.glare_at[0] - glare_shift[0]).powi(2) + (y - self.glare_at[1] - glare_shift[1]).powi(2);
        let glare = self.glare * (-d2 / (2.0 * self.glare_radius * self.glare_radius)).exp();
        // A screen emits its own light; a print shows the room's.
        let shade = if self.presentation == Presentation::Screen { 1.0 } else { light };
        base.map(|v| v * shade + glare)
    }

    /// One frame: the medium where the plane covers the frame, the room's background elsewhere.
    fn render(&self, photo: &RgbImage, plane: &Plane, to_frame: &Homography, size: u32, background_seed: u32) -> RgbImage {
        let from_frame = to_frame.inverse().expect("a plane in front of the camera maps invertibly");
        let light = 0.55 + 0.45 * plane.lit();
        // The reflection of a light slides across the medium as it tilts.
        let normal = plane.normal();
        let glare_shift = [0.8 * normal[0], -0.8 * normal[1]];
        let p = PHOTO_SIZE as f32;
        RgbImage::from_fn(size, size, |u, v| {
            let [px, py] = from_frame.apply([u as f32 + 0.5, v as f32 + 0.5]);
            let (x, y) = (px / p, py / p);
            let on_medium = (-self.border..1.0 + self.border).contains(&x) && (-self.border..1.0 + self.border).contains(&y);
            let c = if on_medium { self.colour(photo, x, y, light, glare_shift) } else { background(u, v, size, background_seed) };
            Rgb(c.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8))
        })
    }
}

/// Bilinear sample (pixel centres at integer + 0.5), clamped at the edges, in 0..1.
fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |dx: i64, dy: i64| {
        let px = img.get_pixel((x0 as i64 + dx).clamp(0, w - 1) as u32, (y0 as i64 + dy).clamp(0, h - 1) as u32);
        px.0.map(|c| f32::from(c) / 255.0)
    };
    let (a, b, c, d) = (at(0, 0), at(1, 0), at(0, 1), at(1, 1));
    std::array::from_fn(|k| (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms_homography_residual(a: &Landmarks5, b: &Landmarks5) -> f32 {
        let h = Homography::fit(&a.0, &b.0).unwrap();
        let sq: f32 = a.0.iter().zip(&b.0).map(|(p, q)| (h.apply(*p)[0] - q[0]).powi(2) + (h.apply(*p)[1] - q[1]).powi(2)).sum();
        (sq / 5.0).sqrt() / b.inter_ocular()
    }

    #[test]
    fn a_picture_moves_by_one_homography_and_a_turning_head_does_not() {
        let g = Generator::new(5);
        for person in 0..4 {
            let attack = g.attack_attempt(person);
            let live = g.live_attempt(person);
            assert_eq!((attack.frames.len(), live.frames.len()), (ATTEMPT_FRAMES, ATTEMPT_FRAMES));
            let (a0, a1) = (&attack.frames[0].landmarks, &attack.frames[ATTEMPT_FRAMES - 1].landmarks);
            let (l0, l1) = (&live.frames[0].landmarks, &live.frames[ATTEMPT_FRAMES - 1].landmarks);
            let flat = rms_homography_residual(a0, a1);
            let solid = rms_homography_residual(l0, l1);
            assert!(flat < 1e-3, "person {person}: a picture's landmarks left a residual of {flat} inter-ocular distances");
            assert!(solid > 0.01, "person {person}: a head turning {:.1}° left only {solid}", live.turn);
            // The face is in the frame and about as large in both.
            for lm in [a0, l0] {
                assert!(lm.0.iter().all(|p| p.iter().all(|c| (0.0..g.size as f32).contains(c))), "{lm:?}");
                let iod = lm.inter_ocular() / g.size as f32;
                assert!((0.08..0.3).contains(&iod), "inter-ocular distance {iod} of the frame");
            }
        }
    }

    #[test]
    fn attempts_are_deterministic_and_show_the_medium() {
        let g = Generator { size: 128, ..Generator::new(9) };
        let a = g.attack_attempt(3);
        let b = g.attack_attempt(3);
        assert_eq!(a.frames[2].image, b.frames[2].image);
        assert_eq!((a.presentation, a.still), (b.presentation, b.still));
        // A moving picture changes between frames, and so does a turning head.
        assert_ne!(a.frames[0].image, a.frames[ATTEMPT_FRAMES - 1].image);
        let live = g.live_attempt(3);
        assert_ne!(live.frames[0].image, live.frames[ATTEMPT_FRAMES - 1].image);
        let kinds: Vec<_> = (0..16).map(|p| g.attack_attempt(p).presentation).collect();
        assert!(kinds.contains(&Presentation::Print) && kinds.contains(&Presentation::Screen));
    }
}

//! Ray casting of a [`Scene`]: a pinhole camera looks at the posed head; each pixel takes the
//! label and the Lambert-shaded colour of the nearest surface, so occlusion is exact.

use super::identity::Identity;
use super::math::{self, Rot, V3};
use super::scene::{Material, Scene};
use super::view::View;
use crate::classes::FaceClass;
use faceunlock_core::geometry::Landmarks5;
use image::{GrayImage, Luma, Rgb, RgbImage};

/// Camera distance from the head centre, in head units.
const CAMERA_DISTANCE: f32 = 9.0;
/// Face height (forehead to chin) in head units, used to turn `View::scale` into a focal length.
const FACE_HEIGHT: f32 = 2.4;

/// One rendered picture with its ground truth.
pub struct Rendered {
    pub image: RgbImage,
    /// Class index per pixel ([`FaceClass`] as u8).
    pub mask: GrayImage,
    pub landmarks: Landmarks5,
    /// Whether each landmark is visible (not hidden by the head itself or an occluder).
    pub visible: [bool; 5],
    /// Face box `[x, y, w, h]` in pixels.
    pub face_box: [f32; 4],
}

struct Camera {
    size: u32,
    focal: f32,
    rot: Rot,
    offset: V3,
}

impl Camera {
    fn new(view: &View, size: u32) -> Self {
        let s = size as f32;
        let focal = view.scale * s * CAMERA_DISTANCE / FACE_HEIGHT;
        let offset = [view.offset[0] * s * CAMERA_DISTANCE / focal, -view.offset[1] * s * CAMERA_DISTANCE / focal, 0.0];
        Self { size, focal, rot: Rot::from_pose(view.yaw, view.pitch, view.roll), offset }
    }

    /// Ray origin and direction in the head frame for pixel centre (u, v).
    fn ray(&self, u: f32, v: f32) -> (V3, V3) {
        let half = self.size as f32 / 2.0;
        let d = [(u - half) / self.focal, -(v - half) / self.focal, -1.0];
        let o = math::sub([0.0, 0.0, CAMERA_DISTANCE], self.offset);
        (self.rot.transpose_apply(o), self.rot.transpose_apply(d))
    }

    /// Pixel position of a head-frame point and its distance along the camera axis.
    fn project(&self, p: V3) -> ([f32; 2], f32) {
        let w = math::add(self.rot.apply(p), self.offset);
        let depth = CAMERA_DISTANCE - w[2];
        let half = self.size as f32 / 2.0;
        ([half + self.focal * w[0] / depth, half - self.focal * w[1] / depth], depth)
    }
}

fn nearest_hit(scene: &Scene, o: V3, d: V3) -> Option<(&super::scene::Primitive, super::scene::Hit)> {
    scene
        .primitives
        .iter()
        .filter_map(|prim| prim.intersect(o, d).map(|h| (prim, h)))
        .min_by(|a, b| a.1.t.total_cmp(&b.1.t))
}

fn albedo(material: Material, p: V3, id: &Identity) -> [f32; 3] {
    let seed = id.texture_seed;
    match material {
        Material::Skin => {
            let n = math::fractal_noise(math::scale(p, 7.0), seed);
            id.skin.map(|c| c * (0.9 + 0.18 * n))
        }
        Material::Hair => {
            let strands = math::value_noise([p[0] * 28.0, p[1] * 3.0, p[2] * 28.0], seed ^ 0xa5a5);
            id.hair_colour.map(|c| (c * (0.65 + 0.6 * strands)).min(1.0))
        }
        Material::Brow => id.hair_colour.map(|c| c * 0.75),
        Material::Eye { centre, iris_radius } => {
            let r = (p[0] - centre[0]).hypot(p[1] - centre[1]);
            if r < iris_radius * 0.45 {
                [0.03, 0.03, 0.03]
            } else if r < iris_radius {
                id.iris
            } else {
                [0.92, 0.9, 0.86]
            }
        }
        Material::Lips => id.lip_colour,
        Material::Teeth => [0.95, 0.93, 0.85],
        Material::Frame(c) => c,
        Material::Cloth(c) => {
            let weave = math::value_noise(math::scale(p, 40.0), 99);
            c.map(|v| v * (0.85 + 0.2 * weave))
        }
    }
}

fn shininess(material: Material) -> f32 {
    match material {
        Material::Eye { .. } | Material::Frame(_) => 0.5,
        Material::Lips | Material::Teeth => 0.25,
        _ => 0.08,
    }
}

pub(super) fn background(u: u32, v: u32, size: u32, seed: u32) -> [f32; 3] {
    let s = size as f32;
    let (x, y) = (u as f32 / s, v as f32 / s);
    let pick = |k: u32| math::value_noise([k as f32 * 3.1, 0.5, 0.5], seed);
    let base = [pick(1), pick(2), pick(3)];
    let alt = [pick(4), pick(5), pick(6)];
    let t = match seed % 3 {
        0 => x * 0.6 + y * 0.4,
        1 => (x * (4.0 + 8.0 * pick(7)) + y * 3.0).sin() * 0.5 + 0.5,
        _ => math::fractal_noise([x * 6.0, y * 6.0, 0.0], seed),
    };
    let grain = math::value_noise([x * 60.0, y * 60.0, 1.0], seed) * 0.08;
    [0, 1, 2].map(|c| (base[c] + (alt[c] - base[c]) * t) * 0.85 + grain)
}

/// Render `scene` of identity `id` seen in `view` at `size`×`size` pixels.
pub fn render(id: &Identity, view: &View, scene: &Scene, size: u32) -> Rendered {
    let cam = Camera::new(view, size);
    let light = math::normalize(cam.rot.transpose_apply(view.light));
    let mut image = RgbImage::new(size, size);
    let mut mask = GrayImage::new(size, size);
    for v in 0..size {
        for u in 0..size {
            let (o, d) = cam.ray(u as f32 + 0.5, v as f32 + 0.5);
            let (label, colour) = match nearest_hit(scene, o, d) {
                None => (FaceClass::Background, background(u, v, size, view.background_seed)),
                Some((prim, hit)) => {
                    let a = albedo(prim.material, hit.point, id);
                    let lambert = math::dot(hit.normal, light).max(0.0);
                    let half = math::normalize(math::sub(light, math::normalize(d)));
                    let spec = math::dot(hit.normal, half).max(0.0).powi(24) * shininess(prim.material);
                    let shade = view.ambient + view.light_intensity * lambert;
                    (prim.label, a.map(|c| c * shade + spec * view.light_intensity))
                }
            };
            let grain = math::pixel_noise(u, v, view.background_seed) * 0.015;
            image.put_pixel(u, v, Rgb(colour.map(|c| ((c + grain).clamp(0.0, 1.0) * 255.0).round() as u8)));
            mask.put_pixel(u, v, Luma([label as u8]));
        }
    }

    let mut landmarks = [[0.0f32; 2]; 5];
    let mut visible = [false; 5];
    for (k, p) in scene.keys.landmarks.iter().enumerate() {
        let (px, depth) = cam.project(*p);
        landmarks[k] = px;
        let (o, d) = cam.ray(px[0], px[1]);
        let d_len = math::dot(d, d).sqrt();
        visible[k] = nearest_hit(scene, o, d).is_some_and(|(_, hit)| {
            // The hit's camera-axis depth equals t·|d_z| = t (d_z = -1 in the camera frame).
            (hit.t - depth).abs() < 0.08 * d_len.max(1.0)
        });
    }
    let points: Vec<[f32; 2]> =
        scene.keys.outline.iter().chain(scene.keys.landmarks.iter()).map(|p| cam.project(*p).0).collect();
    let (x0, y0, x1, y1) = points.iter().fold((f32::MAX, f32::MAX, f32::MIN, f32::MIN), |(a, b, c, d), p| {
        (a.min(p[0]), b.min(p[1]), c.max(p[0]), d.max(p[1]))
    });
    Rendered { image, mask, landmarks: Landmarks5(landmarks), visible, face_box: [x0, y0, x1 - x0, y1 - y0] }
}

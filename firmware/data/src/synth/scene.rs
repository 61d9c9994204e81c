//! The 3-D scene of one identity in one view: primitives in the head's own frame, each with the
//! part label it paints and the material it is shaded with.

use super::identity::{FacialHairStyle, HairStyle, Identity};
use super::math::V3;
use super::view::{Occluder, View};
use crate::classes::FaceClass;

#[derive(Clone, Copy, Debug)]
pub enum Material {
    Skin,
    Hair,
    Brow,
    Eye { centre: V3, iris_radius: f32 },
    Lips,
    Teeth,
    Frame([f32; 3]),
    Cloth([f32; 3]),
}

/// Where on a shell a hit counts; everything else on it is transparent.
#[derive(Clone, Copy, Debug)]
pub enum Region {
    All,
    /// Scalp hair: above a hairline that runs from `front` (forehead) down to `back` (nape).
    Scalp { front: f32, back: f32, depth: f32 },
    /// Below `y_max`, in front of `z_min`, outside the lips box `(half_width, y_lo, y_hi)`.
    Lower { y_max: f32, z_min: f32, keep_out: [f32; 3] },
    Above(f32),
    Behind(f32),
    InFront(f32),
}

impl Region {
    fn admits(&self, p: V3, centre: V3) -> bool {
        match *self {
            Region::All => true,
            Region::Scalp { front, back, depth } => {
                let f = ((p[2] - centre[2]) / depth).clamp(-1.0, 1.0);
                p[1] > back + (front - back) * (f + 1.0) / 2.0
            }
            Region::Lower { y_max, z_min, keep_out: [hw, lo, hi] } => {
                p[1] < y_max && p[2] > z_min && !(p[0].abs() < hw && p[1] > lo && p[1] < hi)
            }
            Region::Above(y) => p[1] > y,
            Region::Behind(z) => p[2] < z,
            Region::InFront(z) => p[2] > z,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Ellipsoid { centre: V3, radii: V3, region: Region },
    /// A flat elliptical ring facing +z (a spectacle rim).
    Ring { centre: V3, outer: [f32; 2], width: f32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Primitive {
    pub shape: Shape,
    pub label: FaceClass,
    pub material: Material,
}

/// A ray hit: distance, point and normal in the head frame.
pub struct Hit {
    pub t: f32,
    pub point: V3,
    pub normal: V3,
}

impl Primitive {
    pub fn intersect(&self, o: V3, d: V3) -> Option<Hit> {
        match self.shape {
            Shape::Ellipsoid { centre, radii, region } => {
                let oc = [0, 1, 2].map(|i| (o[i] - centre[i]) / radii[i]);
                let dc = [0, 1, 2].map(|i| d[i] / radii[i]);
                let a = super::math::dot(dc, dc);
                let b = super::math::dot(oc, dc);
                let c = super::math::dot(oc, oc) - 1.0;
                let disc = b * b - a * c;
                if disc < 0.0 {
                    return None;
                }
                let s = disc.sqrt();
                [(-b - s) / a, (-b + s) / a].into_iter().filter(|t| *t > 1e-4).find_map(|t| {
                    let p = [0, 1, 2].map(|i| o[i] + t * d[i]);
                    region.admits(p, centre).then(|| {
                        let n = [0, 1, 2].map(|i| (p[i] - centre[i]) / (radii[i] * radii[i]));
                        Hit { t, point: p, normal: super::math::normalize(n) }
                    })
                })
            }
            Shape::Ring { centre, outer, width } => {
                if d[2].abs() < 1e-6 {
                    return None;
                }
                let t = (centre[2] - o[2]) / d[2];
                if t <= 1e-4 {
                    return None;
                }
                let p = [o[0] + t * d[0], o[1] + t * d[1], centre[2]];
                let outer_r = ((p[0] - centre[0]) / outer[0]).hypot((p[1] - centre[1]) / outer[1]);
                let inner_r = ((p[0] - centre[0]) / (outer[0] - width)).hypot((p[1] - centre[1]) / (outer[1] - width));
                (outer_r <= 1.0 && inner_r >= 1.0).then_some(Hit { t, point: p, normal: [0.0, 0.0, 1.0] })
            }
        }
    }
}

/// Key points in the head frame, projected later for landmarks and the face box.
pub struct KeyPoints {
    /// Left eye, right eye, nose tip, left mouth corner, right mouth corner.
    pub landmarks: [V3; 5],
    /// Points whose projection bounds the face box (forehead, chin, cheeks).
    pub outline: Vec<V3>,
}

pub struct Scene {
    pub primitives: Vec<Primitive>,
    pub keys: KeyPoints,
}

fn ellipsoid(centre: V3, radii: V3, label: FaceClass, material: Material) -> Primitive {
    Primitive { shape: Shape::Ellipsoid { centre, radii, region: Region::All }, label, material }
}

fn clipped(centre: V3, radii: V3, region: Region, label: FaceClass, material: Material) -> Primitive {
    Primitive { shape: Shape::Ellipsoid { centre, radii, region }, label, material }
}

/// z of the front of an ellipsoid at (x, y), if it covers that point.
fn front_z(centre: V3, radii: V3, x: f32, y: f32) -> Option<f32> {
    let q = 1.0 - ((x - centre[0]) / radii[0]).powi(2) - ((y - centre[1]) / radii[1]).powi(2);
    (q >= 0.0).then(|| centre[2] + radii[2] * q.sqrt())
}

impl Scene {
    pub fn build(id: &Identity, view: &View) -> Self {
        use FaceClass as C;
        let [hw, _, hd] = id.head;
        let cranium = ([0.0, 0.2, -0.05], [hw, id.head[1] * 0.82, hd]);
        let jaw = ([0.0, -0.5, id.jaw[2]], [id.jaw[0], id.jaw[1], hd * 0.8]);
        let skin_z = |x: f32, y: f32| {
            let a = front_z(cranium.0, cranium.1, x, y).unwrap_or(0.0);
            a.max(front_z(jaw.0, jaw.1, x, y).unwrap_or(0.0))
        };
        let mut p = vec![
            ellipsoid(cranium.0, cranium.1, C::Skin, Material::Skin),
            ellipsoid(jaw.0, jaw.1, C::Skin, Material::Skin),
            ellipsoid([0.0, -1.55, -0.4], [0.42, 0.75, 0.42], C::Skin, Material::Skin),
        ];

        let (es, eh) = (id.eye_half_spacing, id.eye_height);
        let mut eye_fronts = [[0.0; 3]; 2];
        for (k, (sx, eye, brow, ear)) in
            [(-1.0, C::LeftEye, C::LeftBrow, C::LeftEar), (1.0, C::RightEye, C::RightBrow, C::RightEar)].into_iter().enumerate()
        {
            let x = sx * es;
            let radii = [id.eye_size[0], id.eye_size[1], 0.09];
            let centre = [x, eh, skin_z(x, eh) - 0.04];
            eye_fronts[k] = [x, eh, centre[2] + radii[2]];
            p.push(ellipsoid(centre, radii, eye, Material::Eye { centre, iris_radius: id.eye_size[1] * 0.8 }));
            let by = eh + id.brow_lift;
            p.push(ellipsoid([x, by, skin_z(x, by) - 0.01], [id.eye_size[0] * 1.35, id.brow_thickness, 0.05], brow, Material::Brow));
            p.push(ellipsoid([sx * hw * 0.97, eh - 0.15, -0.05], [0.08, id.ear_size[0], id.ear_size[1]], ear, Material::Skin));
        }

        let ny = eh - id.nose_drop;
        let [nx, nyr, nz] = id.nose_size;
        let nose_centre = [0.0, ny, skin_z(0.0, ny) + nz * 0.2];
        p.push(ellipsoid(nose_centre, [nx, nyr, nz], C::Nose, Material::Skin));
        let nose_tip = [0.0, ny, nose_centre[2] + nz];

        let (my, mw, lt, open) = (id.mouth_height, id.mouth_half_width, id.lip_thickness, view.mouth_open);
        let mz = skin_z(0.0, my);
        p.push(ellipsoid([0.0, my + lt + open / 2.0, mz - 0.02], [mw, lt, 0.08], C::Lips, Material::Lips));
        p.push(ellipsoid([0.0, my - lt * 1.1 - open / 2.0, mz - 0.02], [mw * 0.9, lt * 1.2, 0.08], C::Lips, Material::Lips));
        if open > 0.0 {
            p.push(ellipsoid([0.0, my, mz - 0.06], [mw * 0.75, open / 2.0 + lt * 0.6, 0.07], C::Teeth, Material::Teeth));
        }
        let corners = [-1.0, 1.0].map(|s| [s * mw * 0.95, my, skin_z(s * mw * 0.95, my) + 0.02]);

        let hairline = eh + 0.3 + id.hairline * 0.35;
        let hair_shell = |grow: f32| ([0.0, 0.22, -0.05], [hw + grow, id.head[1] * 0.82 + grow, hd + grow]);
        if id.hair_style != HairStyle::Bald {
            let back = match id.hair_style {
                HairStyle::Short => -0.45,
                HairStyle::Medium => -0.8,
                _ => -1.1,
            };
            let (c, r) = hair_shell(if id.hair_style == HairStyle::Short { 0.06 } else { 0.1 });
            p.push(clipped(c, r, Region::Scalp { front: hairline, back, depth: r[2] }, C::Hair, Material::Hair));
            if id.hair_style == HairStyle::Long {
                p.push(clipped([0.0, -0.6, -0.4], [hw + 0.2, 1.15, 0.75], Region::Behind(0.1), C::Hair, Material::Hair));
            }
        }

        let chin = jaw.0[1] - jaw.1[1];
        let beard_shell = ([jaw.0[0], jaw.0[1], jaw.0[2]], [jaw.1[0] * 1.05, jaw.1[1] * 1.03, jaw.1[2] * 1.05]);
        let lips_box = [mw * 1.05, my - lt * 2.6 - open, my + lt * 2.2 + open];
        match id.facial_hair {
            FacialHairStyle::None => {}
            FacialHairStyle::FullBeard => p.push(clipped(
                beard_shell.0,
                beard_shell.1,
                Region::Lower { y_max: my + lt * 3.0, z_min: -0.2, keep_out: lips_box },
                C::FacialHair,
                Material::Hair,
            )),
            FacialHairStyle::Goatee => p.push(clipped(
                beard_shell.0,
                [mw * 1.2, beard_shell.1[1], beard_shell.1[2]],
                Region::Lower { y_max: my + lt * 3.0, z_min: 0.2, keep_out: lips_box },
                C::FacialHair,
                Material::Hair,
            )),
            FacialHairStyle::Moustache => {}
        }
        if matches!(id.facial_hair, FacialHairStyle::Moustache | FacialHairStyle::Goatee | FacialHairStyle::FullBeard) {
            let y = my + lt * 2.0 + open / 2.0 + 0.04;
            p.push(ellipsoid([0.0, y, skin_z(0.0, y) - 0.02], [mw * 1.1, 0.05, 0.07], C::FacialHair, Material::Hair));
        }

        if let Some(colour) = id.spectacles {
            let rim_z = eye_fronts[0][2].max(eye_fronts[1][2]) + 0.12;
            let outer = [id.eye_size[0] * 1.6, id.eye_size[0] * 1.2];
            for sx in [-1.0f32, 1.0] {
                p.push(Primitive {
                    shape: Shape::Ring { centre: [sx * es, eh, rim_z], outer, width: 0.035 },
                    label: C::Spectacles,
                    material: Material::Frame(colour),
                });
                let hinge_x = es + outer[0];
                let arm_x = hw + 0.03;
                p.push(ellipsoid([sx * (hinge_x + arm_x) / 2.0, eh + 0.03, rim_z - 0.05], [(arm_x - hinge_x).abs() / 2.0 + 0.03, 0.025, 0.06], C::Spectacles, Material::Frame(colour)));
                p.push(ellipsoid([sx * arm_x, eh + 0.03, (rim_z - 0.1) / 2.0], [0.025, 0.025, (rim_z + 0.1) / 2.0], C::Spectacles, Material::Frame(colour)));
            }
            let bridge_half = es - outer[0] + 0.03;
            p.push(ellipsoid([0.0, eh + 0.04, rim_z], [bridge_half.max(0.03), 0.022, 0.022], C::Spectacles, Material::Frame(colour)));
        }

        let cloth = Material::Cloth(view.occluder_colour);
        match view.occluder {
            None => {}
            Some(Occluder::Mask) => {
                let front = nose_tip[2] + 0.05;
                p.push(clipped(
                    [0.0, my + 0.05, jaw.0[2]],
                    [hw * 1.03, (ny + 0.1) - chin + 0.2, front - jaw.0[2]],
                    Region::Lower { y_max: ny + 0.1, z_min: jaw.0[2] - 0.35, keep_out: [0.0; 3] },
                    C::Background,
                    cloth,
                ));
            }
            Some(Occluder::Cap) => {
                let (c, r) = hair_shell(0.14);
                p.push(clipped(c, r, Region::Above(hairline - 0.1), C::Background, cloth));
                p.push(clipped([0.0, hairline - 0.05, hd * 0.7], [hw * 0.85, 0.035, 0.6], Region::InFront(0.3), C::Background, cloth));
            }
            Some(Occluder::Hand) => {
                let [x, y] = view.hand_at;
                p.push(ellipsoid([x, y, skin_z(x, y) + 0.28], [0.42, 0.5, 0.12], C::Background, Material::Skin));
            }
        }

        let outline = vec![
            [0.0, hairline, skin_z(0.0, hairline)],
            [0.0, chin, jaw.0[2] + 0.2],
            [-hw * 0.92, eh - 0.1, 0.3],
            [hw * 0.92, eh - 0.1, 0.3],
        ];
        Scene {
            primitives: p,
            keys: KeyPoints { landmarks: [eye_fronts[0], eye_fronts[1], nose_tip, corners[0], corners[1]], outline },
        }
    }
}

//! Small 3-vector algebra and deterministic procedural noise for the renderer.

pub type V3 = [f32; 3];

pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn normalize(a: V3) -> V3 {
    let n = dot(a, a).sqrt();
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}

/// Row-major 3×3 rotation.
#[derive(Clone, Copy, Debug)]
pub struct Rot(pub [[f32; 3]; 3]);

impl Rot {
    /// Head pose: roll about z after pitch about x after yaw about y (angles in degrees).
    /// Positive yaw turns the face towards the image's right.
    pub fn from_pose(yaw: f32, pitch: f32, roll: f32) -> Self {
        let (sy, cy) = yaw.to_radians().sin_cos();
        let (sp, cp) = pitch.to_radians().sin_cos();
        let (sr, cr) = roll.to_radians().sin_cos();
        let ry = Rot([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]]);
        let rx = Rot([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]]);
        let rz = Rot([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]]);
        rz.mul(&rx).mul(&ry)
    }

    pub fn mul(&self, o: &Rot) -> Rot {
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| self.0[i][k] * o.0[k][j]).sum();
            }
        }
        Rot(m)
    }

    pub fn apply(&self, v: V3) -> V3 {
        [dot(self.0[0], v), dot(self.0[1], v), dot(self.0[2], v)]
    }

    pub fn transpose_apply(&self, v: V3) -> V3 {
        let m = &self.0;
        [
            m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
            m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
            m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
        ]
    }
}

fn hash3(x: i32, y: i32, z: i32, seed: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343)
        ^ (y as u32).wrapping_mul(0xd816_3841)
        ^ (z as u32).wrapping_mul(0xcb1a_b31f)
        ^ seed.wrapping_mul(0x9e37_79b9);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0xffff) as f32 / 65535.0
}

/// Trilinear value noise in [0, 1].
pub fn value_noise(p: V3, seed: u32) -> f32 {
    let f = p.map(f32::floor);
    let t = [p[0] - f[0], p[1] - f[1], p[2] - f[2]].map(|t| t * t * (3.0 - 2.0 * t));
    let [x, y, z] = f.map(|v| v as i32);
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let c = |dx, dy, dz| hash3(x + dx, y + dy, z + dz, seed);
    let x00 = lerp(c(0, 0, 0), c(1, 0, 0), t[0]);
    let x10 = lerp(c(0, 1, 0), c(1, 1, 0), t[0]);
    let x01 = lerp(c(0, 0, 1), c(1, 0, 1), t[0]);
    let x11 = lerp(c(0, 1, 1), c(1, 1, 1), t[0]);
    lerp(lerp(x00, x10, t[1]), lerp(x01, x11, t[1]), t[2])
}

/// Two octaves of value noise, roughly in [0, 1].
pub fn fractal_noise(p: V3, seed: u32) -> f32 {
    0.65 * value_noise(p, seed) + 0.35 * value_noise(scale(p, 2.7), seed ^ 0x5555)
}

/// Integer hash of a pixel for sensor noise, in [-1, 1].
pub fn pixel_noise(x: u32, y: u32, seed: u32) -> f32 {
    hash3(x as i32, y as i32, 7, seed) * 2.0 - 1.0
}

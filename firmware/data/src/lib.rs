//! Face data for the trainer and for the firmware's tests, with no Burn in sight:
//!
//! * [`synth`]: a deterministic 3-D synthetic face generator (identities × views, yaw ±90°,
//!   pitch ±45°, occluders) with occlusion-correct 14-class part masks ([`classes`]), face boxes
//!   and 5 landmarks, and a writer for its on-disk layout;
//! * loaders yielding one item type ([`sample::FaceSample`]) for that layout ([`synth_set`]),
//!   LFW with its folds and pairs ([`lfw`]) and LFW Part Labels ([`lfw_parts`]);
//! * synthetic face masks drawn onto real photos from their landmarks ([`masks`]), and photos
//!   darkened as a night frame is ([`low_light`]);
//! * contact sheets and class-frequency tables ([`sheet`]).
//!
//! ```
//! use faceunlock_data::{classes::FaceClass, synth::{Generator, View}};
//!
//! let generator = Generator::new(7);
//! let person = generator.identity(0);
//! let picture = generator.render(&person, &View::posed(90.0, 0.0, 0.0));
//! let eyes = [FaceClass::LeftEye, FaceClass::RightEye]
//!     .map(|c| picture.mask.pixels().any(|p| p.0[0] == c as u8));
//! assert!(eyes[0] != eyes[1], "a profile shows exactly one eye");
//! ```

pub mod classes;
pub mod error;
pub mod lfw;
pub mod lfw_parts;
pub mod low_light;
pub mod masks;
pub mod packed;
pub mod sample;
pub mod sheet;
pub mod synth;
pub mod synth_set;

pub use error::DataError;

use std::path::PathBuf;

/// Where the development data lives: `$FACEUNLOCK_SHARED`, else `shared/` beside the workspace:
/// the one cargo started this process in (tests, `cargo run`: its `CARGO_MANIFEST_DIR` is some
/// package of it; a build cache shared between checkouts may hold a binary compiled in
/// another), else the one this crate was compiled in.
pub fn shared_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEUNLOCK_SHARED") {
        return PathBuf::from(dir);
    }
    let started_in = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let workspace = started_in.as_deref().and_then(|dir| dir.ancestors().find(|a| a.join("Cargo.lock").is_file()).map(PathBuf::from));
    workspace.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")).join("../shared")
}

/// A path under [`shared_root`], or `None` after saying loudly on stderr that it is absent:
/// for tests that need the development data and must pass, clearly skipped, without it. It
/// writes to the stderr handle itself, which the test harness does not capture, so the notice
/// shows in a plain `cargo test` run.
pub fn shared_or_skip(rel: &str) -> Option<PathBuf> {
    use std::io::Write;
    let path = shared_root().join(rel);
    if path.exists() {
        Some(path)
    } else {
        let _ = writeln!(std::io::stderr(), "SKIPPED: {} is absent (the shared development data is not beside this checkout)", path.display());
        None
    }
}

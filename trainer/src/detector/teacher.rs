//! A dense teacher: the teacher detector run on every training input, its answer at every cell
//! (face probability, box and landmark regressions) the student's target there. The student
//! shares the teacher's output contract, so the teacher's raw outputs are already targets in
//! the student's encoding; learning them aims at the teacher's function, where targets built
//! from its thresholded detections teach only its decisions. Measured at 128×128 inputs it did
//! worse than those targets (`docs/detector.md` run 6: the teacher's answers move with scale,
//! and whole faces do not fit such an input).

use super::targets;
use anyhow::{Context, Result};
use faceunlock::detect::YuNet;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The teacher network, one instance per thread that asks (tract's run state is not shared).
pub struct DenseTeacher {
    path: PathBuf,
    bytes: Vec<u8>,
    size: [usize; 2],
    idle: Mutex<Vec<YuNet>>,
}

impl DenseTeacher {
    /// Load the teacher `path` for training inputs of `size`, and run it once on a blank input:
    /// a model that loads and runs here answers every later input of that size.
    pub fn open(path: &Path, size: [usize; 2]) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading the dense teacher {}", path.display()))?;
        let teacher = Self { path: path.into(), bytes, size, idle: Mutex::new(Vec::new()) };
        let mut net = teacher.instance()?;
        net.maps(&RgbImage::new(size[0] as u32, size[1] as u32)).with_context(|| format!("running the dense teacher {}", path.display()))?;
        teacher.idle.lock().expect("teacher pool").push(net);
        Ok(teacher)
    }

    fn instance(&self) -> Result<YuNet> {
        let size = self.size.map(|s| s as u32);
        YuNet::from_bytes(&self.path, &self.bytes, size).with_context(|| format!("{}: expected a detector with YuNet's contract", self.path.display()))
    }

    /// The targets ([`targets::from_maps`]) of one training input of the teacher's size.
    pub fn targets(&self, input: &RgbImage) -> Vec<f32> {
        let taken = self.idle.lock().expect("teacher pool").pop();
        // `open` ran this model at this size: another instance and another run can only fail
        // as the first one would have.
        let mut net = taken.map_or_else(|| self.instance(), Ok).expect("the dense teacher loaded once");
        let maps = net.maps(input).expect("the dense teacher ran once at this size");
        self.idle.lock().expect("teacher pool").push(net);
        targets::from_maps(self.size, &maps)
    }
}

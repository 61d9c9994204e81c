//! The rule that turns impostor scores into a decision threshold, used by the trainer for the
//! manifest's thresholds (LFW) and by the firmware's demo for generated faces.
//!
//! ```
//! use faceunlock_core::calibration::threshold_at_far;
//! let mut impostors: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
//! let t = threshold_at_far(&mut impostors, 1e-2);
//! assert_eq!(impostors.iter().filter(|s| **s >= t).count(), 10);
//! ```

/// The smallest threshold whose false-accept rate on `impostors` is at most `far` (sorts
/// `impostors`, highest first). With no impostor scores every score is refused (1.0 and above).
pub fn threshold_at_far(impostors: &mut [f32], far: f64) -> f32 {
    impostors.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * impostors.len() as f64).floor() as usize;
    impostors.get(allowed).map_or(1.0, |s| s.next_up())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_threshold_admits_at_most_the_allowed_impostors() {
        let mut impostors: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let t = threshold_at_far(&mut impostors, 1e-2);
        let accepted = impostors.iter().filter(|s| **s >= t).count();
        assert_eq!(accepted, 10);
    }

    #[test]
    fn ties_at_the_cut_are_all_refused() {
        let mut impostors = vec![0.9; 100];
        let t = threshold_at_far(&mut impostors, 0.05);
        assert_eq!(impostors.iter().filter(|s| **s >= t).count(), 0);
    }
}

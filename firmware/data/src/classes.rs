//! The 14 face-part classes (the Mut1ny scheme) and how they are stored in masks.
//!
//! "Left" and "right" are as seen in a frontal image: the left eye is the one with the smaller x.
//! Mirroring an image therefore swaps every left/right pair ([`FaceClass::mirrored`]).

/// Mask value for pixels whose class is unknown (a loss must ignore them).
pub const UNLABELLED: u8 = 255;

pub const NUM_CLASSES: usize = 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FaceClass {
    Background = 0,
    Skin = 1,
    Hair = 2,
    LeftEye = 3,
    RightEye = 4,
    LeftBrow = 5,
    RightBrow = 6,
    Nose = 7,
    Lips = 8,
    Teeth = 9,
    LeftEar = 10,
    RightEar = 11,
    FacialHair = 12,
    Spectacles = 13,
}

impl FaceClass {
    pub const ALL: [FaceClass; NUM_CLASSES] = [
        Self::Background,
        Self::Skin,
        Self::Hair,
        Self::LeftEye,
        Self::RightEye,
        Self::LeftBrow,
        Self::RightBrow,
        Self::Nose,
        Self::Lips,
        Self::Teeth,
        Self::LeftEar,
        Self::RightEar,
        Self::FacialHair,
        Self::Spectacles,
    ];

    pub fn from_index(i: u8) -> Option<Self> {
        Self::ALL.get(i as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Background => "background",
            Self::Skin => "skin",
            Self::Hair => "hair",
            Self::LeftEye => "left_eye",
            Self::RightEye => "right_eye",
            Self::LeftBrow => "left_brow",
            Self::RightBrow => "right_brow",
            Self::Nose => "nose",
            Self::Lips => "lips",
            Self::Teeth => "teeth",
            Self::LeftEar => "left_ear",
            Self::RightEar => "right_ear",
            Self::FacialHair => "facial_hair",
            Self::Spectacles => "spectacles",
        }
    }

    /// The class this one becomes in a horizontally mirrored image.
    pub fn mirrored(self) -> Self {
        match self {
            Self::LeftEye => Self::RightEye,
            Self::RightEye => Self::LeftEye,
            Self::LeftBrow => Self::RightBrow,
            Self::RightBrow => Self::LeftBrow,
            Self::LeftEar => Self::RightEar,
            Self::RightEar => Self::LeftEar,
            other => other,
        }
    }

    /// Overlay colour for contact sheets.
    pub fn colour(self) -> [u8; 3] {
        const PALETTE: [[u8; 3]; NUM_CLASSES] = [
            [0, 0, 0],
            [230, 180, 140],
            [120, 60, 20],
            [0, 120, 255],
            [0, 220, 255],
            [160, 0, 200],
            [255, 0, 200],
            [255, 140, 0],
            [220, 0, 40],
            [255, 255, 255],
            [0, 160, 60],
            [120, 255, 120],
            [90, 90, 0],
            [255, 255, 0],
        ];
        PALETTE[self as usize]
    }
}

/// Mirror a mask value (unlabelled stays unlabelled).
pub fn mirror_label(v: u8) -> u8 {
    FaceClass::from_index(v).map_or(v, |c| c.mirrored() as u8)
}

/// Which classes a mask is authoritative for; pixels of other classes are stored as
/// [`UNLABELLED`]. Real part-label sets only know a few classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelledClasses(pub u16);

impl LabelledClasses {
    pub const ALL: Self = Self((1 << NUM_CLASSES) - 1);

    pub fn of(classes: &[FaceClass]) -> Self {
        Self(classes.iter().fold(0, |acc, c| acc | 1 << *c as u16))
    }

    pub fn contains(self, c: FaceClass) -> bool {
        self.0 & (1 << c as u16) != 0
    }
}

impl LabelledClasses {
    /// The classes a pixel stored as `label` may truly be, as a bit set over [`FaceClass`].
    /// With every class labelled that is `label` alone. A hair/skin/background mask (LFW Part
    /// Labels) calls the whole face "skin", so there "skin" admits every face part and "hair"
    /// admits facial hair too. [`UNLABELLED`] admits nothing (the pixel is ignored).
    pub fn admissible(self, label: u8) -> u16 {
        let Some(class) = FaceClass::from_index(label) else { return 0 };
        if self == Self::ALL {
            return 1 << class as u16;
        }
        let unknown = !self.0 & Self::ALL.0;
        match class {
            FaceClass::Skin => (1 << FaceClass::Skin as u16) | (unknown & !(1 << FaceClass::FacialHair as u16)),
            FaceClass::Hair => (1 << FaceClass::Hair as u16) | (unknown & (1 << FaceClass::FacialHair as u16)),
            other => 1 << other as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_skin_admits_every_face_part_but_not_hair_or_background() {
        let coarse = LabelledClasses::of(&[FaceClass::Background, FaceClass::Skin, FaceClass::Hair]);
        let skin = coarse.admissible(FaceClass::Skin as u8);
        for c in [FaceClass::Skin, FaceClass::LeftEye, FaceClass::Lips, FaceClass::Spectacles] {
            assert!(skin & (1 << c as u16) != 0, "{c:?}");
        }
        for c in [FaceClass::Background, FaceClass::Hair, FaceClass::FacialHair] {
            assert!(skin & (1 << c as u16) == 0, "{c:?}");
        }
        assert_eq!(coarse.admissible(FaceClass::Background as u8), 1);
        assert_eq!(LabelledClasses::ALL.admissible(FaceClass::Nose as u8), 1 << 7);
        assert_eq!(LabelledClasses::ALL.admissible(UNLABELLED), 0);
    }

    #[test]
    fn mirroring_twice_is_the_identity() {
        for c in FaceClass::ALL {
            assert_eq!(c.mirrored().mirrored(), c);
        }
        assert_eq!(mirror_label(FaceClass::LeftEar as u8), FaceClass::RightEar as u8);
    }
}

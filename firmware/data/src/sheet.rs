//! Contact sheets (image | mask overlay, side by side) and class-frequency tables.

use crate::classes::{FaceClass, NUM_CLASSES};
use crate::synth::{Generator, View};
use image::{GrayImage, RgbImage};

/// `image` with every labelled pixel blended 55 % towards its class colour.
pub fn overlay(image: &RgbImage, mask: &GrayImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        match FaceClass::from_index(mask.get_pixel(x, y).0[0]) {
            None | Some(FaceClass::Background) => image::Rgb(p),
            Some(c) => {
                let k = c.colour();
                image::Rgb([0, 1, 2].map(|i| (p[i] as f32 * 0.45 + k[i] as f32 * 0.55) as u8))
            }
        }
    })
}

/// Lay out `(image, mask)` cells, each as image | overlay, `columns` cells per row.
pub fn contact_sheet(cells: &[(RgbImage, GrayImage)], columns: u32) -> RgbImage {
    let pairs: Vec<(RgbImage, RgbImage)> = cells.iter().map(|(img, mask)| (img.clone(), overlay(img, mask))).collect();
    side_by_side(&pairs, columns)
}

/// Lay out `(left, right)` cells of one size side by side, `columns` cells per row.
pub fn side_by_side(cells: &[(RgbImage, RgbImage)], columns: u32) -> RgbImage {
    let (w, h) = cells.first().map_or((1, 1), |(i, _)| i.dimensions());
    let rows = (cells.len() as u32).div_ceil(columns);
    let mut sheet = RgbImage::from_pixel(columns * 2 * w, rows * h, image::Rgb([255, 255, 255]));
    for (k, (left, right)) in cells.iter().enumerate() {
        let (cx, cy) = ((k as u32 % columns) * 2 * w, (k as u32 / columns) * h);
        image::imageops::replace(&mut sheet, left, cx as i64, cy as i64);
        image::imageops::replace(&mut sheet, right, (cx + w) as i64, cy as i64);
    }
    sheet
}

/// Twelve people in the poses of [`pose_sweep`], each bare | wearing a mask of another style
/// ([`crate::masks`]), placed from the generator's landmarks as it is from a detector's.
pub fn mask_sheet(generator: &Generator, first_person: u32) -> RgbImage {
    let cells: Vec<_> = pose_sweep()
        .iter()
        .zip(first_person..)
        .map(|(view, p)| {
            let face = generator.render(&generator.identity(p), view);
            let mut masked = face.image.clone();
            // Profiles whose landmarks collapse onto a line keep their bare face.
            let _ = crate::masks::draw_mask(&mut masked, &face.landmarks, &crate::masks::MaskStyle::random(u64::from(p)));
            (face.image, masked)
        })
        .collect();
    side_by_side(&cells, 4)
}

/// Twelve poses spanning the generator's range, for the pose contact sheet.
pub fn pose_sweep() -> Vec<View> {
    [(-90.0, 0.0), (-60.0, 10.0), (-30.0, 0.0), (0.0, 0.0), (30.0, -10.0), (60.0, 0.0), (90.0, 0.0), (0.0, 40.0), (0.0, -40.0), (-45.0, 30.0), (45.0, -30.0), (20.0, 15.0)]
        .into_iter()
        .enumerate()
        .map(|(i, (yaw, pitch))| View { background_seed: i as u32 + 7, ..View::posed(yaw, pitch, if i % 4 == 3 { 12.0 } else { 0.0 }) })
        .collect()
}

/// One person in the twelve poses of [`pose_sweep`].
pub fn pose_sheet(generator: &Generator, person: u32) -> RgbImage {
    let id = generator.identity(person);
    let cells: Vec<_> = pose_sweep().iter().map(|v| generator.render(&id, v)).map(|r| (r.image, r.mask)).collect();
    contact_sheet(&cells, 4)
}

/// Twelve people, frontal.
pub fn people_sheet(generator: &Generator, first_person: u32) -> RgbImage {
    let cells: Vec<_> = (first_person..first_person + 12)
        .map(|p| generator.render(&generator.identity(p), &View { background_seed: p + 3, ..View::frontal() }))
        .map(|r| (r.image, r.mask))
        .collect();
    contact_sheet(&cells, 4)
}

/// Per class: pixels carrying it and images containing it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassFrequency {
    pub pixels: [u64; NUM_CLASSES],
    pub images: [u64; NUM_CLASSES],
    pub total_images: u64,
}

impl ClassFrequency {
    pub fn add(&mut self, mask: &GrayImage) {
        let mut seen = [false; NUM_CLASSES];
        for p in mask.pixels() {
            if let Some(slot) = self.pixels.get_mut(p.0[0] as usize) {
                *slot += 1;
                seen[p.0[0] as usize] = true;
            }
        }
        for (count, s) in self.images.iter_mut().zip(seen) {
            *count += s as u64;
        }
        self.total_images += 1;
    }

    /// A Markdown table: class, % of pixels, % of images containing it.
    pub fn table(&self) -> String {
        let total: u64 = self.pixels.iter().sum::<u64>().max(1);
        let mut s = String::from("| class | pixels % | images containing % |\n|---|---:|---:|\n");
        for c in FaceClass::ALL {
            let i = c as usize;
            s += &format!(
                "| {} | {:.3} | {:.1} |\n",
                c.name(),
                100.0 * self.pixels[i] as f64 / total as f64,
                100.0 * self.images[i] as f64 / self.total_images.max(1) as f64
            );
        }
        s
    }
}

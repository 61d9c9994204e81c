//! Template distillation from a strong face teacher (issue 26; the mechanism of MaskInv, on bare
//! faces): the Seg-Distilled-ID student regresses the teacher's embedding of each face,
//! centred ([`crate::model::Centring`]), beside the segmentation teacher's loss and an optional
//! identity loss.
//!
//! - [`templates`]: a teacher's embeddings of an image set (`index.txt` + `teacher.safetensors`,
//!   the layout of `../shared/data/lfw-teacher`), read and written;
//! - [`teacher`]: running a teacher ONNX on its own chip to make such a set (`teacher-embed`);
//! - [`data`]: the faces with targets (LFW folds 1-5, their Part Labels photos, faces-extra) and
//!   the generated faces the segmentation teacher also learns from;
//! - [`generated_id`]: the generated people's identity term (the teacher cannot tell them apart);
//! - [`training`]: the loss and the step loop, in images seen.

pub mod data;
pub mod generated_id;
pub mod teacher;
pub mod templates;
pub mod training;

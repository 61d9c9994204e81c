//! Train the landmark refiner a few steps on generated faces → export ONNX → the firmware's
//! refiner loads it under the manifest's contract, its raw output equals Burn's within 1e-4,
//! and a contract that disagrees with the file is refused.

use burn::backend::Autodiff;
use burn::tensor::{Tensor as BurnTensor, TensorData};
use faceunlock::detect::{DetectError, Detection, FaceDetector};
use faceunlock::refine::{LandmarkRefiner, Refined};
use faceunlock_core::geometry::Landmarks5;
use faceunlock_core::refine::{crop_spec, decode};
use trainer::detector::eval::generated_sources;
use trainer::refiner::data::NORMALIZATION;
use trainer::refiner::export::{export_refiner, refiner_entry};
use trainer::refiner::model::RefinerConfig;
use trainer::refiner::training::{RefinerTrainConfig, load_trained, train};

type B = burn::backend::Flex;

/// A detector that always reports the same face.
struct Fixed(Detection);

impl FaceDetector for Fixed {
    fn detect(&mut self, _: &image::RgbImage) -> Result<&[Detection], DetectError> {
        Ok(std::slice::from_ref(&self.0))
    }
}

#[test]
fn trained_exported_refiner_matches_burn_through_the_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let sources = generated_sources(9, 0, 3, 2);
    let (train_set, val_set) = sources.split_at(4);
    let cfg = RefinerTrainConfig::new(RefinerConfig::new().with_crop(32)).with_batch_size(4).with_steps(3);
    let run = dir.path().join("run");
    let report = train::<Autodiff<B>>(&cfg, train_set, val_set, &run, &Default::default()).unwrap();
    assert_eq!(report.state.steps_done, 3);

    let device = Default::default();
    let (cfg, net) = load_trained::<B>(&run, &device).unwrap();
    let onnx = export_refiner(&net, cfg.model.crop);
    let path = dir.path().join("refiner.onnx");
    let entry = refiner_entry("refiner.onnx", faceunlock_core::contract::sha256_hex(&onnx), 32, 1);

    // The face as the detector placed it; what the firmware makes of it.
    let frame = &sources[5].image;
    let detected = sources[5].faces[0].landmarks;
    let face = Detection { face_box: sources[5].faces[0].face_box, score: 0.9, landmarks: detected };
    let refiner = LandmarkRefiner::from_bytes(&path, &onnx, &entry).unwrap();
    let mut refined = Refined::new(Fixed(face), refiner);
    let got = refined.detect(frame).unwrap()[0];
    assert_eq!((got.face_box, got.score), (face.face_box, face.score), "only the landmarks change");

    // Burn on the same crop, mapped back to the frame the same way.
    let spec = crop_spec(32);
    let mut aligner = faceunlock_core::align::Aligner::new(spec);
    let crop = aligner.align(frame, &detected).unwrap();
    let out = net.forward(BurnTensor::from_data(TensorData::new(NORMALIZATION.to_chw(crop), [1, 3, 32, 32]), &device)).into_data().to_vec::<f32>().unwrap();
    let to_frame = aligner.crop_to_frame(&detected, &faceunlock_core::geometry::Similarity::IDENTITY).unwrap();
    let want: Landmarks5 = decode(&out, &spec).transformed(&to_frame);
    let worst = got.landmarks.0.iter().flatten().zip(want.0.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-3, "refined landmarks differ from Burn's by {worst} px");

    // A manifest that promises another crop size is refused, naming the file.
    let wrong = refiner_entry("refiner.onnx", String::new(), 64, 1);
    let err = LandmarkRefiner::from_bytes(&path, &onnx, &wrong).err().expect("a 64-px contract accepted a 32-px refiner").to_string();
    assert!(err.contains("refiner.onnx"), "{err}");
}

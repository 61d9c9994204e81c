//! Train the detector a few steps on generated faces → export ONNX → run it in tract: every
//! output (YuNet's layout, the score calibrated by a logit shift) equals Burn's within 1e-4, and
//! the firmware's decoder accepts it.

use burn::backend::Autodiff;
use burn::tensor::{Tensor as BurnTensor, TensorData};
use burn::tensor::activation::sigmoid;
use faceunlock::detect::{FaceDetector, YuNet};
use faceunlock_core::grid::STRIDES;
use trainer::detector::eval::generated_sources;
use trainer::detector::model::DetectorConfig;
use trainer::detector::training::{DetectorTrainConfig, load_trained, train};
use tract_onnx::prelude::*;

type B = burn::backend::Flex;

/// `[1, C, H, W]` → values in `[1, H·W, C]` order.
fn cells_last(t: BurnTensor<B, 4>) -> Vec<f32> {
    let [n, c, h, w] = t.dims();
    t.permute([0, 2, 3, 1]).reshape([n, h * w * c]).into_data().to_vec::<f32>().unwrap()
}

#[test]
fn trained_exported_detector_matches_burn_in_tract() {
    let dir = tempfile::tempdir().unwrap();
    let sources = generated_sources(9, 0, 3, 2);
    let (train_set, val_set) = sources.split_at(4);
    let cfg = DetectorTrainConfig::new(DetectorConfig::new().with_top_down(Some(true))).with_input([64, 64]).with_batch_size(4).with_steps(3);
    let run = dir.path().join("run");
    let report = train::<Autodiff<B>>(&cfg, train_set, val_set, &run, &Default::default()).unwrap();
    assert_eq!(report.state.steps_done, 3);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "header + the last step's row:\n{csv}");
    // The run resumes from its checkpoint: already complete, it adds no step and no row.
    let again = train::<Autodiff<B>>(&cfg, train_set, val_set, &run, &Default::default()).unwrap();
    assert_eq!((again.state.steps_done, again.state.best_step), (3, report.state.best_step));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap(), csv);

    let device = Default::default();
    let (_, net) = load_trained::<B>(&run, &device).unwrap();
    // Exported calibrated: the firmware's 0.6 acts as 0.4 of the trained net.
    let shift = trainer::detector::export::score_shift(0.4, 0.6);
    let onnx = trainer::detector::export::export_detector(&net, shift);

    // A generated frame, at a size other than the training one (the graph is size-agnostic).
    let (w, h) = (96usize, 64usize);
    let frame = image::imageops::resize(&sources[5].image, w as u32, h as u32, image::imageops::FilterType::Triangle);
    let plane = w * h;
    let mut pixels = vec![0.0f32; 3 * plane];
    for (i, px) in frame.as_raw().chunks_exact(3).enumerate() {
        (pixels[i], pixels[plane + i], pixels[2 * plane + i]) = (px[2] as f32, px[1] as f32, px[0] as f32);
    }
    let levels = net.forward(BurnTensor::from_data(TensorData::new(pixels.clone(), [1, 3, h, w]), &device));

    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let out = model.run(tvec!(tract_ndarray::Array4::from_shape_vec((1, 3, h, w), pixels).unwrap().into_tensor().into())).unwrap();
    let names: Vec<String> = STRIDES.iter().flat_map(|s| ["cls", "obj", "bbox", "kps"].map(|k| format!("{k}_{s}"))).collect();
    assert_eq!(out.len(), names.len());
    let mut worst = 0.0f32;
    for (k, level) in levels.into_iter().enumerate() {
        let prob = cells_last(sigmoid(level.score.add_scalar(shift)));
        let expected = [prob.clone(), prob, cells_last(level.bbox), cells_last(level.kps)];
        for (j, want) in expected.iter().enumerate() {
            let got = out[4 * k + j].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
            assert_eq!(got.len(), want.len(), "{}", names[4 * k + j]);
            worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
        }
    }
    assert!(worst <= 1e-4, "max abs difference tract vs Burn: {worst}");

    // The manifest's contract names the input; a mismatch is refused with both names.
    let wrong = YuNet::with_contract(&run.join("detector.onnx"), &onnx, [w as u32, h as u32], Some("image")).err().expect("wrong input name accepted");
    assert!(wrong.to_string().contains("`input`") && wrong.to_string().contains("`image`"), "{wrong}");
    // The firmware's YuNet decoder loads it by output name and runs it.
    let mut det = YuNet::with_contract(&run.join("detector.onnx"), &onnx, [w as u32, h as u32], Some(trainer::detector::export::INPUT_NAME)).unwrap();
    det.score_threshold = 0.0;
    assert!(!det.detect(&frame).unwrap().is_empty(), "with threshold 0 every cell is a candidate");

    // A second schedule starts from this run's weights: at rate 0 its step leaves them as they
    // were (only batch-norm statistics move), so it holds the first run's landmark head.
    let second = dir.path().join("second");
    let from_run = cfg.clone().with_init_from(Some(run.display().to_string())).with_learning_rate(0.0).with_steps(1);
    train::<Autodiff<B>>(&from_run, train_set, val_set, &second, &Default::default()).unwrap();
    let (_, continued) = load_trained::<B>(&second, &device).unwrap();
    let kps_weights = |n: &trainer::detector::model::DetectorNet<B>| n.heads[0].kps.weight.val().into_data().to_vec::<f32>().unwrap();
    assert_eq!(kps_weights(&continued), kps_weights(&net), "the second schedule did not start from the first run's weights");
    // Another architecture is refused, naming the run it was to start from.
    let other = DetectorTrainConfig { model: DetectorConfig::new().with_top_down(Some(false)), ..from_run.clone() };
    let err = train::<Autodiff<B>>(&other, train_set, val_set, &dir.path().join("third"), &Default::default()).err().expect("another architecture accepted");
    assert!(format!("{err:#}").contains(&run.display().to_string()), "{err:#}");
}

/// The shipped detector (the repository's own, YuNet's contract) as a dense teacher: its targets
/// on a generated frame decode, at the cells whose face probability passes the firmware's
/// threshold, to exactly the faces the firmware's decoder reports; a student learns from them.
#[test]
fn dense_teacher_targets_are_the_teachers_own_detections() {
    use faceunlock_core::grid::decode;
    use trainer::detector::targets::{CHANNELS, cell_count};
    use trainer::detector::teacher::DenseTeacher;
    let teacher_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/detector.onnx");
    let size = [128usize, 128];
    let mut sources = generated_sources(5, 0, 4, 2);
    let frame = image::imageops::resize(&sources[0].image, 128, 128, image::imageops::FilterType::Triangle);
    let teacher = DenseTeacher::open(&teacher_file, size).unwrap();
    let t = teacher.targets(&frame);
    let cells = cell_count(size);
    assert_eq!(t.len(), CHANNELS * cells);
    let mut firmware = YuNet::from_file(&teacher_file, [128, 128]).unwrap();
    let found = firmware.detect(&frame).unwrap().to_vec();
    assert!(!found.is_empty(), "the shipped detector finds the generated face");
    let mut base = 0;
    let mut decoded = Vec::new();
    for stride in STRIDES {
        let cols = size[0] / stride;
        for i in base..base + cols * (size[1] / stride) {
            if t[i] >= 0.6 {
                let (bbox, kps): (Vec<f32>, Vec<f32>) = ((0..4).map(|c| t[(2 + c) * cells + i]).collect(), (0..10).map(|c| t[(6 + c) * cells + i]).collect());
                decoded.push((t[i], decode((i - base) % cols, (i - base) / cols, stride, &bbox, &kps)));
            }
        }
        base += cols * (size[1] / stride);
    }
    for d in &found {
        let same = |(q, f): &(f32, faceunlock_core::grid::GridFace)| (q - d.score).abs() < 1e-6 && f.face_box == d.face_box && f.landmarks == d.landmarks;
        assert!(decoded.iter().any(same), "detection {d:?} is not among the targets' faces {decoded:?}");
    }
    // Another frame size is refused, naming both sizes.
    let wrong = firmware.maps(&sources[0].image).unwrap_err();
    assert!(wrong.to_string().contains("[128, 128]"), "{wrong}");

    // Two steps of a student on those targets (every source teacher-labelled) learn something finite.
    sources.iter_mut().for_each(|s| s.teacher_labelled = true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = DetectorTrainConfig::new(DetectorConfig::new()).with_input(size).with_batch_size(2).with_steps(2).with_dense_teacher(Some(teacher_file.display().to_string()));
    let (train_set, val_set) = sources.split_at(6);
    let report = train::<Autodiff<B>>(&cfg, train_set, val_set, dir.path(), &Default::default()).unwrap();
    assert_eq!(report.state.steps_done, 2);
    assert!(report.state.best_val_loss.is_some_and(f64::is_finite), "{:?}", report.state.best_val_loss);
}

//! Train a few steps on generated faces → export ONNX → run it in tract: the embeddings must
//! equal Burn's within 1e-4 (max abs, after L2 normalisation).

use burn::backend::Autodiff;
use faceunlock::embed::Embedder;
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::synth::{Generator, writer::write_dataset};
use faceunlock_data::synth_set::SynthSet;
use trainer::model::{EncoderConfig, ModelConfig};
use trainer::training::{TrainConfig, load_trained, train};

type B = burn::backend::Flex;

#[test]
fn trained_exported_model_matches_burn_in_tract() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    write_dataset(&Generator::new(5), 3, 4, &data, &|_| {}).unwrap();
    let set = SynthSet::open(&data).unwrap();
    let refs = set.samples();
    let (train_refs, val_refs) = refs.split_at(8);

    let cfg = TrainConfig::new(ModelConfig::new(EncoderConfig::new(), 3).with_decoder_widths([32, 32, 16, 16]))
        .with_batch_size(4)
        .with_max_epochs(1)
        .with_steps_per_epoch(Some(2));
    let run = dir.path().join("run");
    let report = train::<Autodiff<B>>(&cfg, train_refs, val_refs, &run, &Default::default()).unwrap();
    assert_eq!(report.state.epochs_done, 1);
    assert!(report.last_val.loss.is_finite() && report.last_val.loss > 0.0);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "header + one epoch:\n{csv}");

    let device = Default::default();
    let (_, model) = load_trained::<B>(&run, &device).unwrap();
    let onnx = trainer::export::export_onnx(&model.encoder, &model.id_head);
    let entry = trainer::export::embedder_entry("test.onnx", String::new());
    let mut embedder = Embedder::from_bytes(&run.join("test.onnx"), &onnx, &entry).unwrap();

    let mut aligner = Aligner::new(CropSpec::default());
    let crops: Vec<_> = val_refs
        .iter()
        .map(|r| {
            let s = r.load().unwrap();
            aligner.align(&s.image, &s.landmarks.unwrap()).unwrap().clone()
        })
        .collect();
    let burn_embeddings = trainer::inference::embed_crops((&model.encoder, &model.id_head), &crops, &device);
    let mut worst = 0.0f32;
    for (crop, reference) in crops.iter().zip(&burn_embeddings) {
        let got = embedder.embed(crop).unwrap();
        for (a, b) in got.iter().zip(reference) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= 1e-4, "tract vs Burn max abs difference {worst}");
    // The ID-only ablation builds no teacher; the joint model's shipped path is ~2.4M parameters.
    assert!(model.teacher.is_some());
    let shipped = model.shipped_parameters();
    assert_eq!(shipped, 2_223_872 + 1280 * 128 + 128, "torchvision MobileNetV2 features + the embedding layer");
    // Folding turns each of the 17,056 batch-norm channels' scale and shift into one conv bias.
    assert_eq!(trainer::export::onnx_parameters(&onnx).unwrap(), shipped as u64 - 17_056);
    assert!(trainer::export::onnx_parameters(b"not a model").is_err());
}

//! Train a few steps on generated faces → export ONNX → run it in tract: the embeddings must
//! equal Burn's within 1e-4 (max abs, after L2 normalisation). Then fine-tune that run with
//! ArcFace's margin (`init_from` + `arc`): it starts from the run's weights, exports without the
//! ReLU, and resumes after the run it started from is gone.

use burn::backend::Autodiff;
use faceunlock::embed::Embedder;
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::synth::{Generator, writer::write_dataset};
use faceunlock_data::synth_set::SynthSet;
use faceunlock_data::sample::SampleRef;
use trainer::model::{ArcMargin, EncoderConfig, ModelConfig, SegDistilledId};
use trainer::training::{TrainConfig, init_model, load_trained, train};

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
    let tract_embeddings = exported_embeddings_match_burn(&model, &onnx, val_refs, &run);
    assert!(tract_embeddings.iter().flatten().all(|v| *v >= 0.0), "a softmax-trained embedding comes out of a ReLU");

    let arc = ArcMargin::new().with_margin(0.3);
    let fine_cfg = TrainConfig::new(cfg.model.clone().with_arc(Some(arc.clone()))).with_init_from(Some(run.display().to_string())).with_batch_size(4).with_max_epochs(1).with_steps_per_epoch(Some(2));
    let start = init_model::<B>(&fine_cfg, &device).unwrap();
    let probe = burn::tensor::Tensor::<B, 4>::random([1, 3, 128, 128], burn::tensor::Distribution::Default, &device);
    let (a, b) = (model.encoder.forward_top(probe.clone()), start.encoder.forward_top(probe));
    assert!(a.equal(b).all().into_scalar(), "fine-tuning starts from the run's weights");
    // A model of another shape (here: one more identity) is refused before any weight loads.
    let other = TrainConfig::new(ModelConfig { identities: 4, ..fine_cfg.model.clone() }).with_init_from(fine_cfg.init_from.clone());
    let refused = init_model::<B>(&other, &device).expect_err("a model of another shape accepted");
    assert!(format!("{refused:#}").contains(&run.display().to_string()) && format!("{refused:#}").contains("identities: 4"), "{refused:#}");
    let fine = dir.path().join("arc");
    train::<Autodiff<B>>(&fine_cfg, train_refs, val_refs, &fine, &Default::default()).unwrap();
    let (saved, tuned) = load_trained::<B>(&fine, &device).unwrap();
    assert_eq!(saved.model.arc, Some(arc), "config.json records the margin");
    assert!(tuned.id_head.arc.is_some());
    let arc_onnx = trainer::export::export_onnx(&tuned.encoder, &tuned.id_head);
    assert_eq!((last_op(&onnx), last_op(&arc_onnx)), ("Relu".into(), "Gemm".into()), "no ReLU on an angular-margin embedding");
    let arc_embeddings = exported_embeddings_match_burn(&tuned, &arc_onnx, val_refs, &fine);
    assert!(arc_embeddings.iter().flatten().any(|v| *v < 0.0), "the embedding layer's output has both signs");
    // The run it started from may be gone when the fine-tune resumes: the checkpoint suffices.
    std::fs::remove_dir_all(&run).unwrap();
    let resumed = train::<Autodiff<B>>(&fine_cfg.with_max_epochs(2), train_refs, val_refs, &fine, &Default::default()).unwrap();
    assert_eq!(resumed.state.epochs_done, 2);

    // The ID-only ablation builds no teacher; the joint model's shipped path is ~2.4M parameters.
    assert!(model.teacher.is_some());
    let shipped = model.shipped_parameters();
    assert_eq!(shipped, 2_223_872 + 1280 * 128 + 128, "torchvision MobileNetV2 features + the embedding layer");
    // Folding turns each of the 17,056 batch-norm channels' scale and shift into one conv bias.
    assert_eq!(trainer::export::onnx_parameters(&onnx).unwrap(), shipped as u64 - 17_056);
    assert!(trainer::export::onnx_parameters(b"not a model").is_err());
}

/// Embed `refs`' aligned faces with `onnx` in tract and with `model` in Burn: equal within 1e-4.
/// Returns tract's embeddings.
fn exported_embeddings_match_burn(model: &SegDistilledId<B>, onnx: &[u8], refs: &[SampleRef], dir: &std::path::Path) -> Vec<Vec<f32>> {
    let entry = trainer::export::embedder_entry("test.onnx", String::new());
    let mut embedder = Embedder::from_bytes(&dir.join("test.onnx"), onnx, &entry).unwrap();
    let mut aligner = Aligner::new(CropSpec::default());
    let crops: Vec<_> = refs
        .iter()
        .map(|r| {
            let s = r.load().unwrap();
            aligner.align(&s.image, &s.landmarks.unwrap()).unwrap().clone()
        })
        .collect();
    let burn_embeddings = trainer::inference::embed_crops((&model.encoder, &model.id_head), &crops, &Default::default());
    let tract_embeddings: Vec<Vec<f32>> = crops.iter().map(|c| embedder.embed(c).unwrap().to_vec()).collect();
    let worst = tract_embeddings.iter().flatten().zip(burn_embeddings.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "tract vs Burn max abs difference {worst}");
    tract_embeddings
}

/// The operator writing the exported model's output.
fn last_op(onnx: &[u8]) -> String {
    use prost::Message;
    tract_onnx::pb::ModelProto::decode(onnx).unwrap().graph.unwrap().node.last().unwrap().op_type.clone()
}

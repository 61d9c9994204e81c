//! Template distillation end to end on generated faces with made-up teacher templates (a
//! narrow cone, like the real teacher's): a run paused after its first step and resumed ends
//! with the weights of the same run left alone; its CSV counts images seen; the export folds the
//! centring into the embedding layer, so tract's output is the student's plus k·μ (and the
//! mirror-averaging export's the mean of the crop's and its mirror image's); a run continued
//! with the generated people's identity term goes on from its origin's step, and with frozen
//! statistics keeps its origin's batch-norm statistics.

use burn::backend::Autodiff;
use burn::prelude::*;
use faceunlock::embed::Embedder;
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::synth::{Generator, writer::write_dataset};
use faceunlock_data::sample::SampleRef;
use faceunlock_data::synth_set::SynthSet;
use rand::{Rng, SeedableRng};
use trainer::kd::data::{KdData, KdFace};
use trainer::kd::generated_id::{GeneratedIdConfig, TemplateSpace};
use trainer::kd::training::{KdConfig, Pacing, distil, fit_centring, load_kd_run};
use trainer::model::{EncoderConfig, ModelConfig, SegDistilledId};

type B = burn::backend::Flex;
const DIM: usize = 128;

/// Unit templates around one direction (cosine ≈ 0.9 between people), the mirror close to the image.
fn cone_templates(rows: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let axis: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
    let unit = |v: Vec<f32>| { let n = v.iter().map(|x| x * x).sum::<f32>().sqrt(); v.into_iter().map(|x| x / n).collect::<Vec<f32>>() };
    let axis = unit(axis);
    (0..rows)
        .flat_map(|_| {
            let image = unit(axis.iter().map(|a| a * 3.0 + rng.random_range(-0.5..0.5)).collect());
            let mirror = unit(image.iter().map(|a| a + rng.random_range(-0.02..0.02)).collect());
            image.into_iter().chain(mirror)
        })
        .collect()
}

/// Three generated people of four views each, the first eight faces with made-up templates
/// trained on, the rest held out; a schedule of 3 steps of 3 faces (and 2 generated ones).
fn three_people(dir: &std::path::Path) -> (Vec<SampleRef>, KdData, KdConfig) {
    let synth = dir.join("synth");
    write_dataset(&Generator::new(11), 3, 4, &synth, &|_| {}).unwrap();
    let refs = SynthSet::open(&synth).unwrap().samples();
    let faces: Vec<KdFace> = refs.iter().enumerate().map(|(row, r)| KdFace { sample: without_mask(r), row }).collect();
    let data = KdData { train: faces[..8].to_vec(), holdout: faces[8..].to_vec(), templates: cone_templates(refs.len(), 2), dim: DIM, identities: 3, generated: refs.clone(), generated_people: 3 };
    let centring = fit_centring(&data).unwrap();
    let model = ModelConfig::new(EncoderConfig::new(), 3).with_decoder_widths([32, 32, 16, 16]).with_centring(Some(centring));
    (refs, data, KdConfig::new(model).with_batch_size(3).with_seg_batch(2).with_images(9))
}

/// A run seeds the backend's generator, which is the whole process's: two tests' runs
/// interleaving would draw each other's starting weights.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pacing(pause: Option<f64>) -> Pacing {
    Pacing { pause_after_minutes: pause, snapshot_every: Some(1), checkpoint_every: 1 }
}

/// The `id` column of each row of a run's metrics.csv.
fn id_column(run: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().skip(1).map(|l| l.split(',').nth(5).unwrap().parse().unwrap()).collect()
}

#[test]
fn a_run_continued_with_the_generated_people_term_carries_on_from_its_origin_and_leaves_it_alone() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (_, data, cfg) = three_people(dir.path());
    let device = Default::default();
    let origin = dir.path().join("origin");
    distil::<Autodiff<B>>(&cfg, &data, &pacing(Some(0.0)), &origin, &device).unwrap();
    let origin_state = std::fs::read(origin.join("state.json")).unwrap();

    let continued = dir.path().join("continued");
    let cfg = cfg.with_generated_id(Some(GeneratedIdConfig::new(1.0).with_from_step(Some(1)).with_ramp_steps(Some(1)).with_space(Some(TemplateSpace::TeacherNull))))
        .with_continued_from(Some("origin at step 1".into()))
        .with_frozen_statistics(Some(true));
    trainer::checkpoint::continue_run(&origin, &continued, &cfg).unwrap();
    let report = distil::<Autodiff<B>>(&cfg, &data, &pacing(None), &continued, &device).unwrap();
    assert_eq!(report.state.steps_done, 3, "the schedule goes on from the origin's step 1");
    let ids = id_column(&continued);
    assert_eq!(ids.len(), 3, "the origin's row, then two of the continued run");
    assert!(ids[0] == 0.0 && ids[1] > 0.0 && ids[2] > 0.0, "the identity term starts with the continuation: {ids:?}");
    assert_eq!(std::fs::read(origin.join("state.json")).unwrap(), origin_state, "the origin is left as it was");
    assert_eq!(id_column(&origin).len(), 1);
    // Frozen statistics: the encoder's batch norms kept the origin's running statistics while
    // its weights trained on.
    let (_, before) = load_kd_run::<B>(&origin, Some("model"), &device).unwrap();
    let (_, after) = load_kd_run::<B>(&continued, Some("model"), &device).unwrap();
    let statistics = |m: &SegDistilledId<B>| m.encoder.units().flat_map(|u| [u.bn.running_mean.value(), u.bn.running_var.value()]).flat_map(|t| t.into_data().to_vec::<f32>().unwrap()).collect::<Vec<_>>();
    assert!(statistics(&before) == statistics(&after), "the running statistics moved");
    assert_ne!(weights(&before), weights(&after), "the weights did not train");

    // A run started before the term existed (its config.json without the new fields) loads as
    // one without it.
    let mut old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(origin.join("config.json")).unwrap()).unwrap();
    let fields = old.as_object_mut().unwrap();
    assert!(["generated_id", "continued_from", "frozen_statistics", "mask_probability"].iter().all(|f| fields.remove(*f).is_some()));
    let old_config = dir.path().join("old.json");
    std::fs::write(&old_config, old.to_string()).unwrap();
    let old = KdConfig::load(&old_config).unwrap();
    assert_eq!((old.generated_id, old.frozen_statistics, old.mask_probability), (None, None, None));

    let Err(e) = trainer::checkpoint::continue_run(&origin, &continued, &cfg) else { panic!("continued into a run") };
    assert!(e.to_string().contains("already holds a run"), "{e}");
    let Err(e) = trainer::checkpoint::continue_run(&dir.path().join("nothing"), &dir.path().join("new"), &cfg) else { panic!("continued from nothing") };
    assert!(e.to_string().contains("no checkpoint to continue from"), "{e}");
}

#[test]
fn a_kd_only_run_draws_generated_faces_for_the_generated_people_term_alone() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (_, data, mut cfg) = three_people(dir.path());
    cfg.model.teacher = false;
    let device = Default::default();
    let plain = dir.path().join("kd-only");
    distil::<Autodiff<B>>(&cfg, &data, &pacing(None), &plain, &device).unwrap();
    assert_eq!(id_column(&plain), [0.0; 3], "no term, nothing in its column");
    let with_term = dir.path().join("kd-only-term");
    let cfg = cfg.with_generated_id(Some(GeneratedIdConfig::new(1.0).with_ramp_steps(Some(1)).with_space(Some(TemplateSpace::TeacherNull))));
    distil::<Autodiff<B>>(&cfg, &data, &pacing(None), &with_term, &device).unwrap();
    let ids = id_column(&with_term);
    assert!(ids.len() == 3 && ids.iter().all(|v| *v > 0.0), "the term on the generated faces of every step: {ids:?}");
}

fn weights(model: &SegDistilledId<B>) -> Vec<f32> {
    let mut w = model.id_head.embed.weight.val().into_data().to_vec::<f32>().unwrap();
    w.extend(model.encoder.head.conv.weight.val().into_data().to_vec::<f32>().unwrap());
    w
}

#[test]
fn a_paused_distillation_resumes_exactly_and_exports_the_teachers_geometry() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (refs, data, cfg) = three_people(dir.path());
    let centring = cfg.model.centring.clone().unwrap();
    assert_eq!(cfg.steps(), 3);
    let device = Default::default();

    let straight = dir.path().join("straight");
    let report = distil::<Autodiff<B>>(&cfg, &data, &pacing(None), &straight, &device).unwrap();
    assert_eq!(report.state.steps_done, 3);
    let paused = dir.path().join("paused");
    let first = distil::<Autodiff<B>>(&cfg, &data, &pacing(Some(0.0)), &paused, &device).unwrap();
    assert_eq!((first.state.steps_done, first.state.planned_steps), (1, 3), "paused at the first checkpoint, schedule kept");
    let rest = distil::<Autodiff<B>>(&cfg, &data, &pacing(None), &paused, &device).unwrap();
    assert_eq!(rest.state.steps_done, 3);

    let (_, a) = load_kd_run::<B>(&straight, Some("snapshots/step-3"), &device).unwrap();
    let (_, b) = load_kd_run::<B>(&paused, Some("snapshots/step-3"), &device).unwrap();
    let worst = weights(&a).iter().zip(weights(&b)).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "the resumed run's weights differ from the uninterrupted run's by {worst}");
    let csv = std::fs::read_to_string(paused.join("metrics.csv")).unwrap();
    let images: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(images, ["3", "6", "9"], "one row per step, images seen counted across the pause:\n{csv}");
    assert_eq!(csv.lines().next().unwrap().split(',').take(7).collect::<Vec<_>>(), ["step", "images", "loss", "kd", "seg", "id", "cosine"]);

    // The export: encoder + embedding layer with k·μ folded into its bias, no ReLU.
    let (saved, model) = load_kd_run::<B>(&paused, None, &device).unwrap();
    assert_eq!(saved.model.centring.as_ref(), Some(&centring), "config.json records the centring");
    let head = centring.fold_into(model.id_head.clone());
    let onnx = trainer::export::export_onnx(&model.encoder, &head);
    let path = dir.path().join("student.onnx");
    std::fs::write(&path, &onnx).unwrap();
    let entry = trainer::export::embedder_entry("student.onnx", String::new());
    let mut embedder = Embedder::from_bytes(&path, &onnx, &entry).unwrap();
    let image = image::open(&refs[9].image).unwrap().to_rgb8();
    let mut aligner = Aligner::new(CropSpec::default());
    let crop = aligner.align(&image, &refs[9].landmarks.unwrap()).unwrap().clone();
    let raw = embedder.embed_raw(&crop).unwrap().to_vec();
    let input = Tensor::<B, 1>::from_floats(faceunlock_core::normalize::Normalization::IMAGENET.to_chw(&crop).as_slice(), &device).reshape([1, 3, 128, 128]);
    let student: Vec<f32> = model.embed(input).into_data().to_vec().unwrap();
    let worst = raw.iter().zip(&student).zip(&centring.mean).map(|((t, s), m)| (t - (s + m * centring.scale as f32)).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "tract's output differs from the student's + k·μ by {worst}");

    // Averaged over the crop and its mirror image: the mean of the single-view outputs.
    let averaging = trainer::export::export_onnx_views(&model.encoder, &head, trainer::export::Views::CropAndMirror);
    let mut both = Embedder::from_bytes(&path, &averaging, &entry).unwrap();
    let mirrored = embedder.embed_raw(&image::imageops::flip_horizontal(&crop)).unwrap().to_vec();
    let averaged = both.embed_raw(&crop).unwrap();
    let worst = averaged.iter().zip(raw.iter().zip(&mirrored)).map(|(a, (r, m))| (a - (r + m) / 2.0).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "the mirror-averaging export differs from the mean of the two views by {worst}");
    let apart = raw.iter().zip(&mirrored).map(|(r, m)| (r - m).abs()).fold(0.0f32, f32::max);
    assert!(apart > 1e3 * worst, "a generated face and its mirror image embed {apart} apart: too close to tell the average ({worst}) from either");
}

/// Generated faces stand in for real ones: their masks are dropped from the distilled faces (the
/// generated set itself still feeds the segmentation teacher).
fn without_mask(r: &SampleRef) -> SampleRef {
    SampleRef { mask: None, ..r.clone() }
}

#[test]
fn a_masked_run_regresses_the_bare_faces_templates_from_masked_faces() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (_, data, mut cfg) = three_people(dir.path());
    cfg.model.teacher = false;
    let device = Default::default();
    let first_row = |run: &std::path::Path| -> Vec<f64> {
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        csv.lines().nth(1).unwrap().split(',').map(|v| v.parse().unwrap()).collect()
    };
    let (bare, masked) = (dir.path().join("bare"), dir.path().join("masked"));
    distil::<Autodiff<B>>(&cfg, &data, &pacing(Some(0.0)), &bare, &device).unwrap();
    let cfg = cfg.with_mask_probability(Some(1.0));
    distil::<Autodiff<B>>(&cfg, &data, &pacing(Some(0.0)), &masked, &device).unwrap();
    let (bare, masked) = (first_row(&bare), first_row(&masked));
    // Same starting weights, same faces and targets: the first step's KD loss differs only by
    // what the student saw.
    assert!((bare[3] - masked[3]).abs() > 1e-4, "masks on every face changed nothing: {} vs {}", bare[3], masked[3]);
}

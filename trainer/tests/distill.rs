//! Occlusion students (issue 7) on generated faces: a student starts as an exact copy of its
//! teacher's shipped path, each method trains with exactly its own loss terms, and a student
//! exports to an ONNX file the firmware's embedder runs.

use burn::backend::Autodiff;
use faceunlock::embed::Embedder;
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::synth::{Generator, writer::write_dataset};
use faceunlock_data::synth_set::SynthSet;
use std::path::Path;
use trainer::distill::training::{STAT_NAMES, distill, load_student, teacher_split, validate};
use trainer::distill::{DistillConfig, Method, Student};
use trainer::model::{EncoderConfig, ModelConfig};
use trainer::training::{TrainConfig, load_trained, train};

type B = burn::backend::Flex;

/// A teacher run of one step on 3 generated people, with the split lists a student reads.
fn teacher_run(dir: &Path) -> (TrainConfig, std::path::PathBuf) {
    let data = dir.join("synth");
    write_dataset(&Generator::new(11), 3, 4, &data, &|_| {}).unwrap();
    let refs = SynthSet::open(&data).unwrap().samples();
    let (train_refs, val_refs) = refs.split_at(8);
    let cfg = TrainConfig::new(ModelConfig::new(EncoderConfig::new(), 3).with_decoder_widths([32, 32, 16, 16]))
        .with_batch_size(4)
        .with_max_epochs(1)
        .with_steps_per_epoch(Some(1));
    let run = dir.join("teacher");
    train::<Autodiff<B>>(&cfg, train_refs, val_refs, &run, &Default::default()).unwrap();
    trainer::sources::save_list(&run.join("train.jsonl"), train_refs).unwrap();
    trainer::sources::save_list(&run.join("val.jsonl"), val_refs).unwrap();
    (cfg, run)
}

#[test]
fn students_start_as_their_teacher_and_train_on_their_own_terms() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher_cfg, run) = teacher_run(dir.path());
    let device = Default::default();
    let (train_refs, val_refs) = (teacher_split(&run, "train.jsonl").unwrap(), teacher_split(&run, "val.jsonl").unwrap());
    let (_, teacher) = load_trained::<B>(&run, &device).unwrap();
    let base = DistillConfig::new(run.display().to_string(), teacher_cfg.model.clone()).with_batch_size(4);

    // Before training, on bare faces the student is the teacher (the masked views are checked
    // in the unit tests of `trainer::data`: a one-step teacher barely tells faces apart).
    let copy = Student::from_teacher(teacher.clone());
    let bare = validate(&copy, &teacher, &val_refs, &base.clone().with_mask_probability(0.0), &device).unwrap();
    assert!(bare.values[1] < 1e-12 && (bare.cosine_to_teacher() - 1.0).abs() < 1e-6, "bare: {:?}", bare.values);

    for method in [Method::MaskInv, Method::Triplet, Method::SoftLabel, Method::Combined] {
        let cfg = base.clone().with_method(method).with_mask_probability(1.0).with_steps_per_epoch(Some(1));
        let out = dir.path().join(format!("{method:?}"));
        let report = distill::<Autodiff<B>>(&cfg, &train_refs, &val_refs, &out, &device).unwrap();
        assert_eq!(report.state.epochs_done, 1);
        let w = cfg.weights();
        let weights = [w.template_mse, w.elastic_arc, w.cross_entropy, w.soft_label, w.triplet];
        let values = &report.last_val.values;
        assert!(values.iter().all(|v| v.is_finite()), "{method:?}: {values:?}");
        for ((name, weight), value) in STAT_NAMES[1..6].iter().zip(weights).zip(&values[1..6]) {
            if weight == 0.0 {
                assert_eq!(*value, 0.0, "{method:?}: {name} is off but was {value}");
            } else if *name != "triplet" {
                // The triplet hinge may be satisfied already; every other term is positive.
                assert!(*value > 0.0, "{method:?}: {name} is on but was {value}");
            }
        }
        let weighted: f64 = weights.iter().zip(&values[1..6]).map(|(w, v)| w * v).sum();
        assert!((values[0] - weighted).abs() <= 1e-4 * weighted.max(1.0), "{method:?}: loss {} vs weighted terms {weighted}", values[0]);
    }

    // A student exports through the shipped path and runs in the firmware's embedder, as Burn.
    let (cfg, student) = load_student::<B>(&dir.path().join("MaskInv"), &device).unwrap();
    assert_eq!(cfg.method, Method::MaskInv);
    assert!(trainer::distill::is_student_run(&dir.path().join("MaskInv")) && !trainer::distill::is_student_run(&run));
    let onnx = trainer::export::export_onnx(&student.encoder, &student.id_head);
    let entry = trainer::export::embedder_entry("student.onnx", String::new());
    let mut embedder = Embedder::from_bytes(&dir.path().join("student.onnx"), &onnx, &entry).unwrap();
    let sample = val_refs[0].load().unwrap();
    let crop = Aligner::new(CropSpec::default()).align(&sample.image, &sample.landmarks.unwrap()).unwrap().clone();
    let got = embedder.embed(&crop).unwrap();
    let want = trainer::inference::embed_crops((&student.encoder, &student.id_head), std::slice::from_ref(&crop), &device).remove(0);
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "tract vs Burn student: max abs difference {worst}");
}

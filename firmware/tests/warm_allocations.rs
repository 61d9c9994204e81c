//! Heap allocations of warm frames, counted as `faceunlock bench` counts them (this test binary
//! installs the same counting allocator): the stages this crate owns (align and the quality
//! gate, match, liveness) allocate nothing once warm, and the two tract stages (detect, embed)
//! allocate the same on every warm frame, so nothing grows from frame to frame. Runs on the
//! shipped models and generated frames: no `../shared` needed.

mod common;

use faceunlock::app::Unlocker;
use faceunlock::bench::measure_frame;
use faceunlock::config::Config;
use faceunlock::cost::CountingAllocator;
use faceunlock::frame::ImageFiles;
use faceunlock::liveness::Track;
use faceunlock::pipeline::StageCosts;
use faceunlock_data::synth::{Generator, View};

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// Frames before the counting starts: the first attempt of the track, and then some.
const WARM_UP: usize = 6;

#[test]
fn warm_frames_allocate_nothing_in_our_stages_and_the_same_in_tract() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.models.manifest = common::repo().join("models/manifest.toml");
    cfg.storage.state_dir = dir.path().join("state");
    cfg.storage.key_file = dir.path().join("store.key");
    let mut u = Unlocker::open(cfg, None).unwrap();
    let g = Generator::new(11);
    let files = faceunlock::demo::render_views(&g, 0, &faceunlock::demo::enrol_views(), &dir.path().join("enrol")).unwrap();
    u.enroll("person0", &mut ImageFiles::from_list(files, false)).unwrap();
    let people = u.store.people().to_vec();
    // A head turning and nodding, in memory: the frames' decoding is not under test.
    let id = g.identity(0);
    let frames: Vec<_> = (0..18).map(|i| g.render(&id, &View::posed(-12.0 + 1.5 * i as f32, (i % 4) as f32 - 1.5, 0.0)).image).collect();
    let mut track = Track::default();
    let mut warm = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if i % 6 == 0 {
            track.clear();
        }
        let mut costs = StageCosts::default();
        measure_frame(&mut u.pipeline, &people, &mut track, frame, &mut costs).unwrap();
        assert!(costs.embed.allocations > 0, "frame {i}: no face embedded, or the counting allocator is not installed: {costs:?}");
        if i >= WARM_UP {
            warm.push(costs);
        }
    }
    for (i, c) in warm.iter().enumerate() {
        let frame = WARM_UP + i;
        assert_eq!([c.align.allocations, c.matching.allocations, c.liveness.allocations], [0; 3], "frame {frame}: align, match, liveness: {c:?}");
        assert_eq!([c.detect.allocations, c.embed.allocations], [warm[0].detect.allocations, warm[0].embed.allocations], "frame {frame}: tract's allocations changed from frame {WARM_UP}'s");
    }
}

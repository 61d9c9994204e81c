//! A training run's directory, the same for every model the trainer makes: the config saved at
//! the start, a checkpoint (weights, optimizer, the loop's state) after each interval, the best
//! weights, a metrics CSV; a run whose directory holds a state resumes from it.

use anyhow::{Context, Result};
use burn::config::Config;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Serialize, de::DeserializeOwned};
use std::fs::File;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model";
pub const BEST_FILE: &str = "best";
pub const METRICS_FILE: &str = "metrics.csv";
const OPTIMIZER_FILE: &str = "optimizer";
const STATE_FILE: &str = "state.json";

pub(crate) fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// A run started or resumed: the model and optimizer to continue with, the loop's saved state
/// (`None` for a new run) and the metrics CSV open for appending.
pub(crate) struct Opened<M, O, S> {
    pub model: M,
    pub optim: O,
    pub state: Option<S>,
    pub csv: File,
}

/// Whether `dir` holds a complete checkpoint (a run there resumes instead of starting).
fn has_checkpoint(dir: &Path) -> bool {
    dir.join(STATE_FILE).exists()
}

/// Start a run in `dir` (save `cfg`, write the CSV `header`) or resume the one there. `model` is
/// the run's architecture: a new run takes its starting weights from `fresh(model)`, a resumed
/// one loads its checkpoint instead, so whatever `fresh` reads (ImageNet's weights, another run)
/// may be gone by then.
pub(crate) fn start_or_resume<B, M, O, S, C>(dir: &Path, cfg: &C, model: M, fresh: impl FnOnce(M) -> Result<M>, optim: O, header: &str, device: &B::Device) -> Result<Opened<M, O, S>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: DeserializeOwned,
    C: Config,
{
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (model, optim, state) = if has_checkpoint(dir) {
        let state: S = saved_state(dir)?;
        let model = load_checked(model, &dir.join(format!("{MODEL_FILE}.mpk")), device).with_context(|| format!("loading the checkpoint in {}", dir.display()))?;
        let record = recorder().load(dir.join(OPTIMIZER_FILE), device).with_context(|| format!("loading the optimizer state in {}", dir.display()))?;
        (model, optim.load_record(record), Some(state))
    } else {
        let model = fresh(model)?;
        cfg.save(dir.join(CONFIG_FILE)).with_context(|| format!("writing {}", dir.join(CONFIG_FILE).display()))?;
        (model, optim, None)
    };
    let csv_path = dir.join(METRICS_FILE);
    let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&csv_path).with_context(|| format!("opening {}", csv_path.display()))?;
    if state.is_none() {
        writeln!(csv, "{header}").with_context(|| format!("writing {}", csv_path.display()))?;
    }
    Ok(Opened { model, optim, state, csv })
}

/// The training loop's state saved in the run `dir`.
pub fn saved_state<S: DeserializeOwned>(dir: &Path) -> Result<S> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: expected the training loop's state JSON", path.display()))
}

/// Start a run in `to` that continues the one in `from` under a changed config `cfg`: `from`'s
/// checkpoint (weights, optimizer, the loop's state), best weights and metrics are copied, then
/// `cfg` is saved, so resuming `to` carries on at `from`'s step with `cfg`'s loss. `from` is
/// left as it was. Refuses a `to` that already holds a run, and a `from` without a checkpoint.
pub fn continue_run<C: Config>(from: &Path, to: &Path, cfg: &C) -> Result<()> {
    anyhow::ensure!(has_checkpoint(from), "{}: no checkpoint to continue from (expected {STATE_FILE})", from.display());
    anyhow::ensure!(!to.join(STATE_FILE).exists() && !to.join(CONFIG_FILE).exists(), "{}: already holds a run; resume it without --continue-from", to.display());
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let files = [format!("{MODEL_FILE}.mpk"), format!("{OPTIMIZER_FILE}.mpk"), format!("{BEST_FILE}.mpk"), METRICS_FILE.into()];
    for file in files.iter().filter(|f| from.join(f).exists()) {
        std::fs::copy(from.join(file), to.join(file)).with_context(|| format!("copying {} into {}", from.join(file).display(), to.display()))?;
    }
    cfg.save(to.join(CONFIG_FILE)).with_context(|| format!("writing {}", to.join(CONFIG_FILE).display()))?;
    // The state last: it marks the copy complete.
    std::fs::copy(from.join(STATE_FILE), to.join(STATE_FILE)).with_context(|| format!("copying {}", from.join(STATE_FILE).display()))?;
    Ok(())
}

/// Save weights, optimizer and loop state (the state last, atomically: it marks the checkpoint
/// complete); with `best`, the weights also as the best so far.
pub(crate) fn save<B, M, O, S>(dir: &Path, model: &M, optim: &O, state: &S, best: bool) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: Serialize,
{
    if best {
        model.clone().save_file(dir.join(BEST_FILE), &recorder()).context("saving the best weights")?;
    }
    model.clone().save_file(dir.join(MODEL_FILE), &recorder()).context("saving the checkpoint")?;
    recorder().record(optim.to_record(), dir.join(OPTIMIZER_FILE)).context("saving the optimizer state")?;
    faceunlock_data::error::write_atomic(&dir.join(STATE_FILE), &serde_json::to_vec_pretty(state)?)?;
    Ok(())
}

/// The config saved with a run.
fn run_config<C: Config>(dir: &Path) -> Result<C> {
    let cfg_path = dir.join(CONFIG_FILE);
    C::load(&cfg_path).with_context(|| format!("{}: expected the trainer's config.json", cfg_path.display()))
}

/// `model` with the best weights (else the last checkpoint) of the run in `dir` loaded.
fn load_weights<B: Backend, M: Module<B>>(dir: &Path, model: M, device: &B::Device) -> Result<M> {
    let weights: PathBuf = [BEST_FILE, MODEL_FILE].iter().map(|f| dir.join(format!("{f}.mpk"))).find(|p| p.exists()).with_context(|| format!("{}: no best.mpk or model.mpk", dir.display()))?;
    load_checked(model, &weights, device)
}

/// `model` with the weights of the record file `weights` (`….mpk`), which must hold exactly
/// `model`'s parameters: Burn itself takes a tensor of any shape into a parameter (the mismatch
/// surfaces later as a panic inside a layer) and panics on a list of layers of another length.
fn load_checked<B: Backend, M: Module<B>>(model: M, weights: &Path, device: &B::Device) -> Result<M> {
    let expected = ParamShapes::of(&model);
    let stem = weights.with_extension("");
    let loaded = panic_as_error(|| model.load_file(stem, &recorder(), device))
        .map_err(|burn| anyhow::anyhow!("{}: its layers do not match the model's (another number of blocks: {burn}); expected the weights of the model this run's config.json describes", weights.display()))?
        .with_context(|| format!("loading {}", weights.display()))?;
    let found = ParamShapes::of(&loaded);
    match expected.first_difference(&found) {
        None => Ok(loaded),
        Some(difference) => anyhow::bail!("{}: {difference}; expected the weights of the model this run's config.json describes", weights.display()),
    }
}

/// `f()`, or the message of the panic it raised, which is not printed (the caller's error says
/// it, once): Burn panics where a file merely does not fit.
fn panic_as_error<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        let message = payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        message.unwrap_or("a panic").split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

/// Each float parameter of a module as (path, shape), in the module's order; lazy parameters are
/// not initialised to read theirs.
#[derive(Default)]
struct ParamShapes {
    path: Vec<String>,
    shapes: Vec<(String, Vec<usize>)>,
}

impl ParamShapes {
    fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut visitor = Self::default();
        module.visit(&mut visitor);
        visitor
    }

    /// How `found` (loaded weights) differs from `self` (the model's parameters), if it does.
    fn first_difference(&self, found: &Self) -> Option<String> {
        let pairs = self.shapes.iter().zip(&found.shapes);
        if let Some(((name, want), (_, got))) = pairs.clone().find(|((_, want), (_, got))| want != got) {
            return Some(format!("parameter {name} has shape {got:?}, expected {want:?}"));
        }
        (self.shapes.len() != found.shapes.len()).then(|| format!("{} parameter tensors, expected {}", found.shapes.len(), self.shapes.len()))
    }
}

impl<B: Backend> ModuleVisitor<B> for ParamShapes {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.shapes.push((self.path.join("."), param.lazy_shape().to_vec()));
    }
}

/// A run directory's `config.json` and the model it describes, with the best weights (else
/// the last checkpoint) loaded.
pub(crate) fn load_run<B: Backend, C: Config, M: Module<B>>(dir: &Path, init: impl FnOnce(&C) -> M, device: &B::Device) -> Result<(C, M)> {
    let cfg: C = run_config(dir)?;
    let model = load_weights(dir, init(&cfg), device)?;
    Ok((cfg, model))
}

/// As [`load_run`] with the weights of the record `stem` under `dir` (a snapshot the run kept,
/// e.g. `snapshots/step-1500`) instead of its best.
pub(crate) fn load_run_weights<B: Backend, C: Config, M: Module<B>>(dir: &Path, stem: &str, init: impl FnOnce(&C) -> M, device: &B::Device) -> Result<(C, M)> {
    let cfg: C = run_config(dir)?;
    let weights = dir.join(format!("{stem}.mpk"));
    anyhow::ensure!(weights.exists(), "{}: no such weights in the run (snapshots are `snapshots/step-N`)", weights.display());
    let model = load_checked(init(&cfg), &weights, device)?;
    Ok((cfg, model))
}

/// `model`, a new run's architecture, with the weights of the trained run in `dir`: a run that
/// starts where another ended. The other run's config must describe the same weights, `shape`
/// of it equal to `expected`; that is checked first, as Burn panics on a record of another shape.
pub(crate) fn start_from_run<B: Backend, C: Config, M: Module<B>>(dir: &Path, model: M, shape: impl FnOnce(&C) -> String, expected: &str, device: &B::Device) -> Result<M> {
    let theirs = shape(&run_config(dir)?);
    anyhow::ensure!(theirs == expected, "{}: a model of shape {theirs}; this run expected {expected}", dir.display());
    load_weights(dir, model, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::{Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Stack<B: Backend> {
        layers: Vec<Linear<B>>,
    }

    fn stack(widths: &[usize]) -> Stack<Flex> {
        let device = Default::default();
        Stack { layers: widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(&device)).collect() }
    }

    /// Saves `saved` as a run's best weights and loads them into `into`.
    fn reload(saved: &[usize], into: &[usize]) -> (tempfile::TempDir, Result<Stack<Flex>>) {
        let dir = tempfile::tempdir().unwrap();
        stack(saved).save_file(dir.path().join(BEST_FILE), &recorder()).unwrap();
        let loaded = load_weights(dir.path(), stack(into), &Default::default());
        (dir, loaded)
    }

    #[test]
    fn weights_of_the_same_shapes_load_with_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let weights = |s: &Stack<Flex>| s.layers[1].weight.val().into_data().to_vec::<f32>().unwrap();
        let saved = stack(&[4, 3, 2]);
        let expected = weights(&saved);
        saved.save_file(dir.path().join(BEST_FILE), &recorder()).unwrap();
        let loaded = load_weights(dir.path(), stack(&[4, 3, 2]), &Default::default()).unwrap();
        assert_eq!(weights(&loaded), expected);
    }

    #[test]
    fn weights_of_another_shape_are_refused_naming_the_parameter_and_both_shapes() {
        let (dir, loaded) = reload(&[4, 3, 2], &[5, 3, 2]);
        let message = format!("{:#}", loaded.unwrap_err());
        assert!(message.contains(&dir.path().join("best.mpk").display().to_string()), "{message}");
        assert!(message.contains("parameter layers.0.weight has shape [4, 3], expected [5, 3]"), "{message}");
    }

    #[test]
    fn weights_with_another_number_of_layers_are_refused_naming_the_file() {
        let (dir, loaded) = reload(&[4, 3, 2], &[4, 3, 3, 2]);
        let message = format!("{:#}", loaded.unwrap_err());
        assert!(message.contains(&dir.path().join("best.mpk").display().to_string()), "{message}");
        assert!(message.contains("another number of blocks") && message.contains("[Load Record Error]"), "{message}");
    }
}
